"""Training: one interface over 13 algorithms, walk-forward out-of-sample predictions, metrics.

``train_model(primary, spec, context)`` builds the dataset (``core.datasets``), fits one
scikit-learn ``Pipeline`` per walk-forward split, predicts each test episode with the fit
made before it, then fits the final pipeline on every usable train row (test rows stay out,
so the importance measured on them is out of sample too) for later live use.

The pipeline takes the raw feature frame (columns by name) and is picklable: per-column
imputation (median; most frequent for regime codes) and scaling by the registry's scaling
kind (``features.SCALING_KINDS``: StandardScaler for returns and z-scores, RobustScaler for
volume/range ratios, passthrough for bounded oscillators and flags; regime codes one-hot for
linear models, ordinal for trees), then the estimator. Linear regressors learn a standardized
target (``TransformedTargetRegressor``), so one alpha grid fits log returns and prices alike.

Boosters (xgboost, lightgbm) without an explicit ``n_estimators`` pick it by early stopping
on the last purged ``purged_cv`` block of the fit's rows, then refit on all of them. The
``gradient_boosting_*`` names are scikit-learn's histogram boosters (the exact-split
``GradientBoosting*`` takes minutes on a year of minutes); their own early stopping, which
validates on a random split, is off.
"""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from stock_assets.core.datasets import (
    Dataset,
    DatasetError,
    DatasetSpec,
    build_dataset,
    purged_cv,
    walk_forward_splits,
)
from stock_assets.core.features import spec_for_column

if TYPE_CHECKING:
    from stock_assets.core.importance import PruneResult

log = logging.getLogger(__name__)

EVALUATIONS = ("walk_forward", "folds")
EARLY_STOPPING_ROUNDS = 30
ELASTICNET_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
ELASTICNET_L1_RATIOS = (0.1, 0.5, 0.7, 0.9, 0.99)
_CV_SPLITS = 4


class TrainingError(DatasetError):
    """A model that cannot be trained as asked (unknown algorithm, one class only, ...)."""


@dataclass(frozen=True)
class Algorithm:
    """An estimator class (imported when first built) with this project's defaults."""

    kind: str  # regressor | classifier
    family: str  # linear | tree
    estimator: str  # module.Class
    defaults: Mapping[str, Any]
    booster: str | None = None  # xgboost | lightgbm: early stopping on a purged block
    threads: bool = False  # takes n_jobs (the others obey ``threadpool_limits``)

    def build(self, params: Mapping[str, Any], seed: int, n_jobs: int) -> Any:
        """The unfitted estimator, with ``random_state`` wherever the class takes one."""
        module, _, name = self.estimator.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        extra = {"random_state": seed} if "random_state" in cls().get_params() else {}
        extra |= {"n_jobs": n_jobs} if self.threads else {}
        return cls(**(dict(self.defaults) | extra | dict(params)))


_LM, _ENS = "sklearn.linear_model", "sklearn.ensemble"
_FOREST = {"n_estimators": 50, "max_depth": 8, "min_samples_leaf": 50, "max_features": "sqrt",
           "max_samples": 0.25}  # fmt: skip
_HIST = {"max_iter": 100, "learning_rate": 0.1, "min_samples_leaf": 100, "early_stopping": False}
_XGB = {"n_estimators": 400, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8,
        "colsample_bytree": 0.8, "tree_method": "hist"}  # fmt: skip
_LGBM = {"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 100,
         "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "verbose": -1,
         "deterministic": True, "force_row_wise": True, "subsample_for_bin": 50_000}  # fmt: skip
