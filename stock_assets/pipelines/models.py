"""Models: training a spec over a symbol's stored features and recording it in MLflow,
and the model store simulations read predictors from.

`BaselineModels` serves the baseline predictors of `core.predictors` for every symbol;
`TrainedModels` serves each trained model's out-of-sample predictions (read from its
MLflow run) behind the same interface, so a simulation never scores a bar a model was
trained on: a bar without an out-of-sample prediction gets NaN (no signal).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from stock_assets.core import predictors
from stock_assets.core.errors import UsageError
from stock_assets.core.fingerprint import model_fingerprint
from stock_assets.logs import get_logger, log_event
from stock_assets.settings import git_revision
from stock_assets.storage.models import LoggedModel, ModelRegistry

if TYPE_CHECKING:
    from stock_assets.core.training import ModelSpec, TrainedModel
    from stock_assets.storage.warehouse import Warehouse

log = get_logger(__name__)


class UnknownModel(UsageError):
    """A model id the store does not hold for the symbol."""


class ModelInputError(UsageError):
    """A training that cannot start: no features for the symbol or a context symbol."""


class ModelStore(Protocol):
    def model_ids(self, symbol: str) -> list[str]:
        """The current models of a symbol, in a stable order."""
        ...

    def predictor(self, symbol: str, model_id: str) -> predictors.Predictor: ...


class BaselineModels:
    """The baseline predictors, the same for every symbol."""

    def model_ids(self, symbol: str) -> list[str]:
        return list(predictors.PREDICTORS)

    def predictor(self, symbol: str, model_id: str) -> predictors.Predictor:
        if model_id not in predictors.PREDICTORS:
            raise UnknownModel(
                f"model {model_id!r}: choose one of {', '.join(self.model_ids(symbol))}"
            )
        return predictors.Baseline(model_id)


@dataclass
class OutOfSample:
    """A trained model as a predictor: its out-of-sample predictions, matched by ts, as
    log returns (a regressor) or 1/0 (a classifier); NaN on every other bar."""

    model_id: str
    run_id: str
    oos: pd.DataFrame
    transform: str
    target_kind: str = "regressor"

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        ts = pd.DatetimeIndex(frame["ts"]).as_unit("ns")
        oos = self.oos.set_index(pd.DatetimeIndex(self.oos["ts"]).as_unit("ns"))
        pred = oos["prediction"].reindex(ts).to_numpy(dtype=np.float64)
        if self.target_kind == "classifier":
            return pred
        if self.transform == "pct_change":
            return np.log1p(pred)
        if self.transform == "price":
            return np.log(pred / oos["base_price"].reindex(ts).to_numpy(dtype=np.float64))
        return pred


@dataclass
class TrainedModels:
    """The baselines plus every trained model of a symbol in the registry."""

    registry: ModelRegistry
    baselines: BaselineModels = field(default_factory=BaselineModels)

    def model_ids(self, symbol: str) -> list[str]:
        return self.baselines.model_ids(symbol) + [m.model_id for m in self.registry.models(symbol)]

    def predictor(self, symbol: str, model_id: str) -> predictors.Predictor:
        if model_id.startswith("baseline:"):
            return self.baselines.predictor(symbol, model_id)
        model = self.registry.get(model_id)
        if model.symbol != symbol:
            raise UnknownModel(f"model {model_id!r} belongs to {model.symbol}, not {symbol}")
        return OutOfSample(
            model_id, model.run_id, self.registry.oos_predictions(model),
            transform=model.tags.get("transform", "log_return"),
            target_kind=model.tags.get("kind", "regressor"),
        )  # fmt: skip


@dataclass
class TrainedRecord:
    """A trained (or recognized) model: ids, where to see it, what it scored."""

    model: LoggedModel
    url: str
    reused: bool
    trained: TrainedModel | None = None

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def summary(self) -> dict[str, object]:
        """The row a person reads: out-of-sample figures beside the naive baseline's."""
        metrics = self.model.metrics
        keys = [k for k in sorted(metrics) if k.startswith(("oos_", "baseline_"))]
        return {"model_id": self.model_id, "algorithm": self.model.tags.get("algorithm"),
                "target": self.model.tags.get("target"), "reused": self.reused,
                "mlflow_run_id": self.model.run_id, **{k: metrics[k] for k in keys}}  # fmt: skip


BEST_ROW_METRICS = ("sqn", "total_return", "excess_vs_buy_hold", "excess_vs_random", "sharpe",
                    "profit_factor", "max_drawdown", "trades", "win_rate")  # fmt: skip


def record_best_simulations(registry: ModelRegistry, runs: list, rank_by: str = "sqn") -> None:
    """Log the best combination of each trained model's grid (by `rank_by`) back to the
    model's MLflow run, as `sim_best_*` metrics (all from its out-of-sample predictions)."""
    for run in runs:
        if not run.mlflow_run_id:
            continue
        rows = run.model_rows.dropna(subset=[rank_by])
        if rows.empty:
            continue
        best = rows.sort_values(rank_by, ascending=False).iloc[0]
        registry.log_metrics(
            run.mlflow_run_id,
            {f"sim_best_{k}": float(best[k]) for k in BEST_ROW_METRICS if pd.notna(best[k])},
        )


