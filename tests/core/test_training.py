"""Training: leakage, planted signals, SHAP, pruning, auto-select, real data, the pipeline."""

from __future__ import annotations

import datetime as dt
import functools
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from stock_assets.core import calendar
from stock_assets.core.datasets import DatasetSpec, build_dataset
from stock_assets.core.features import FEATURE_SPECS, compute_features
from stock_assets.core.folds import label_folds
from stock_assets.core.importance import (
    Explanation,
    auto_select,
    permutation_importance,
    prune_features,
    shap_values,
)
from stock_assets.core.training import (
    ALGORITHMS,
    ModelSpec,
    TrainingError,
    build_pipeline,
    fit_pipeline,
    group_specs,
    train_model,
)

LEVELS = {s.name for s in FEATURE_SPECS if s.scaling in ("level", "meta")}
REAL = "SPY_1min_2024-02-20_2024-05-17.csv"
PLANTED = ["rsi_14", "vol_ratio_60"]
FAST = {"random_forest": {"n_estimators": 20, "max_depth": 6}, "gradient": {"max_iter": 30},
        "xgboost": {"n_estimators": 30, "max_depth": 4},
        "lightgbm": {"n_estimators": 30}}  # fmt: skip


def fast_spec(name: str, **fields) -> ModelSpec:
    params = next((p for prefix, p in FAST.items() if name.startswith(prefix)), {})
    return ModelSpec(algorithm=name, params=params, n_jobs=1, **fields)