_REG, _CLS = "regressor", "classifier"
_ITER = {"max_iter": 5000, "precompute": True}  # Gram matrix: rows >> features
ALGORITHMS: dict[str, Algorithm] = {
    "linear_regression": Algorithm(_REG, "linear", f"{_LM}.LinearRegression", {}),
    "ridge_regression": Algorithm(_REG, "linear", f"{_LM}.Ridge", {"alpha": 1.0}),
    "lasso_regression": Algorithm(_REG, "linear", f"{_LM}.Lasso", {"alpha": 1e-3, **_ITER}),
    "elasticnet_regression": Algorithm(_REG, "linear", f"{_LM}.ElasticNet", _ITER),
    "logistic_regression": Algorithm(_CLS, "linear", f"{_LM}.LogisticRegression",
                                     {"C": 1.0, "max_iter": 1000, "solver": "newton-cholesky"}),
    "random_forest_regressor": Algorithm(
        _REG, "tree", f"{_ENS}.RandomForestRegressor", _FOREST, threads=True),
    "random_forest_classifier": Algorithm(
        _CLS, "tree", f"{_ENS}.RandomForestClassifier", _FOREST, threads=True),
    "gradient_boosting_regressor": Algorithm(
        _REG, "tree", f"{_ENS}.HistGradientBoostingRegressor", _HIST),
    "gradient_boosting_classifier": Algorithm(
        _CLS, "tree", f"{_ENS}.HistGradientBoostingClassifier", _HIST),
    "xgboost_regressor": Algorithm(_REG, "tree", "xgboost.XGBRegressor", _XGB, "xgboost", True),
    "xgboost_classifier": Algorithm(_CLS, "tree", "xgboost.XGBClassifier", _XGB, "xgboost", True),
    "lightgbm_regressor": Algorithm(
        _REG, "tree", "lightgbm.LGBMRegressor", _LGBM, "lightgbm", True),
    "lightgbm_classifier": Algorithm(
        _CLS, "tree", "lightgbm.LGBMClassifier", _LGBM, "lightgbm", True),
}  # fmt: skip


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise TrainingError(f"algorithm {name!r}: choose one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


@dataclass(frozen=True, kw_only=True)
class ModelSpec(DatasetSpec):
    """A dataset spec plus how to fit and evaluate. ``kind`` follows the algorithm.

    params: estimator parameters over the defaults (none for ElasticNet: the purged grid).
    evaluation: walk_forward (default) or folds; refit_every: test episodes per walk-forward
    fit. p_value: the threshold of the pruning report (``importance.prune_features`` on the
    final fit's rows); prune: also apply it, each fit keeping the features significant on
    its own train rows. seed: same data + spec + seed give identical predictions. shap_rows:
    test rows SHAP explains (0: none; the permutation importance still is measured).
    """

    algorithm: str
    params: Mapping[str, Any] = field(default_factory=dict)
    evaluation: str = "walk_forward"
    refit_every: int = 1
    p_value: float = 0.05
    prune: bool = False
    seed: int = 0
    n_jobs: int = -1
    shap_rows: int = 2000

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", algorithm(self.algorithm).kind)
        object.__setattr__(self, "params", dict(self.params))
        super().__post_init__()
        if self.evaluation not in EVALUATIONS:
            raise TrainingError(f"evaluation {self.evaluation!r}: choose one of {EVALUATIONS}")
        if not 0.0 < self.p_value <= 1.0:
            raise TrainingError(f"p_value {self.p_value!r}: a probability in (0, 1]")

    def dataset_spec(self) -> DatasetSpec:
        names = {f.name for f in fields(DatasetSpec)}
        return DatasetSpec(**{k: v for k, v in asdict(self).items() if k in names})

    def as_params(self) -> dict[str, Any]:
        """Flat str/int/float values (tuples joined by ','), for experiment tracking."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "params":
                out.update({f"param_{k}": v for k, v in sorted(value.items())})
            elif isinstance(value, tuple):
                out[key] = ",".join(value)
            else:
                out[key] = "" if value is None else value
        return out


# --- the pipeline -------------------------------------------------------------------------


def column_scaling(columns: list[str]) -> dict[str, list[str]]:
    """{scaling kind: columns}, from the feature registry; a level or unknown column raises."""
    groups: dict[str, list[str]] = {}
    for col in columns:
        spec = spec_for_column(col)
        if spec is None or spec.scaling in ("level", "meta"):
            what = "unknown to the feature registry" if spec is None else f"a {spec.scaling}"
            raise TrainingError(f"column {col!r} is {what}: not a model input")
        groups.setdefault(spec.scaling, []).append(col)
    return groups


def _imputed(strategy: str, *steps: tuple[str, Any]) -> Pipeline:
    imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
    return Pipeline([("impute", imputer), *steps])


def build_pipeline(
    columns: list[str], name: str, params: Mapping[str, Any] | None = None, *,
    seed: int = 0, n_jobs: int = -1,
) -> Pipeline:  # fmt: skip
    """The unfitted pipeline ``prep`` -> ``model`` over the raw frame's ``columns``."""
    algo = algorithm(name)
    groups = column_scaling(columns)
    if algo.family == "linear":
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    makers = {
        "standard": lambda: _imputed("median", ("scale", StandardScaler())),
        "robust": lambda: _imputed("median", ("scale", RobustScaler())),
        "bounded": lambda: _imputed("median"),
        "categorical": lambda: _imputed("most_frequent", ("encode", encoder)),
    }
    prep = ColumnTransformer(
        [(kind, makers[kind](), cols) for kind, cols in groups.items()],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    estimator = algo.build(params or {}, seed, n_jobs)
    if algo.family == "linear" and algo.kind == "regressor":
        estimator = TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    return Pipeline([("prep", prep), ("model", estimator)])


def _labels(y: pd.Series, kind: str) -> np.ndarray:
    if kind == "regressor":
        return y.to_numpy(np.float64)
    labels = y.to_numpy(np.float64).astype(np.int64)
    if np.unique(labels).size < 2:
        raise TrainingError(f"the fit's {len(labels)} train rows hold one class only")
    return labels


def _best_rounds(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, purge: int, booster: str) -> int:
    """Boosting rounds by early stopping on the last purged CV block of the fit's rows."""
    fit_idx, val_idx = list(purged_cv(5, purge).split(X))[-1]
    prep = clone(pipe.named_steps["prep"]).fit(X.iloc[fit_idx])
    Xt_fit, Xt_val = prep.transform(X.iloc[fit_idx]), prep.transform(X.iloc[val_idx])
    model = clone(pipe.named_steps["model"])
    if booster == "xgboost":
        model.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        model.fit(Xt_fit, y[fit_idx], eval_set=[(Xt_val, y[val_idx])], verbose=False)
        return int(model.best_iteration) + 1
    import lightgbm

    stop = lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)
    model.fit(Xt_fit, y[fit_idx], eval_X=(Xt_val,), eval_y=(y[val_idx],), callbacks=[stop])
    return int(model.best_iteration_ or model.n_estimators)


def _fit_elasticnet(
    pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, purge: int, n_jobs: int
) -> dict[str, Any]:
    """Fit ``pipe`` (an ElasticNet pipeline) with alpha and l1_ratio from a purged CV grid.

    ``ElasticNetCV`` over ELASTICNET_ALPHAS x ELASTICNET_L1_RATIOS (on the standardized
    target, the folds of ``purged_cv``, all cores; the scalers are fitted once on the fit's
    rows, which holds no label). The grid point with the best mean validation MSE wins,
    unless its coefficients on all the rows are all zero (usual on noisy returns, where the
    strongest penalty validates best): then the best-scoring point with a nonzero
    coefficient does (``enet_path`` gives every point's coefficients in one pass per
    l1_ratio). No such point raises TrainingError.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNetCV, enet_path

    Xt = clone(pipe.named_steps["prep"]).fit_transform(X)
    ys = (y - y.mean()) / (y.std() or 1.0)
    search = ElasticNetCV(
        l1_ratio=list(ELASTICNET_L1_RATIOS), alphas=list(ELASTICNET_ALPHAS),
        cv=purged_cv(_CV_SPLITS, purge), n_jobs=n_jobs, max_iter=5000, precompute=True,
    )  # fmt: skip
    with warnings.catch_warnings():  # the smallest alphas on collinear lags may stop early
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(Xt, ys)
    mse = search.mse_path_.mean(axis=-1)  # (l1 ratios, alphas), alphas as in alphas_
    alphas = np.broadcast_to(np.asarray(search.alphas_, dtype=np.float64), mse.shape)
    nonzero = np.zeros(mse.shape, dtype=bool)
    for i, l1 in enumerate(ELASTICNET_L1_RATIOS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, coefs, _ = enet_path(Xt, ys, l1_ratio=l1, alphas=alphas[i], precompute=True)
        nonzero[i] = (coefs != 0).any(axis=0)
    for rank, flat in enumerate(np.argsort(mse, axis=None, kind="stable")):
        i, j = np.unravel_index(flat, mse.shape)
        if not nonzero[i, j]:
            continue
        l1, alpha = ELASTICNET_L1_RATIOS[i], float(alphas[i, j])
        pipe.set_params(model__regressor__alpha=alpha, model__regressor__l1_ratio=l1)
        if np.any(pipe.fit(X, y).named_steps["model"].regressor_.coef_ != 0):
            return {"alpha": alpha, "l1_ratio": l1, "cv_rank": rank, "cv_mse": float(mse[i, j])}
    raise TrainingError("every ElasticNet of the grid has all-zero coefficients: constant target?")


def fit_pipeline(
    X: pd.DataFrame, y: pd.Series, spec: ModelSpec, columns: list[str]
) -> tuple[Pipeline, dict[str, Any]]:
    """A fitted pipeline on rows (X, y) and what was chosen on the way (grid, rounds)."""
    algo = algorithm(spec.algorithm)
    labels = _labels(y, algo.kind)
    pipe = build_pipeline(columns, spec.algorithm, spec.params, seed=spec.seed, n_jobs=spec.n_jobs)
    purge = spec.purge_bars
    if spec.algorithm == "elasticnet_regression" and not spec.params:
        return pipe, _fit_elasticnet(pipe, X, labels, purge, spec.n_jobs)
    chosen: dict[str, Any] = {}
    if algo.booster and "n_estimators" not in spec.params and len(X) >= 20 * (purge + 10):
        chosen["n_estimators"] = _best_rounds(pipe, X, labels, purge, algo.booster)
        pipe.set_params(model__n_estimators=chosen["n_estimators"])
    pipe.fit(X, labels)
    return pipe, chosen


def predict_frame(pipe: Pipeline, X: pd.DataFrame, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, probability of class 1 or NaN for a regressor)."""
    pred = np.asarray(pipe.predict(X), dtype=np.float64)
    if kind == "classifier":
        return pred, pipe.predict_proba(X)[:, 1].astype(np.float64)
    return pred, np.full(len(pred), np.nan)


# --- train_model ---------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """The result of ``train_model``; ``oos`` holds one row per predicted test bar:
    ts, episode, fit, prediction, probability, baseline, actual, base_price, future_price,
    predicted_price (rebuilt from a return prediction)."""

    spec: ModelSpec
    pipeline: Pipeline
    features: list[str]
    oos: pd.DataFrame
    metrics: dict[str, Any]
    importance: pd.DataFrame
    shap_by_regime: pd.DataFrame
    shap_png: bytes | None
    pruning: PruneResult
    fit_log: list[dict[str, Any]]
    warnings: list[str]
    evaluation: str
    skipped_episodes: list[int]
    example: pd.DataFrame = field(default_factory=pd.DataFrame)  # raw X rows, for MLflow


def _fit_rows(
    dataset: Dataset, rows: np.ndarray, spec: ModelSpec, label: object, fit_log: list
) -> tuple[Pipeline, list[str], Any]:
    """Fit on ``rows`` (after per-fit p-value pruning when asked), logging shapes and dtypes."""
    from stock_assets.core.importance import prune_features

    started = time.perf_counter()
    X, y = dataset.X.iloc[rows], dataset.y.iloc[rows]
    pruning = prune_features(X, y, spec.p_value) if spec.prune or label == "final" else None
    columns = pruning.kept if spec.prune else list(dataset.X.columns)
    X = X[columns]
    pipe, chosen = fit_pipeline(X, y, spec, columns)
    entry = {
        "fit": label, "X_shape": list(X.shape), "y_shape": [len(y)],
        "X_dtypes": {str(k): int(v) for k, v in X.dtypes.astype(str).value_counts().items()},
        "y_dtype": str(y.dtype), "train_ts_min": str(dataset.ts.iloc[rows[0]]),
        "train_ts_max": str(dataset.ts.iloc[rows[-1]]), "chosen": chosen,
        "dropped_features": len(dataset.X.columns) - len(columns),
        "seconds": round(time.perf_counter() - started, 3),
    }  # fmt: skip
    log.info("fit %s: X %s, y %s, dtypes %s", label, entry["X_shape"], entry["y_shape"],
             entry["X_dtypes"], extra={"algorithm": spec.algorithm})  # fmt: skip
    fit_log.append(entry)
    return pipe, columns, pruning


def _rows_frame(dataset: Dataset, rows: np.ndarray) -> pd.DataFrame:
    """ts, episode, actual, base_price, future_price of ``rows``."""
    return pd.DataFrame({
        "ts": dataset.ts.iloc[rows].reset_index(drop=True), "episode": dataset.episode[rows],
        "actual": dataset.y.to_numpy()[rows], "base_price": dataset.base_price.to_numpy()[rows],
        "future_price": dataset.future_price.to_numpy()[rows],
    })  # fmt: skip


def _baseline(dataset: Dataset, fit_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The naive prediction: zero return (no change of price), or the fit's majority class."""
    spec = dataset.spec
    if spec.kind == "classifier":
        majority = float(dataset.y.iloc[fit_rows].mean() > 0.5)
        return np.full(len(rows), majority)
    if spec.transform == "price":
        return dataset.base_price.to_numpy()[rows]
    return np.zeros(len(rows))


def train_model(
    primary: pd.DataFrame,
    spec: ModelSpec,
    context: Mapping[str, pd.DataFrame] | None = None,
    *,
    explain: bool = True,
) -> TrainedModel:
    """Train ``spec`` on the primary symbol's feature rows; see the module docstring.

    explain: compute SHAP, permutation importance and coefficients (``core.importance``)
    of the final pipeline on a sample of test rows; False leaves them empty. A positive
    ``spec.n_jobs`` also caps the BLAS/OpenMP threads of the estimators without n_jobs.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=spec.n_jobs if spec.n_jobs > 0 else None):
        return _train(primary, spec, context, explain)


def _train(
    primary: pd.DataFrame, spec: ModelSpec, context: Mapping | None, explain: bool
) -> TrainedModel:
    from stock_assets.core import importance as imp

    dataset = build_dataset(primary, spec.dataset_spec(), context)
    splits, skipped = walk_forward_splits(dataset, spec.evaluation, spec.refit_every)
    fit_log: list[dict[str, Any]] = []
    parts = []
    for k, split in enumerate(splits):
        pipe, columns, _ = _fit_rows(dataset, split.fit_rows, spec, k, fit_log)
        rows = split.predict_rows
        pred, proba = predict_frame(pipe, dataset.X.iloc[rows][columns], spec.kind)
        fit_log[-1].update(episodes=list(split.episodes), predict_ts_min=str(dataset.ts[rows[0]]))
        part = _rows_frame(dataset, rows).assign(fit=k, prediction=pred, probability=proba)
        parts.append(part.assign(baseline=_baseline(dataset, split.fit_rows, rows)))
    oos = pd.concat(parts, ignore_index=True)
    oos["predicted_price"] = imp.predicted_price(oos, spec)
    if skipped:
        log.warning("episodes %s skipped: too few train rows before them", skipped)
    final_rows = np.flatnonzero(dataset.train_rows)
    final, columns, pruning = _fit_rows(dataset, final_rows, spec, "final", fit_log)
    pred, proba = predict_frame(final, dataset.X.iloc[final_rows][columns], spec.kind)
    in_sample = _rows_frame(dataset, final_rows).assign(prediction=pred, probability=proba)
    metrics = imp.model_metrics(oos, in_sample, spec)
    metrics.update(evaluation=spec.evaluation, fits=len(splits), skipped_episodes=len(skipped))
    explanation = imp.Explanation.empty(columns)
    if explain:
        explanation = imp.explain(final, dataset, columns, spec.kind, spec.seed,
                                  spec.shap_rows or 2000, shap=spec.shap_rows > 0)  # fmt: skip
    return TrainedModel(
        spec=spec, pipeline=final, features=columns, oos=oos, metrics=metrics,
        importance=explanation.importance, shap_by_regime=explanation.shap_by_regime,
        shap_png=explanation.png, pruning=pruning, fit_log=fit_log,
        warnings=list(dataset.warnings), evaluation=spec.evaluation, skipped_episodes=skipped,
        example=dataset.X.iloc[final_rows[-5:]][columns].reset_index(drop=True),
    )  # fmt: skip


# --- model families ------------------------------------------------------------------------

GROUP_MODELS = (("open", "1m"), ("close", "1m"), ("high", "1d"), ("low", "1d"))


def group_specs(algorithm: str = "lightgbm_regressor", **common: Any) -> list[ModelSpec]:
    """The 4-model group of the original notes, one bar ahead each: next 1m open, next 1m
    close, next day's high, next day's low. Always log returns (a group's predictions are
    compared and combined, so they share one unit); ``common`` sets the other fields."""
    if algorithm in ALGORITHMS and ALGORITHMS[algorithm].kind != "regressor":
        raise TrainingError(f"group training predicts log returns: {algorithm!r} is no regressor")
    fixed = {"target", "timeframe", "transform", "horizon"} & set(common)
    if fixed:
        raise TrainingError(f"group training sets {sorted(fixed)} itself")
    return [
        ModelSpec(algorithm=algorithm, target=target, timeframe=timeframe, horizon=1,
                  transform="log_return", **common)
        for target, timeframe in GROUP_MODELS
    ]  # fmt: skip