def load_model_inputs(
    warehouse: Warehouse, symbol: str, context: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The stored feature rows of the symbol and of each context symbol."""
    frames = {}
    for name in (symbol, *context):
        frame = warehouse.read_features(name)
        if frame is None or frame.empty:
            role = "symbol" if name == symbol else "context symbol"
            raise ModelInputError(
                f"{role} {name} has no features: stock-assets features build {name} --start D"
            )
        frames[name] = frame
    return frames.pop(symbol), frames


def train(
    warehouse: Warehouse,
    registry: ModelRegistry,
    symbol: str,
    spec: ModelSpec,
    *,
    parent: str | None = None,
    group_id: str | None = None,
    auto_select: bool = False,
    force: bool = False,
    run_tags: dict[str, str] | None = None,
) -> list[TrainedRecord]:
    """Train `spec` on the symbol's stored features and log it to MLflow.

    A child of `parent` inherits its feature subset (the spec's whitelist narrows it, the
    blacklist removes from it). A spec whose fingerprint (core.fingerprint) is already in
    the registry is recognized and not trained again, unless `force`. With `auto_select`
    a second model is trained on the top 2 features per category of the first (by mean
    |SHAP|), as its child. Returns the record of each model.
    """
    from stock_assets.core.datasets import resolve_features
    from stock_assets.core.importance import auto_select as select_features

    primary, context = load_model_inputs(warehouse, symbol, spec.context)
    if parent:
        inherited = json.loads(registry.get(parent).tags.get("features", "[]"))
        available = list(primary.columns) + [c for f in context.values() for c in f.columns]
        features = resolve_features(available + inherited, inherited, spec.features, spec.exclude)
        spec = replace(spec, features=tuple(features), exclude=())
    extra = run_tags or {}
    records = [_train_one(warehouse, registry, symbol, spec, primary, context, parent,
                          group_id, force, extra)]  # fmt: skip
    if auto_select:
        first = records[0]
        importance = first.trained.importance if first.trained else None
        if importance is None:
            raise ModelInputError(f"{first.model_id} was recognized, not trained: no SHAP to "
                                  "select from (train it again with force)")  # fmt: skip
        chosen = select_features(importance)
        if not chosen:
            raise ModelInputError(f"{first.model_id}: no feature has a positive importance")
        child = replace(spec, features=tuple(chosen), exclude=())
        records.append(_train_one(warehouse, registry, symbol, child, primary, context,
                                  first.model_id, group_id, force, extra))  # fmt: skip
    return records


def _train_one(
    warehouse: Warehouse,
    registry: ModelRegistry,
    symbol: str,
    spec: ModelSpec,
    primary: pd.DataFrame,
    context: dict[str, pd.DataFrame],
    parent: str | None,
    group_id: str | None,
    force: bool,
    extra_tags: dict[str, str],
) -> TrainedRecord:
    from stock_assets.core.training import algorithm, train_model

    checksums = {name: warehouse.feature_checksum(name) for name in (symbol, *spec.context)}
    params = dict(algorithm(spec.algorithm).defaults) | dict(spec.params)
    fingerprint = model_fingerprint(
        symbol=symbol, algorithm=spec.algorithm,
        features=list(spec.features) if spec.features else ["*", *(f"-{c}" for c in spec.exclude)],
        params=params, target=spec.target, transform=spec.transform, horizon=spec.horizon,
        context=spec.context, timeframe=spec.timeframe, fold=spec.fold,
        evaluation=spec.evaluation, seed=spec.seed, data_checksums=checksums,
    )  # fmt: skip
    if not force and (known := registry.models(symbol, fingerprint=fingerprint)):
        log_event(log, "train", f"recognized {known[0].model_id}: same fingerprint, not "
                  "trained again", symbol=symbol, fingerprint=fingerprint)  # fmt: skip
        return TrainedRecord(known[0], registry.run_url(symbol, known[0].run_id), reused=True)
    trained = train_model(primary, spec, context)
    for warning in trained.warnings:
        log.warning(warning, extra={"stage": "train", "symbol": symbol})
    model_id = f"{symbol}-{spec.algorithm}-{uuid.uuid4().hex[:8]}"
    days = {name: [str(frame["ts"].iloc[0])[:10], str(frame["ts"].iloc[-1])[:10]]
            for name, frame in {symbol: primary, **context}.items()}  # fmt: skip
    tags = {
        "symbol": symbol, "algorithm": spec.algorithm, "kind": spec.kind,
        "target": spec.target, "transform": spec.transform, "horizon": str(spec.horizon),
        "timeframe": spec.timeframe, "fold": spec.fold, "evaluation": spec.evaluation,
        "context": ",".join(spec.context), "parent": parent or "", "group_id": group_id or "",
        "fingerprint": fingerprint, "code_revision": git_revision(),
        "data_partitions": json.dumps(days), "features": json.dumps(trained.features),
        "raw_price_target": str(spec.transform == "price").lower(),
        "figures": f"out of sample ({spec.evaluation}): every oos_* metric is on test "
                   "episodes the predicting fit never trained on",
        **extra_tags,
    }  # fmt: skip
    run_id = registry.log(trained, model_id, symbol, tags)
    log_event(log, "train", f"trained {model_id}", symbol=symbol, run_id=run_id,
              algorithm=spec.algorithm)  # fmt: skip
    model = registry.get(model_id)
    warehouse.catalog.upsert("model_fingerprints", pd.DataFrame([{
        "fingerprint": fingerprint, "model_id": model_id, "symbol": symbol,
        "algorithm": spec.algorithm, "features": json.dumps(sorted(trained.features)),
        "params": json.dumps(params, sort_keys=True, default=str), "target": spec.target,
        "transform": spec.transform, "mlflow_run_id": run_id,
        "created_at": pd.Timestamp.now(tz="UTC"),
    }]))  # fmt: skip
    return TrainedRecord(model, registry.run_url(symbol, run_id), reused=False, trained=trained)
