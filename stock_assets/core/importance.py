"""How good a trained model is, why it predicts what it does, which features a child keeps.

- Figures (``model_metrics``), all out of sample except ``train_*``: regressors RMSE, MAE,
  R2, directional hit rate and the rebuilt price's RMSE in dollars; classifiers accuracy,
  F1, ROC AUC, hit rate; the same for the naive baseline (``baseline_*``) beside them.
- SHAP: ``TreeExplainer`` for forests and boosters, ``LinearExplainer`` for linear models, on
  the transformed matrix of a bounded sample of rows; a one-hot regime column's values are
  summed back onto its feature, and a standardized-target regressor's values are scaled back
  to target units, so sum(SHAP) + expected value = the pipeline's prediction (tree models;
  classifiers in the model's margin, log-odds for boosters and logistic regression, the class
  1 probability for random forests).
- Permutation importance (scikit-learn's scorers and definition) of each raw column, and
  standardized coefficients b_j sd(x_j) (per-sd effect on the standardized target, or on
  the log-odds) for linear models.
- ``prune_features``: OLS of the standardized target on the standardized features; a feature
  whose two-sided t-test p-value exceeds the threshold is dropped.
- ``auto_select``: the top features per category by mean |SHAP|, never a useless one.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from stock_assets.core.datasets import Dataset, DatasetError, DatasetSpec
from stock_assets.core.features import SPECS_BY_NAME, spec_for_column
from stock_assets.core.metrics import direction_hits, hit_rate

log = logging.getLogger(__name__)

AUTO_SELECT_CATEGORIES = ("volatility", "momentum", "volume", "trend", "regime", "context",
                          "time", "returns", "mean_reversion", "liquidity")  # fmt: skip
PERMUTATION_REPEATS = 3


def feature_category(column: str) -> str:
    """The registry category; a context ticker's column (``rsi_14_SPY``) is 'context'."""
    if column in SPECS_BY_NAME:
        return SPECS_BY_NAME[column].category
    return "context" if spec_for_column(column) is not None else "unknown"


# --- out-of-sample figures --------------------------------------------------------------


