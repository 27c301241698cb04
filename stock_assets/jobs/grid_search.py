"""The grid-search job: fan out (symbol x model) grids over Dagster's executor (the
multiprocess one, or Celery workers: jobs/executors.py), collect the rows into `sim_runs`
in one short write."""

import dagster as dg
from pydantic import Field

from stock_assets.jobs.executors import scale_out
from stock_assets.pipelines.specs import GridSpec
from stock_assets.resources.warehouse import WarehouseResource


class GridSearchConfig(dg.Config, GridSpec):
    symbols: list[str] = Field(description="Symbols whose stored features are simulated.")


@dg.op(out=dg.DynamicOut(dict))
def plan_grid_search(config: GridSearchConfig):
    """One task per (symbol, model), carrying the grid."""
    from stock_assets.core.symbols import normalize_symbols
    from stock_assets.pipelines.models import BaselineModels

    models = BaselineModels()
    spec = config.model_dump(exclude={"symbols"})
    for symbol in normalize_symbols(config.symbols):
        for model_id in config.models or models.model_ids(symbol):
            key = f"{symbol}_{model_id}".replace(":", "_").replace(".", "_").replace("-", "_")
            yield dg.DynamicOutput({"symbol": symbol, "model_id": model_id, "spec": spec}, key)


@dg.op
def simulate_pair(context: dg.OpExecutionContext, warehouse: WarehouseResource, task: dict):
    """Run one grid; its plots and top rows go to the step's metadata."""
    from stock_assets.assets.reporting import grid_metadata
    from stock_assets.pipelines.models import BaselineModels
    from stock_assets.pipelines.simulations import load_features, run_grid

    store = warehouse.open()
    symbol, model_id = task["symbol"], task["model_id"]
    predictor = BaselineModels().predictor(symbol, model_id)
    run = run_grid(load_features(store, symbol), symbol, predictor, GridSpec(**task["spec"]))
    context.add_output_metadata(grid_metadata(run, store.root))
    return run.rows


@dg.op(pool="duckdb_write")
def store_sim_runs(context: dg.OpExecutionContext, warehouse: WarehouseResource, results: list):
    import pandas as pd

    rows = pd.concat(results, ignore_index=True)
    warehouse.open().catalog.replace_sim_runs(rows)
    context.log.info(f"stored {len(rows)} sim_runs rows of {rows['grid_id'].nunique()} grids")


@dg.job(
    description="Simulate grids for symbols x models in parallel; results in sim_runs.",
    **scale_out(None),
)
def grid_search_job():
    store_sim_runs(plan_grid_search().map(simulate_pair).collect())
