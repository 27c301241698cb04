"""Backtests as assets: the default simulation grid on every model of a symbol."""

import dagster as dg

from stock_assets.assets.features import features
from stock_assets.assets.partitions import symbols_partitions
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.simulate import GridSpec, load_features, run_grid


@dg.asset(
    partitions_def=symbols_partitions,
    deps=[features],
    group_name="simulations",
    kinds={"numba", "duckdb"},
)
def simulations(
    context: dg.AssetExecutionContext, config: GridSpec, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Backtests of each model of a symbol over its stored features: the whole grid (96
    combinations by default) plus buy-and-hold and random baselines, rows in `sim_runs`.

    Partitioned by symbol; re-running over the same data replaces the same rows.
    """
    symbol = context.partition_key
    frame = load_features(warehouse, symbol)
    metadata: dict[str, dg.MetadataValue] = {"rows_simulated": dg.MetadataValue.int(len(frame))}
    for model_id in config.models:
        run = run_grid(frame, symbol, model_id, config)
        warehouse.catalog.replace_sim_runs(run.rows)
        context.log.info(f"{symbol} {model_id}: {len(run.rows)} sim_runs rows ({run.grid_id})")
        prefix = model_id.split(":")[-1]
        metadata.update({f"{prefix}/{k}": v for k, v in run.metadata(warehouse.root).items()})
    return dg.MaterializeResult(metadata=metadata)