def predicted_price(oos: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Price rebuilt from a prediction: P_t exp(pred) (log return), P_t (1 + pred)
    (pct change), pred itself (price); NaN for a classifier."""
    pred, base = oos["prediction"].to_numpy(np.float64), oos["base_price"].to_numpy(np.float64)
    if spec.kind == "classifier":
        return np.full(len(pred), np.nan)
    if spec.transform == "log_return":
        return base * np.exp(pred)
    return base * (1.0 + pred) if spec.transform == "pct_change" else pred


def _as_return(pred: np.ndarray, base: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    if spec.kind == "classifier" or spec.transform != "price":
        return pred  # the sign is what a hit compares: ln and pct agree on it
    return pred / base - 1.0


def _figures(prefix: str, frame: pd.DataFrame, column: str, spec: DatasetSpec) -> dict:
    """RMSE, MAE, R2, hit rate (+ price RMSE in dollars) or accuracy, F1, ROC AUC, hit rate."""
    from sklearn import metrics as skm

    pred, actual = frame[column].to_numpy(np.float64), frame["actual"].to_numpy(np.float64)
    base, future = frame["base_price"].to_numpy(), frame["future_price"].to_numpy()
    realized = future / base - 1.0
    hits = direction_hits(_as_return(pred, base, spec), realized, spec.kind)
    out = {f"{prefix}_hit_rate": hit_rate(hits)}
    if spec.kind == "classifier":
        labels = actual.astype(np.int64)
        score = frame["probability"] if column == "prediction" else frame[column]
        two = np.unique(labels).size == 2
        out |= {
            f"{prefix}_accuracy": float(skm.accuracy_score(labels, pred)),
            f"{prefix}_f1": float(skm.f1_score(labels, pred.astype(np.int64), zero_division=0)),
            f"{prefix}_roc_auc": float(skm.roc_auc_score(labels, score)) if two else np.nan,
        }
        return out
    err = pred - actual
    ss_tot = float(((actual - actual.mean()) ** 2).sum())
    priced = predicted_price(frame.assign(prediction=pred), spec)
    out |= {
        f"{prefix}_rmse": float(np.sqrt(np.mean(err**2))),
        f"{prefix}_mae": float(np.mean(np.abs(err))),
        f"{prefix}_r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else np.nan,
        f"{prefix}_price_rmse_usd": float(np.sqrt(np.mean((priced - future) ** 2))),
    }
    return out


def model_metrics(oos: pd.DataFrame, in_sample: pd.DataFrame, spec: DatasetSpec) -> dict:
    """oos_* (the out-of-sample series), baseline_* (its naive ``baseline`` column on the same
    rows) and train_* (the final pipeline on its own train rows, in sample). Each frame has
    prediction, probability, actual, base_price, future_price."""
    metrics = _figures("oos", oos, "prediction", spec) | _figures("baseline", oos, "baseline", spec)
    metrics |= _figures("train", in_sample, "prediction", spec)
    return metrics | {"oos_rows": len(oos), "train_rows": len(in_sample)}


# --- p-value pruning --------------------------------------------------------------------


@dataclass
class PruneResult:
    """Kept features, dropped ones with the reason, and the OLS table (feature, beta, t,
    p_value, kept, reason) sorted by |beta|."""

    kept: list[str]
    dropped: dict[str, str]
    table: pd.DataFrame


def prune_features(
    X: pd.DataFrame, y: pd.Series, p_value: float = 0.05, *, top: int = 10
) -> PruneResult:
    """Keep the features whose coefficient is significant at ``p_value``.

    OLS of z(y) on z(X) (NaN -> column median; a regime code counts as a number): beta =
    lstsq, sigma^2 = RSS / (n - k - 1), se = sqrt(diag(sigma^2 (Z'Z)^+)), t = beta / se,
    p = 2 P(T_{n-k-1} > |t|). A constant column is dropped; if nothing passes, the feature
    with the smallest p-value is kept so a child always has one. Logs the top standardized
    betas.
    """
    from scipy import stats

    values = X.to_numpy(np.float64, copy=True)
    medians = np.nan_to_num(np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=0))
    values = np.where(np.isfinite(values), values, medians)
    sd = values.std(axis=0)
    varying = sd > 1e-12 * np.maximum(1.0, np.abs(values.mean(axis=0)))
    target = y.to_numpy(np.float64)
    if target.std() == 0:
        raise DatasetError("the target is constant on these rows: no p-value can be computed")
    Z = (values[:, varying] - values[:, varying].mean(axis=0)) / sd[varying]
    ys = (target - target.mean()) / target.std()
    n, k = Z.shape
    df = n - k - 1
    if df < 1:
        raise DatasetError(f"{n} rows for {k} features: too few rows for p-value pruning")
    beta = np.linalg.lstsq(Z, ys, rcond=None)[0]
    resid = ys - Z @ beta
    se = np.sqrt(np.maximum(np.diag(np.linalg.pinv(Z.T @ Z)) * (resid @ resid) / df, 1e-300))
    t = beta / se
    p = 2.0 * stats.t.sf(np.abs(t), df)
    names = list(X.columns)
    table = pd.DataFrame({"feature": names, "beta": np.nan, "t": np.nan, "p_value": np.nan})
    table.loc[varying, ["beta", "t", "p_value"]] = np.column_stack([beta, t, p])
    table["kept"] = table["p_value"] <= p_value
    if not table["kept"].any() and varying.any():
        table.loc[table["p_value"].idxmin(), "kept"] = True
    table["reason"] = np.where(
        ~varying, "constant on the fit's rows",
        np.where(table["kept"], "p <= threshold (or the best one)", f"p > {p_value}"),
    )  # fmt: skip
    table = table.reindex(table["beta"].abs().sort_values(ascending=False).index)
    leaders = [f"{r.feature}={r.beta:+.4f} (p={r.p_value:.2g})" for r in table[:top].itertuples()]
    log.info("standardized betas (top %d): %s", len(leaders), ", ".join(leaders))
    rows = table.itertuples()
    dropped = {r.feature: f"{r.reason} (p={r.p_value:.3g})" for r in rows if not r.kept}
    kept = [name for name in names if name not in dropped]
    return PruneResult(kept, dropped, table.reset_index(drop=True))


# --- SHAP, permutation, coefficients ------------------------------------------------------


def _output_sources(prep) -> list[str]:
    """The raw column behind each output column of the fitted ColumnTransformer."""
    sources: list[str] = []
    for name, transformer, cols in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        last = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(last, OneHotEncoder):
            for col, cats in zip(cols, last.categories_, strict=True):
                sources.extend([col] * len(cats))
        else:
            sources.extend(cols)
    return sources


def _unwrap(pipeline: Pipeline) -> tuple[object, float, float]:
    """(estimator, scale, offset): prediction = scale x estimator output + offset."""
    model = pipeline.named_steps["model"]
    if isinstance(model, TransformedTargetRegressor):
        scaler = model.transformer_
        return model.regressor_, float(scaler.scale_[0]), float(scaler.mean_[0])
    return model, 1.0, 0.0


def _by_source(values: np.ndarray, sources: list[str], columns: list[str], absolute=False):
    frame = pd.DataFrame(np.abs(values) if absolute else values, columns=sources)
    return frame.T.groupby(level=0, sort=False).sum().T.reindex(columns=columns)


def _shap():
    with warnings.catch_warnings():  # its color maps use matplotlib calls due for removal
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap


def shap_values(pipeline: Pipeline, X: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """(SHAP values per row and raw feature, expected value), in the prediction's units."""
    shap = _shap()

    prep = pipeline.named_steps["prep"]
    Xt = np.asarray(prep.transform(X), dtype=np.float64)
    model, scale, offset = _unwrap(pipeline)
    if hasattr(model, "coef_"):
        explainer = shap.LinearExplainer(model, Xt)
        raw = explainer.shap_values(Xt)
    else:
        explainer = shap.TreeExplainer(model)
        with warnings.catch_warnings():  # LightGBM's "output has changed to a list" notice
            warnings.simplefilter("ignore", UserWarning)
            raw = explainer.shap_values(Xt, check_additivity=False)
    if isinstance(raw, list):
        raw = raw[-1]
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 3:  # (rows, features, classes): explain class 1
        raw = raw[..., -1]
    expected = float(np.ravel(explainer.expected_value)[-1])
    values = _by_source(raw * scale, _output_sources(prep), list(X.columns))
    return values.set_axis(X.index), expected * scale + offset


def permutation_importance(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, scoring: str, seed: int = 0,
    repeats: int = PERMUTATION_REPEATS,
) -> np.ndarray:  # fmt: skip
    """Mean drop of the score when one raw feature is shuffled, over ``repeats`` shuffles.

    scikit-learn's permutation importance (its scorer, the same mean over shuffles), with
    the shuffle applied to the feature's transformed column(s): every transformer is
    column-wise, so this equals shuffling the raw column, and the ColumnTransformer runs
    once instead of features x repeats times.
    """
    from sklearn.metrics import get_scorer

    scorer, model = get_scorer(scoring), pipeline.named_steps["model"]
    Xt = np.asarray(pipeline.named_steps["prep"].transform(X), dtype=np.float64)
    sources = np.array(_output_sources(pipeline.named_steps["prep"]))
    baseline = scorer(model, Xt, y)
    rng = np.random.default_rng(seed)
    drops = np.zeros(len(X.columns))
    for j, column in enumerate(X.columns):
        outputs = np.flatnonzero(sources == column)
        shuffled = Xt.copy()
        for _ in range(repeats):
            shuffled[:, outputs] = Xt[np.ix_(rng.permutation(len(Xt)), outputs)]
            drops[j] += (baseline - scorer(model, shuffled, y)) / repeats
    return drops


def standardized_coefficients(pipeline: Pipeline, X: pd.DataFrame) -> pd.Series | None:
    """b_j sd(x_j) per raw feature for a linear model (a one-hot feature: the sum of
    |b sd| over its columns); None for trees."""
    model, _, _ = _unwrap(pipeline)
    if not hasattr(model, "coef_"):
        return None
    prep = pipeline.named_steps["prep"]
    Xt = np.asarray(prep.transform(X), dtype=np.float64)
    effect = np.ravel(model.coef_)[: Xt.shape[1]] * Xt.std(axis=0)
    sources, columns = _output_sources(prep), list(X.columns)
    signed = _by_source(effect[None, :], sources, columns).iloc[0]
    absolute = _by_source(effect[None, :], sources, columns, absolute=True).iloc[0]
    onehot = pd.Series(sources).value_counts()
    several = [c for c in columns if onehot.get(c, 0) > 1]
    signed[several] = absolute[several]
    return signed


@dataclass
class Explanation:
    """importance: feature, category, scaling, shap_mean_abs, permutation, std_coef (sorted
    by shap_mean_abs); shap_by_regime: regime, code, feature, shap_mean_abs, rows."""

    importance: pd.DataFrame
    shap_by_regime: pd.DataFrame
    png: bytes | None

    @classmethod
    def empty(cls, columns: Sequence[str]) -> Explanation:
        frame = _importance_frame(list(columns), np.nan, np.nan, np.nan)
        regimes = pd.DataFrame(columns=["regime", "code", "feature", "shap_mean_abs", "rows"])
        return cls(frame, regimes, None)


def _importance_frame(columns: list[str], shap_abs, permutation, std_coef) -> pd.DataFrame:
    return pd.DataFrame({
        "feature": columns,
        "category": [feature_category(c) for c in columns],
        "scaling": [spec_for_column(c).scaling for c in columns],
        "shap_mean_abs": shap_abs, "permutation": permutation, "std_coef": std_coef,
    })  # fmt: skip


def explain(
    pipeline: Pipeline, dataset: Dataset, columns: list[str], kind: str, seed: int = 0,
    max_rows: int = 2000, *, shap: bool = True,
) -> Explanation:  # fmt: skip
    """Importance of the final pipeline on up to ``max_rows`` test rows (out of sample for a
    pipeline fitted on train rows), drawn at random with ``seed`` and kept in time order.
    Without ``shap`` only the permutation importance and coefficients are measured."""
    test = np.flatnonzero(dataset.test_rows)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(test, size=min(len(test), max_rows), replace=False))
    X = dataset.X.iloc[rows][columns]
    labels = dataset.y.iloc[rows].to_numpy(np.float64)
    values = shap_values(pipeline, X)[0] if shap else None
    shap_abs = values.abs().mean().to_numpy() if shap else np.nan
    if kind == "classifier":
        labels = labels.astype(np.int64)
        scoring = "neg_log_loss" if np.unique(labels).size == 2 else "accuracy"
    else:
        scoring = "neg_mean_squared_error"
    perm = permutation_importance(pipeline, X, labels, scoring, seed)
    coef = standardized_coefficients(pipeline, X)
    std_coef = np.nan if coef is None else coef.to_numpy()
    importance = _importance_frame(columns, shap_abs, perm, std_coef)
    if not shap:
        importance = importance.sort_values("permutation", ascending=False, kind="stable")
        return Explanation(importance.reset_index(drop=True), Explanation.empty([]).shap_by_regime,
                           None)  # fmt: skip
    importance = importance.sort_values("shap_mean_abs", ascending=False, kind="stable")
    return Explanation(
        importance.reset_index(drop=True),
        _shap_by_regime(values, dataset.regimes.iloc[rows]),
        shap_summary_png(values, X),
    )


def _shap_by_regime(values: pd.DataFrame, regimes: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature within each code of each regime column present."""
    parts = []
    for col in regimes.columns:
        codes = regimes[col].to_numpy()
        for code in np.unique(codes[~pd.isna(codes)]):
            inside = codes == code
            mean_abs = values[inside].abs().mean()
            parts.append(pd.DataFrame({
                "regime": col, "code": int(code), "feature": mean_abs.index,
                "shap_mean_abs": mean_abs.to_numpy(), "rows": int(inside.sum()),
            }))  # fmt: skip
    if not parts:
        return Explanation.empty([]).shap_by_regime
    return pd.concat(parts, ignore_index=True)


def shap_summary_png(values: pd.DataFrame, X: pd.DataFrame, max_display: int = 20) -> bytes:
    """SHAP's beeswarm summary of ``values`` (colored by the raw ``X``), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a worker; must precede pyplot's first import
    import matplotlib.pyplot as plt

    shap = _shap()

    shap.summary_plot(
        values.to_numpy(), X.astype(np.float64).to_numpy(), feature_names=list(X.columns),
        max_display=max_display, show=False, plot_size=(9, 6), rng=np.random.default_rng(0),
    )  # fmt: skip
    figure = plt.gcf()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def auto_select(
    importance: pd.DataFrame,
    per_category: int = 2,
    categories: Sequence[str] = AUTO_SELECT_CATEGORIES,
) -> list[str]:
    """The ``per_category`` features of largest mean |SHAP| in each category, skipping any
    whose mean |SHAP| is zero or whose permutation importance is zero or negative (a
    feature whose shuffling does not hurt out of sample is no signal)."""
    useful = importance["shap_mean_abs"].fillna(0.0) > 0
    if "permutation" in importance:
        perm = importance["permutation"]
        useful &= perm.isna() | (perm > 0)
    frame = importance[useful]
    chosen: list[str] = []
    for category in categories:
        top = frame[frame["category"] == category].nlargest(per_category, "shap_mean_abs")
        chosen.extend(top["feature"])
    return chosen
