"""Jobs that materialize assets over partitions (ranges run as one run), each run in one
process: its steps are few and short, so a process per step would cost more than it saves.

`features_job` alone scales out (STOCK_ASSETS_EXECUTOR=celery, jobs/executors.py). Its unit
is one symbol's range of days: one run, one step, which builds the days in order (each
continues the previous day's carry). With Celery that step runs on a worker, so a backfill
of many symbols launched as one run per symbol (the launcher's `features`, as the
follow-up sensor does) builds as many symbols at once as there are free workers, while the
run processes only orchestrate. Splitting a symbol's days over workers would break the
carry chain and multiply Dagster's per-partition bookkeeping; a single ranged run over
many symbols stays one step, on one worker.
"""

import dagster as dg

from stock_assets.assets.partitions import (
    bars_partitions,
    symbols_partitions,
    trading_days_partitions,
)
from stock_assets.jobs.executors import scale_out

# scans the whole lake: run on demand (UI, `lake_check_job`), not after every ingest
ON_DEMAND_CHECKS = dg.AssetSelection.checks(
    dg.AssetCheckKey(dg.AssetKey("bars_1m"), "lake_readable")
)


def _asset_job(name: str, assets: list[str], partitions, description: str, execution=None):
    """An asset job run in process, or as `execution` (executors.scale_out) says."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(*assets) - ON_DEMAND_CHECKS,
        partitions_def=partitions,
        description=description,
        **(execution or {"executor_def": dg.in_process_executor}),
    )


ingest_job = _asset_job(
    "ingest_job", ["bars_1m", "derived_bars"], bars_partitions,
    "Fetch 1-minute bars and derive 5m..1d bars for symbol x day partitions.",
)  # fmt: skip
regimes_job = _asset_job(
    "regimes_job", ["market_regimes"], trading_days_partitions,
    "Market regimes (from QQQ and VIXY) for trading days.",
)  # fmt: skip
features_job = _asset_job(
    "features_job", ["features"], bars_partitions,
    "The feature table for symbol x day partitions (regimes first).",
    scale_out(dg.in_process_executor),
)  # fmt: skip
lake_check_job = dg.define_asset_job(
    "lake_check_job",
    selection=ON_DEMAND_CHECKS,
    description="Scan every lake partition for unreadable files (footers).",
)
models_job = _asset_job(
    "models_job", ["models"], symbols_partitions,
    "Train a symbol's model set over its stored features; track each in MLflow.",
)  # fmt: skip
simulations_job = _asset_job(
    "simulations_job", ["simulations"], symbols_partitions,
    "The simulation grid over every model of a symbol, stored in sim_runs.",
)  # fmt: skip
