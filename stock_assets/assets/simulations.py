"""Backtests as assets: the default simulation grid on every model of a symbol."""

import dagster as dg

from stock_assets.assets.partitions import symbols_partitions
from stock_assets.pipelines.specs import GridSpec
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource


class GridConfig(dg.Config, GridSpec):
    """A simulation grid, as run config (see GridSpec)."""


@dg.asset(
    partitions_def=symbols_partitions,
    deps=["features", "models"],
    group_name="simulations",
    kinds={"numba", "duckdb"},
)
def simulations(
    context: dg.AssetExecutionContext,
    config: GridConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """Backtests of each model of a symbol (its trained models, on their out-of-sample
    predictions only, and the baseline predictors) over its stored features: the whole
    grid (96 combinations by default) plus buy-and-hold and random baselines, rows in
    `sim_runs`. Partitioned by symbol; re-running over the same data replaces the same rows.
    """
    from stock_assets.assets.reporting import grid_metadata
    from stock_assets.core.symbols import check_symbol_key
    from stock_assets.pipelines.models import TrainedModels, record_best_simulations
    from stock_assets.pipelines.simulations import simulate_symbol

    store, registry = warehouse.open(), mlflow.open()
    symbol = check_symbol_key(context.partition_key)
    runs = simulate_symbol(store, TrainedModels(registry), symbol, config)
    record_best_simulations(registry, runs, config.rank_by)
    metadata: dict[str, dg.MetadataValue] = {
        "rows_simulated": dg.MetadataValue.int(int(runs[0].rows["bars"].max()) if runs else 0)
    }
    for run in runs:
        context.log.info(f"{symbol} {run.model_id}: {len(run.rows)} sim_runs rows ({run.grid_id})")
        prefix = run.model_id.split(":")[-1]
        metadata.update({f"{prefix}/{k}": v for k, v in grid_metadata(run, store.root).items()})
    return dg.MaterializeResult(metadata=metadata)