def minute_frame(n_days: int, train: int, test: int, returns: np.ndarray | None = None,
                 seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Session minutes with prices from ``returns`` (r_t = ln C_t/C_{t-1}; default a random
    walk), every registry column as noise (regime codes 0..3 / 0..1), fold_<train>_<test>."""
    days = calendar.sessions(dt.date(2024, 3, 4), dt.date(2024, 6, 28))[:n_days]
    ts = pd.DatetimeIndex(calendar.sessions_minutes(days)).tz_convert("UTC").as_unit("ns")
    n = len(ts)
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 1e-3, n) if returns is None else returns
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pd.DataFrame({"ts": ts, "open": open_, "close": close})
    frame["high"] = np.maximum(open_, close) * 1.0001
    frame["low"] = np.minimum(open_, close) * 0.9999
    frame["volume"] = rng.integers(100, 10_000, n).astype(float)
    frame["is_filled"], frame["bar_index"] = False, np.arange(n)
    for spec in FEATURE_SPECS:
        if spec.name not in frame:
            codes = rng.integers(0, 4 if spec.name == "regime_vix" else 2, n)
            noise = rng.normal(size=n)
            frame[spec.name] = codes if spec.scaling == "categorical" else noise
    frame[f"fold_{train}_{test}"] = label_folds(frame["ts"], train, test).to_numpy()
    return frame


@functools.cache
def random_walk_with_future_levels() -> pd.DataFrame:
    """A random walk whose level columns look ahead: ema_9 = C_t, sma_20 = C_{t+1}."""
    frame = minute_frame(10, 2, 1, seed=1)
    frame["ema_9"] = frame["close"]
    frame["sma_20"] = frame["close"].shift(-1).ffill()
    return frame


@functools.cache
def planted(n_days: int = 9) -> pd.DataFrame:
    """r_{t+1} = 1e-3 (z1_t + z2_t) + N(0, 1e-3): rsi_14 = 50 + 15 z1, vol_ratio_60 = 1 + 0.3 z2."""
    rng = np.random.default_rng(5)
    n = n_days * 390
    z1, z2 = rng.normal(size=n), rng.normal(size=n)
    r = np.concatenate(([0.0], 1e-3 * (z1[:-1] + z2[:-1]) + rng.normal(0, 1e-3, n - 1)))
    frame = minute_frame(n_days, 2, 1, returns=r, seed=6)
    frame["rsi_14"], frame["vol_ratio_60"] = 50 + 15 * z1, 1 + 0.3 * z2
    return frame


# --- leakage --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_random_walk_gives_every_algorithm_a_coin_flip_out_of_sample(name: str) -> None:
    frame = random_walk_with_future_levels()
    model = train_model(frame, fast_spec(name, fold="fold_2_1"), explain=False)
    assert len(model.oos) > 1000
    assert 0.45 <= model.metrics["oos_hit_rate"] <= 0.55
    seen = set(model.pipeline.named_steps["prep"].feature_names_in_)
    assert not seen & LEVELS and seen == set(model.features)


def test_the_look_ahead_levels_would_be_caught_if_they_reached_x() -> None:
    frame = random_walk_with_future_levels()
    X, y = frame[["ema_9", "sma_20"]].to_numpy()[:-1], np.diff(np.log(frame["close"]))
    split = len(X) // 2
    pred = LinearRegression().fit(X[:split], y[:split]).predict(X[split:])
    assert np.mean(np.sign(pred) == np.sign(y[split:])) > 0.9  # the test above has power


def test_walk_forward_never_fits_on_the_episode_it_scores() -> None:
    # rsi_14 tells the next move in episode 0's test days and in every later train day, and
    # is noise in episode 0's train days: only a fit that saw later rows can score episode 0.
    frame = minute_frame(9, 2, 1, seed=3)
    move = np.sign(np.log(frame["close"]).diff().shift(-1).fillna(0.0)).to_numpy()
    day = np.arange(len(frame)) // 390
    informative = (day == 2) | np.isin(day, [3, 4, 6, 7])
    noise = np.random.default_rng(4).uniform(40, 60, len(frame))
    frame["rsi_14"] = np.where(informative, 50 + 10 * move, noise)
    spec = dict(fold="fold_2_1", features=("rsi_14",), fill_delay=0)
    walk = train_model(frame, fast_spec("linear_regression", **spec), explain=False)
    folds = train_model(frame, fast_spec("linear_regression", evaluation="folds", **spec),
                        explain=False)  # fmt: skip

    def episode0_hits(model) -> float:
        ep0 = model.oos[model.oos["episode"] == 0]
        realized = ep0["future_price"] - ep0["base_price"]
        moved = realized != 0
        return float((np.sign(ep0["prediction"]) == np.sign(realized))[moved].mean())

    assert episode0_hits(walk) < 0.6
    assert episode0_hits(folds) > 0.9
    assert walk.metrics["evaluation"] == "walk_forward" and folds.metrics["evaluation"] == "folds"
    assert folds.evaluation == "folds" and folds.metrics["fits"] == 1
    for entry in walk.fit_log[:-1]:
        assert pd.Timestamp(entry["train_ts_max"]) < pd.Timestamp(entry["predict_ts_min"])


def test_oos_rows_are_test_rows_only_with_prices_rebuilt() -> None:
    frame = planted()
    model = train_model(frame, fast_spec("ridge_regression", fold="fold_2_1"), explain=False)
    test_ts = set(frame.loc[frame["fold_2_1"] == "test", "ts"])
    assert set(model.oos["ts"]) <= test_ts
    oos = model.oos
    np.testing.assert_allclose(
        oos["predicted_price"], oos["base_price"] * np.exp(oos["prediction"])
    )
    rmse = np.sqrt(np.mean((oos["predicted_price"] - oos["future_price"]) ** 2))
    assert model.metrics["oos_price_rmse_usd"] == pytest.approx(rmse)
    names = {f"{p}_{m}" for p in ("oos", "baseline", "train")
             for m in ("rmse", "mae", "r2", "hit_rate", "price_rmse_usd")}  # fmt: skip
    assert names <= set(model.metrics)
    assert (oos["baseline"] == 0).all()


# --- planted signal -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_beats_the_naive_baseline_on_a_planted_signal(name: str) -> None:
    model = train_model(planted(), fast_spec(name, fold="fold_2_1"), explain=False)
    m = model.metrics
    if ALGORITHMS[name].kind == "classifier":
        assert m["oos_accuracy"] > m["baseline_accuracy"] + 0.05
        assert m["oos_roc_auc"] > 0.6 and m["baseline_roc_auc"] == 0.5
        assert set(model.oos["prediction"]) <= {0.0, 1.0}
        assert model.oos["probability"].between(0, 1).all()
    else:
        assert m["oos_rmse"] < m["baseline_rmse"]
        assert m["oos_hit_rate"] > m["baseline_hit_rate"] + 0.05


def test_p_value_pruning_keeps_the_planted_features_and_drops_noise() -> None:
    frame = planted()
    noise = ["ibs", "stoch_k", "return_lag_2", "dist_vwap", "bb_width", "vix_z_score"]
    dataset = build_dataset(frame, DatasetSpec(fold="fold_2_1", features=(*PLANTED, *noise)))
    rows = dataset.train_rows
    result = prune_features(dataset.X[rows], dataset.y[rows], 0.05)
    assert result.kept == PLANTED
    assert set(result.dropped) == set(noise)
    assert all("p > 0.05" in reason for reason in result.dropped.values())
    assert set(result.table["feature"][:2]) == set(PLANTED)  # largest standardized betas
    assert (result.table["beta"][:2] > 0.3).all()


def test_prune_true_fits_on_the_kept_features_only() -> None:
    spec = fast_spec("linear_regression", fold="fold_2_1", prune=True, p_value=0.001,
                     features=(*PLANTED, "ibs", "stoch_k"))  # fmt: skip
    model = train_model(planted(), spec, explain=False)
    assert model.features == PLANTED and model.pruning.kept == PLANTED
    assert all(entry["dropped_features"] == 2 for entry in model.fit_log)


def test_auto_select_picks_the_planted_features_from_shap() -> None:
    spec = ModelSpec(algorithm="lightgbm_regressor", fold="fold_2_1", n_jobs=1, shap_rows=500)
    model = train_model(planted(), spec)
    assert model.fit_log[-1]["chosen"]["n_estimators"] >= 1  # early stopping on a purged block
    chosen = auto_select(model.importance)
    assert set(PLANTED) <= set(chosen)
    assert set(model.importance["feature"][:2]) == set(PLANTED)
    importance = model.importance.set_index("feature")
    assert importance.loc["rsi_14", "category"] == "momentum"
    assert (importance.loc[PLANTED, "permutation"] > 0).all()
    regimes = model.shap_by_regime
    assert set(regimes["regime"]) == {"regime_vix", "regime_gmm"}
    assert set(regimes.loc[regimes["regime"] == "regime_vix", "code"]) == {0, 1, 2, 3}
    assert model.shap_png[:8] == b"\x89PNG\r\n\x1a\n"


def test_auto_select_never_takes_a_zero_or_negative_importance() -> None:
    importance = pd.DataFrame({
        "feature": ["rsi_14", "stoch_k", "stoch_d", "macd_x", "ibs", "atr_ratio_15"],
        "category": ["momentum", "momentum", "momentum", "momentum", "mean_reversion",
                     "volatility"],
        "shap_mean_abs": [0.3, 0.0, 0.2, 0.1, 0.5, 0.4],
        "permutation": [0.01, 0.02, -0.01, 0.01, 0.0, np.nan],
    })  # fmt: skip
    assert auto_select(importance) == ["atr_ratio_15", "rsi_14", "macd_x"]
    assert auto_select(importance, per_category=1, categories=("momentum",)) == ["rsi_14"]


# --- SHAP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["random_forest_regressor", "gradient_boosting_regressor", "xgboost_regressor",
     "lightgbm_regressor", "linear_regression", "elasticnet_regression"],
)  # fmt: skip
def test_shap_values_sum_to_prediction_minus_expected_value(name: str) -> None:
    spec = fast_spec(name, fold="fold_2_1")
    dataset = build_dataset(planted(), spec.dataset_spec())
    rows = np.flatnonzero(dataset.train_rows)
    columns = list(dataset.X.columns)
    pipe, _ = fit_pipeline(dataset.X.iloc[rows], dataset.y.iloc[rows], spec, columns)
    X = dataset.X.iloc[np.flatnonzero(dataset.test_rows)[:300]]
    values, expected = shap_values(pipe, X)
    assert list(values.columns) == columns  # one-hot regime columns summed back
    np.testing.assert_allclose(values.sum(axis=1) + expected, pipe.predict(X), rtol=1e-4, atol=1e-7)


def test_permutation_on_transformed_columns_agrees_with_sklearn_on_raw_ones() -> None:
    from sklearn.inspection import permutation_importance as sklearn_permutation

    spec = fast_spec("ridge_regression", fold="fold_2_1", features=(*PLANTED, "regime_vix", "ibs"))
    dataset = build_dataset(planted(), spec.dataset_spec())
    rows, test = np.flatnonzero(dataset.train_rows), np.flatnonzero(dataset.test_rows)
    columns = list(dataset.X.columns)
    pipe, _ = fit_pipeline(dataset.X.iloc[rows], dataset.y.iloc[rows], spec, columns)
    X, y = dataset.X.iloc[test], dataset.y.iloc[test].to_numpy()
    ours = permutation_importance(pipe, X, y, "neg_mean_squared_error", repeats=5)
    theirs = sklearn_permutation(
        pipe, X, y, scoring="neg_mean_squared_error", n_repeats=5, random_state=0
    ).importances_mean
    np.testing.assert_allclose(ours[:2], theirs[:2], rtol=0.1)  # the planted features
    assert np.abs(ours[2:]).max() < 0.02 * ours[:2].min()  # noise and the one-hot regime


def test_empty_explanation_has_the_columns_of_a_full_one() -> None:
    empty = Explanation.empty(["rsi_14", "rsi_14_SPY"])
    assert list(empty.importance.columns) == ["feature", "category", "scaling", "shap_mean_abs",
                                              "permutation", "std_coef"]  # fmt: skip
    assert list(empty.importance["category"]) == ["momentum", "context"]
    assert empty.shap_by_regime.empty and empty.png is None


# --- the pipeline ---------------------------------------------------------------------------


def test_pipeline_scales_each_column_by_its_registry_kind() -> None:
    columns = ["rsi_14", "vol_ratio_60", "log_return_1m", "regime_vix", "rsi_14_SPY"]
    linear = build_pipeline(columns, "ridge_regression").named_steps["prep"].transformers
    groups = {kind: (trans, cols) for kind, trans, cols in linear}
    assert groups["bounded"][1] == ["rsi_14", "rsi_14_SPY"]
    assert [type(s) for _, s in groups["bounded"][0].steps][1:] == []  # impute, no scaling
    assert isinstance(groups["robust"][0].steps[-1][1], RobustScaler)
    assert isinstance(groups["standard"][0].steps[-1][1], StandardScaler)
    assert isinstance(groups["categorical"][0].steps[-1][1], OneHotEncoder)
    tree = build_pipeline(columns, "xgboost_regressor").named_steps["prep"].transformers
    assert isinstance({k: t for k, t, _ in tree}["categorical"].steps[-1][1], OrdinalEncoder)
    ridge = build_pipeline(columns, "ridge_regression").named_steps["model"]
    assert isinstance(ridge, TransformedTargetRegressor)  # alpha on a standardized target
    with pytest.raises(TrainingError, match="'close' is a level"):
        build_pipeline(["rsi_14", "close"], "ridge_regression")


@pytest.mark.parametrize(
    "name", ["xgboost_classifier", "random_forest_regressor", "lasso_regression"]
)
def test_pipeline_pickles_and_predicts_on_the_raw_feature_frame(name: str) -> None:
    frame = planted()
    model = train_model(frame, fast_spec(name, fold="fold_2_1"), explain=False)
    again = pickle.loads(pickle.dumps(model.pipeline))
    raw = frame.iloc[:500]  # every column of the feature frame, levels included
    np.testing.assert_array_equal(again.predict(raw), model.pipeline.predict(raw[model.features]))


@pytest.mark.parametrize("name", ["random_forest_classifier", "xgboost_regressor",
                                  "lightgbm_regressor"])  # fmt: skip
def test_same_data_spec_and_seed_give_identical_predictions(name: str) -> None:
    spec = fast_spec(name, fold="fold_2_1", seed=11)
    first = train_model(planted(), spec, explain=False).oos
    second = train_model(planted(), spec, explain=False).oos
    pd.testing.assert_frame_equal(first, second)


def test_elasticnet_grid_never_returns_all_zero_coefficients() -> None:
    spec = fast_spec("elasticnet_regression", fold="fold_2_1")
    dataset = build_dataset(random_walk_with_future_levels(), spec.dataset_spec())
    rows = np.flatnonzero(dataset.train_rows)
    pipe, chosen = fit_pipeline(dataset.X.iloc[rows], dataset.y.iloc[rows], spec,
                                list(dataset.X.columns))  # fmt: skip
    assert np.any(pipe.named_steps["model"].regressor_.coef_ != 0)
    assert chosen["alpha"] in (1e-4, 1e-3, 1e-2, 1e-1, 1.0) and chosen["cv_rank"] >= 0


def test_every_fit_logs_its_shapes_and_dtypes(caplog) -> None:
    spec = fast_spec("ridge_regression", fold="fold_2_1")
    with caplog.at_level("INFO", logger="stock_assets.core.training"):
        model = train_model(planted(), spec, explain=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit ")]
    assert len(lines) == len(model.fit_log) == model.metrics["fits"] + 1
    assert all("X [" in line and "y [" in line and "float64" in line for line in lines)
    assert model.fit_log[-1]["fit"] == "final"
    assert model.fit_log[0]["X_shape"][1] == len(model.features)


# --- interface ------------------------------------------------------------------------------


def test_unknown_algorithm_lists_the_valid_names() -> None:
    with pytest.raises(
        TrainingError, match="'svm': choose one of linear_regression, ridge_regression"
    ):
        ModelSpec(algorithm="svm")


def test_group_specs_are_the_four_log_return_models() -> None:
    specs = group_specs("xgboost_regressor", fold="fold_2_1")
    assert [(s.target, s.timeframe, s.horizon) for s in specs] == [
        ("open", "1m", 1), ("close", "1m", 1), ("high", "1d", 1), ("low", "1d", 1)]  # fmt: skip
    assert {s.transform for s in specs} == {"log_return"}
    with pytest.raises(TrainingError, match="no regressor"):
        group_specs("xgboost_classifier")
    with pytest.raises(TrainingError, match="sets \\['transform'\\] itself"):
        group_specs(transform="price")


def test_context_ticker_and_timeframe_flow_through_training() -> None:
    frame, spy = planted(), minute_frame(9, 2, 1, seed=9)
    spec = fast_spec("ridge_regression", fold="fold_2_1", context=("SPY",), timeframe="15m",
                     fill_delay=1)  # fmt: skip
    model = train_model(frame, spec, {"SPY": spy}, explain=False)
    assert "rsi_14_SPY" in model.features
    assert len(model.oos) == 3 * 26 - 1  # 3 test days of 15m buckets; the last has no label
    assert model.spec.as_params()["context"] == "SPY"


# --- real data ------------------------------------------------------------------------------


@functools.cache
def real_spy(real_dir: str, sessions: int = 12) -> pd.DataFrame:
    raw = pd.read_csv(f"{real_dir}/{REAL}")
    ts = pd.to_datetime(raw["datetime"], utc=True)
    et = ts.dt.tz_convert("America/New_York")
    minute = et.dt.hour * 60 + et.dt.minute
    keep = ((minute >= 570) & (minute < 960)).to_numpy()
    days = sorted(et[keep].dt.date.unique())[:sessions]
    keep &= et.dt.date.isin(days).to_numpy()
    raw, ts = raw[keep], ts[keep]
    bars = pd.DataFrame({"ts": pd.DatetimeIndex(ts).as_unit("ns"), "is_filled": False})
    for col in ("open", "high", "low", "close", "volume", "vwap"):
        bars[col] = raw[col].to_numpy(np.float64)
    features = compute_features(bars)
    features["fold_5_2"] = label_folds(features["ts"], 5, 2).to_numpy()
    return features


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_trains_and_predicts_on_real_spy_minutes(name: str, real_data) -> None:
    frame = real_spy(str(real_data))
    model = train_model(frame, fast_spec(name, fold="fold_5_2"), explain=False)
    assert len(model.oos) > 700 and np.isfinite(model.oos["prediction"]).all()
    assert np.isfinite(model.metrics["oos_hit_rate"])
    assert np.isfinite(model.pipeline.predict(frame.iloc[-50:])).all()
