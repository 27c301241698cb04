"""Models as an asset: a symbol's model set, trained over its stored features and tracked
in MLflow."""

import dagster as dg
from pydantic import Field

from stock_assets.assets.partitions import symbols_partitions
from stock_assets.pipelines.specs import DEFAULT_MODEL_CONFIGS, ModelEntry
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource


class ModelConfig(dg.Config, ModelEntry):
    """One model to train (see ModelEntry)."""


class ModelsConfig(dg.Config):
    models: list[ModelConfig] = Field(
        default=DEFAULT_MODEL_CONFIGS,
        description="The model specs to train (default: one linear, one boosted regressor "
        "and one classifier, next-minute close).",
    )
    force: bool = Field(default=False, description="Train again a spec already trained.")


@dg.asset(
    partitions_def=symbols_partitions,
    deps=["features"],
    group_name="models",
    kinds={"sklearn", "mlflow"},
)
def models(
    context: dg.AssetExecutionContext,
    config: ModelsConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """Trained models of a symbol: each a scikit-learn Pipeline in MLflow, every figure out
    of sample (walk-forward by default) beside a naive baseline, with SHAP explanations.

    Partitioned by symbol; a spec already trained on the same data is recognized by its
    fingerprint and not trained again.
    """
    from stock_assets.assets.reporting import models_metadata
    from stock_assets.core.symbols import check_symbol_key
    from stock_assets.logs import log_context
    from stock_assets.pipelines.models import train

    symbol = check_symbol_key(context.partition_key)
    store, registry = warehouse.open(), mlflow.open()
    items = [ModelConfig(**item) if isinstance(item, dict) else item for item in config.models]
    specs = [(item, item.spec()) for item in items]  # bad specs fail before any work
    records = []
    for item, spec in specs:
        context.log.info(f"{symbol}: training {spec.algorithm} ({spec.evaluation})")
        with log_context(run_id=context.run_id, asset="models"):
            records += train(
                store, registry, symbol, spec, parent=item.parent or None,
                group_id=item.group_id or None, auto_select=item.auto_select,
                force=config.force, run_tags={"dagster_run_id": context.run_id},
            )  # fmt: skip
    return dg.MaterializeResult(metadata=models_metadata(records))
