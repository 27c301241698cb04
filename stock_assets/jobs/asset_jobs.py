"""Jobs that materialize assets over partitions (ranges run as one run), each run in one
process: its steps are few and short, so a process per step would cost more than it saves."""

import dagster as dg

from stock_assets.assets.partitions import (
    bars_partitions,
    symbols_partitions,
    trading_days_partitions,
)

# scans the whole lake: run on demand (UI, `lake_check_job`), not after every ingest
ON_DEMAND_CHECKS = dg.AssetSelection.checks(
    dg.AssetCheckKey(dg.AssetKey("bars_1m"), "lake_readable")
)


def _asset_job(name: str, assets: list[str], partitions, description: str):
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(*assets) - ON_DEMAND_CHECKS,
        partitions_def=partitions,
        executor_def=dg.in_process_executor,
        description=description,
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
