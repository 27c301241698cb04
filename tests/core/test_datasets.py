"""Model datasets: X holds no level, targets, resampling, context, purge/embargo, splits."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import calendar
from stock_assets.core.datasets import (
    MAX_CONTEXT,
    MIN_TRAIN_ROWS,
    DatasetError,
    DatasetSpec,
    build_dataset,
    episode_numbers,
    make_target,
    purge_mask,
    purged_cv,
    resolve_features,
    walk_forward_splits,
)
from stock_assets.core.errors import UsageError
from stock_assets.core.features import (
    FEATURE_SPECS,
    MODEL_SCALINGS,
    model_feature_columns,
    spec_for_column,
)
from stock_assets.core.folds import label_folds

LEVELS = {s.name for s in FEATURE_SPECS if s.scaling == "level"}
ET = "America/New_York"


def minute_frame(n_days: int, train: int, test: int, seed: int = 0) -> pd.DataFrame:
    """A feature frame on real session minutes: random-walk prices, every registry column
    (noise; regime codes as small ints) and the fold column fold_<train>_<test>."""
    days = calendar.sessions(dt.date(2024, 3, 4), dt.date(2024, 6, 28))[:n_days]
    ts = pd.DatetimeIndex(calendar.sessions_minutes(days)).tz_convert("UTC").as_unit("ns")
    n = len(ts)
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pd.DataFrame({"ts": ts, "open": open_, "close": close})
    frame["high"] = np.maximum(open_, close) + 0.01
    frame["low"] = np.minimum(open_, close) - 0.01
    frame["volume"] = rng.integers(100, 10_000, n).astype(float)
    frame["vwap"] = (frame["high"] + frame["low"] + close) / 3
    frame["is_filled"] = False
    frame["bar_index"] = np.arange(n)
    for spec in FEATURE_SPECS:
        if spec.name not in frame:
            values = rng.normal(size=n)
            frame[spec.name] = rng.integers(0, 2, n) if spec.scaling == "categorical" else values
    frame[f"fold_{train}_{test}"] = label_folds(frame["ts"], train, test).to_numpy()
    return frame


# --- the registry decides what a model may read ---------------------------------------------


def test_model_columns_are_the_registry_scalings_and_never_a_level() -> None:
    columns = model_feature_columns()
    assert set(columns) == {s.name for s in FEATURE_SPECS if s.scaling in MODEL_SCALINGS}
    assert not set(columns) & LEVELS
    never = {"open", "high", "low", "close", "volume", "obv", "atr_14", "macd", "macd_hist",
             "sma_200", "ema_9", "bb_upper", "bar_index", "is_filled"}  # fmt: skip
    assert never.isdisjoint(columns)
    assert {"rsi_14", "log_return_1m", "vol_ratio_60", "regime_vix", "ibs"} <= set(columns)


def test_context_suffixed_column_maps_to_its_base_spec() -> None:
    assert spec_for_column("rsi_14_SPY").name == "rsi_14"
    assert spec_for_column("rsi_14_SPY").scaling == "bounded"
    assert spec_for_column("return_lag_1_BRK.B").name == "return_lag_1"
    assert spec_for_column("close_QQQ").scaling == "level"
    assert spec_for_column("vwap") is None and spec_for_column("rsi_14_spy") is None


# --- X never holds a level ------------------------------------------------------------------


def test_x_holds_only_registry_model_columns_even_when_levels_and_extras_are_present() -> None:
    frame = minute_frame(6, 2, 1).assign(future_peek=1.0, trade_count=5)
    dataset = build_dataset(frame, DatasetSpec(fold="fold_2_1"))
    assert list(dataset.X.columns) == model_feature_columns()
    assert not set(dataset.X.columns) & (LEVELS | {"vwap", "future_peek", "trade_count", "ts"})


def test_whitelisting_a_level_column_is_refused() -> None:
    frame = minute_frame(6, 2, 1)
    with pytest.raises(DatasetError, match="'sma_20' is a level column"):
        build_dataset(frame, DatasetSpec(fold="fold_2_1", features=("rsi_14", "sma_20")))
    with pytest.raises(DatasetError, match="'bar_index' is a meta column"):
        build_dataset(frame, DatasetSpec(fold="fold_2_1", features=("bar_index",)))


# --- targets --------------------------------------------------------------------------------


def test_make_target_transforms_and_direction() -> None:
    base, future = np.array([100.0, 100.0, 100.0, 0.0]), np.array([110.0, 90.0, 100.0, 5.0])
    np.testing.assert_allclose(make_target(base, future, "log_return")[:3], np.log([1.1, 0.9, 1.0]))
    np.testing.assert_allclose(make_target(base, future, "pct_change")[:3], [0.1, -0.1, 0.0])
    np.testing.assert_allclose(make_target(base, future, "price")[:3], [110.0, 90.0, 100.0])
    np.testing.assert_array_equal(
        make_target(base, future, "log_return", "classifier")[:3], [1, 0, 0]
    )
    assert np.isnan(make_target(base, future, "log_return")[3])  # base price 0: no label


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=30),
    st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=30),
)
def test_log_return_rebuilds_the_future_price(base: list[float], future: list[float]) -> None:
    n = min(len(base), len(future))
    b, f = np.array(base[:n]), np.array(future[:n])
    np.testing.assert_allclose(b * np.exp(make_target(b, f, "log_return")), f, rtol=1e-12)
    direction = make_target(b, f, "pct_change", "classifier")
    np.testing.assert_array_equal(direction, (f > b).astype(float))


def test_base_and_future_price_stay_beside_x_aligned_by_ts() -> None:
    frame = minute_frame(4, 2, 1)
    dataset = build_dataset(frame, DatasetSpec(fold="fold_2_1", horizon=3, target="high"))
    high = frame["high"].to_numpy()
    np.testing.assert_array_equal(dataset.ts, frame["ts"])
    np.testing.assert_array_equal(dataset.base_price, high)
    np.testing.assert_array_equal(dataset.future_price[:-3], high[3:])
    assert dataset.future_price[-3:].isna().all() and dataset.y[-3:].isna().all()
    np.testing.assert_allclose(dataset.y[:-3], np.log(high[3:] / high[:-3]))
    assert "high" not in dataset.X and not dataset.raw_price_target


def test_raw_price_target_is_allowed_with_a_warning_and_a_flag(caplog) -> None:
    with caplog.at_level("WARNING", logger="stock_assets.core.datasets"):
        dataset = build_dataset(
            minute_frame(4, 2, 1), DatasetSpec(fold="fold_2_1", transform="price")
        )
    assert dataset.raw_price_target and "raw price target" in dataset.warnings[0]
    assert "raw price target" in caplog.text


# --- resampling -----------------------------------------------------------------------------


def test_5m_buckets_take_last_minute_features_and_bucket_ohlc_and_any_test() -> None:
    frame = minute_frame(3, 1, 1)
    dataset = build_dataset(frame, DatasetSpec(fold="fold_1_1", timeframe="5m"))
    assert len(dataset.X) == 3 * 78
    first = frame.iloc[:5]
    assert dataset.ts[0] == first["ts"].iloc[0]
    assert dataset.X["rsi_14"][0] == first["rsi_14"].iloc[-1]
    assert dataset.base_price[0] == first["close"].iloc[-1]
    np.testing.assert_array_equal(dataset.is_test, np.repeat([False, True, False], 78))
    high = build_dataset(frame, DatasetSpec(fold="fold_1_1", timeframe="5m", target="high"))
    assert high.base_price[0] == first["high"].max()
    low = build_dataset(frame, DatasetSpec(fold="fold_1_1", timeframe="5m", target="low"))
    assert low.base_price[0] == first["low"].min()
    opened = build_dataset(frame, DatasetSpec(fold="fold_1_1", timeframe="5m", target="open"))
    assert opened.base_price[0] == first["open"].iloc[0]


def test_a_bucket_holding_any_test_row_is_test() -> None:
    frame = minute_frame(3, 1, 1)
    frame.loc[3, "fold_1_1"] = "test"  # one test minute inside the first 5m bucket
    dataset = build_dataset(frame, DatasetSpec(fold="fold_1_1", timeframe="5m", fill_delay=0))
    assert dataset.is_test[0] and not dataset.is_test[1]


def test_day_and_4h_buckets_are_session_aligned_in_new_york() -> None:
    frame = minute_frame(70, 20, 2)
    daily = build_dataset(frame, DatasetSpec(fold="fold_20_2", timeframe="1d", fill_delay=0))
    assert len(daily.X) == 70
    et = pd.DatetimeIndex(daily.ts).tz_convert(ET)
    assert (et.hour == 9).all() and (et.minute == 30).all()
    assert daily.base_price[0] == frame["close"].iloc[389]
    four = build_dataset(frame, DatasetSpec(fold="fold_20_2", timeframe="4h", fill_delay=0))
    starts = pd.DatetimeIndex(four.ts).tz_convert(ET)
    assert len(four.X) == 140 and set(zip(starts.hour, starts.minute, strict=True)) == {
        (9, 30),
        (13, 30),
    }
    assert four.base_price[0] == frame["close"].iloc[239]  # 09:30 .. 13:29 ET
    eight = build_dataset(frame, DatasetSpec(fold="fold_20_2", timeframe="8h", fill_delay=0))
    assert len(eight.X) == 70


# --- context --------------------------------------------------------------------------------


def test_context_is_a_strict_inner_join_with_suffixed_columns() -> None:
    frame = minute_frame(4, 2, 1)
    spy = minute_frame(4, 2, 1, seed=7).drop(index=[10, 11, 500]).reset_index(drop=True)
    dataset = build_dataset(frame, DatasetSpec(fold="fold_2_1", context=("SPY",)), {"SPY": spy})
    assert len(dataset.X) == len(frame) - 3
    assert "rsi_14_SPY" in dataset.X and "log_return_1m_SPY" in dataset.X
    assert "regime_vix_SPY" not in dataset.X and "time_sin_SPY" not in dataset.X  # market-wide
    assert "close_SPY" not in dataset.X and "obv_SPY" not in dataset.X
    joined = spy.set_index("ts")["rsi_14"].reindex(dataset.ts)
    np.testing.assert_array_equal(dataset.X["rsi_14_SPY"], joined)


# --- purge and embargo ----------------------------------------------------------------------


def test_purge_mask_drops_exactly_the_label_windows_and_the_embargo() -> None:
    is_test = np.array([0] * 10 + [1] * 3 + [0] * 10 + [1] * 2 + [0] * 5, dtype=bool)
    dropped = np.flatnonzero(purge_mask(is_test, purge_bars=2, embargo_bars=1))
    np.testing.assert_array_equal(dropped, [8, 9, 13, 21, 22, 25])


def test_build_dataset_purges_horizon_plus_fill_delay_and_embargoes_after_test() -> None:
    frame = minute_frame(3, 1, 1)  # day 0 train, day 1 test, day 2 train
    spec = DatasetSpec(fold="fold_1_1", horizon=2, fill_delay=1, embargo=3)
    dataset = build_dataset(frame, spec)
    np.testing.assert_array_equal(np.flatnonzero(dataset.purged), [387, 388, 389, 780, 781, 782])
    assert dataset.train_rows.sum() == 2 * 390 - 6 - 2  # the last 2 rows have no label
    default = build_dataset(frame, DatasetSpec(fold="fold_1_1", horizon=2, fill_delay=1))
    assert default.purged.sum() == 3 + 1  # embargo defaults to the fill delay


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), min_size=0, max_size=60),
    st.integers(0, 8),
    st.integers(0, 8),
)
def test_purge_mask_matches_its_definition(flags: list[bool], purge: int, embargo: int) -> None:
    is_test = np.array(flags, dtype=bool)
    got = purge_mask(is_test, purge, embargo)
    n = len(flags)
    for i in range(n):
        ahead = is_test[i + 1 : min(n, i + 1 + purge)].any()
        behind = is_test[max(0, i - embargo) : i].any()
        assert got[i] == (not is_test[i] and (ahead or behind)), i


def test_episode_numbers_give_train_rows_the_episode_they_precede() -> None:
    is_test = np.array([0, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    np.testing.assert_array_equal(episode_numbers(is_test), [0, 0, 0, 0, 1, 1, 2, 2])


# --- splits ---------------------------------------------------------------------------------


def test_walk_forward_fits_only_on_rows_before_each_episode_less_the_purge() -> None:
    dataset = build_dataset(minute_frame(9, 2, 1), DatasetSpec(fold="fold_2_1", horizon=3))
    splits, skipped = walk_forward_splits(dataset, "walk_forward", refit_every=1)
    assert [s.episodes for s in splits] == [(0,), (1,), (2,)] and skipped == []
    for split in splits:
        gap = split.predict_rows.min() - split.fit_rows.max()
        assert gap > dataset.spec.purge_bars
        assert not dataset.is_test[split.fit_rows].any()
    assert len(splits[0].fit_rows) < len(splits[1].fit_rows) < len(splits[2].fit_rows)
    grouped, _ = walk_forward_splits(dataset, "walk_forward", refit_every=2)
    assert [s.episodes for s in grouped] == [(0, 1), (2,)]
    np.testing.assert_array_equal(grouped[0].fit_rows, splits[0].fit_rows)
    (folds,), _ = walk_forward_splits(dataset, "folds")
    assert folds.episodes == (0, 1, 2) and folds.fit_rows.max() > folds.predict_rows.min()


def test_purged_cv_leaves_the_purge_between_train_and_validation() -> None:
    for train, valid in purged_cv(4, 7).split(np.zeros((500, 1))):
        assert valid.min() - train.max() == 8  # 7 rows left out between them


# --- choosing features ----------------------------------------------------------------------


def test_resolve_features_inherits_then_whitelist_then_blacklist() -> None:
    available = ["rsi_14", "ibs", "vol_ratio_60", "rsi_14_SPY"]
    assert resolve_features(available) == available
    parent = ["vol_ratio_60", "rsi_14", "rsi_14_SPY"]
    assert resolve_features(available, parent) == ["rsi_14", "vol_ratio_60", "rsi_14_SPY"]
    assert resolve_features(available, parent, ["rsi_14", "rsi_14_SPY"]) == ["rsi_14", "rsi_14_SPY"]
    assert resolve_features(available, parent, None, ["rsi_14"]) == ["vol_ratio_60", "rsi_14_SPY"]
    with pytest.raises(DatasetError, match="'ibs' is not among the parent's features"):
        resolve_features(available, parent, ["ibs"])
    with pytest.raises(DatasetError, match="'nope' does not exist"):
        resolve_features(available, parent, None, ["nope"])
    with pytest.raises(DatasetError, match="no feature left"):
        resolve_features(available, ["ibs"], None, ["ibs"])


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"target": "volume"}, "target 'volume': choose one of close, open, high, low"),
        ({"horizon": 0}, "horizon 0: a whole number of bars >= 1"),
        ({"context": ("A", "B", "C", "D")}, f"at most {MAX_CONTEXT} context symbols"),
        ({"timeframe": "2m"}, "timeframe '2m': choose one of"),
        ({"embargo": 1, "fill_delay": 4}, "embargo 1: at least the fill delay"),
        ({"transform": "log"}, "transform 'log': choose one of"),
    ],
)
def test_bad_specs_raise_a_one_line_usage_error(spec: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as raised:
        DatasetSpec(**spec)
    assert isinstance(raised.value, UsageError | ValueError) and "\n" not in str(raised.value)


def test_bad_frames_raise_dataset_errors() -> None:
    frame = minute_frame(4, 2, 1)
    with pytest.raises(DatasetError, match="feature 'rsi_99' does not exist"):
        build_dataset(frame, DatasetSpec(fold="fold_2_1", features=("rsi_99",)))
    with pytest.raises(DatasetError, match="fold column 'fold_30_5' is not in the primary frame"):
        build_dataset(frame, DatasetSpec())
    with pytest.raises(DatasetError, match="target column 'open' is not in the primary frame"):
        build_dataset(frame.drop(columns="open"), DatasetSpec(fold="fold_2_1", target="open"))
    with pytest.raises(DatasetError, match="has no test rows"):
        build_dataset(frame.iloc[:780], DatasetSpec(fold="fold_2_1"))
    with pytest.raises(DatasetError, match=f"need {MIN_TRAIN_ROWS}"):
        build_dataset(frame, DatasetSpec(fold="fold_2_1", timeframe="1d", fill_delay=0))
    with pytest.raises(DatasetError, match="context symbol 'SPY': no frame given"):
        build_dataset(frame, DatasetSpec(fold="fold_2_1", context=("SPY",)))
