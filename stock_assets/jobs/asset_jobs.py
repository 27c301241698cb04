"""Jobs that materialize assets over partitions (ranges run as one run)."""

import dagster as dg

from stock_assets.assets.partitions import (
    bars_partitions,
    symbols_partitions,
    trading_days_partitions,
)

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("bars_1m", "derived_bars"),
    partitions_def=bars_partitions,
    executor_def=dg.in_process_executor,
    description="Fetch 1-minute bars and derive 5m..1d bars for symbol x day partitions.",
)
regimes_job = dg.define_asset_job(
    "regimes_job",
    selection=dg.AssetSelection.assets("market_regimes"),
    partitions_def=trading_days_partitions,
    executor_def=dg.in_process_executor,
    description="Market regimes (from QQQ and VIXY) for trading days.",
)
features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.assets("features"),
    partitions_def=bars_partitions,
    executor_def=dg.in_process_executor,
    description="The feature table for symbol x day partitions (regimes first).",
)
simulations_job = dg.define_asset_job(
    "simulations_job",
    selection=dg.AssetSelection.assets("simulations"),
    partitions_def=symbols_partitions,
    executor_def=dg.in_process_executor,
    description="The simulation grid over every model of a symbol, stored in sim_runs.",
)
