"""The one Definitions object of stock-assets."""

from __future__ import annotations

import dagster as dg

from stock_assets.assets.bars import (
    bars_1m,
    bars_1m_ohlc_consistent,
    bars_1m_unique_ts,
    derived_bars,
)
from stock_assets.assets.features import features, market_regimes
from stock_assets.assets.partitions import bars_partitions, trading_days_partitions
from stock_assets.assets.simulations import simulations
from stock_assets.jobs.gap_fill import gap_fill_job
from stock_assets.jobs.grid_search import grid_search_job
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.bars import gap_scanner_sensor, nightly_schedule

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(bars_1m, derived_bars),
    partitions_def=bars_partitions,
    description="Fetch 1-minute bars and derive 5m..1d bars for symbol x day partitions.",
)
regimes_job = dg.define_asset_job(
    "regimes_job",
    selection=dg.AssetSelection.assets(market_regimes),
    partitions_def=trading_days_partitions,
    description="Market regimes (from QQQ and VIXY) for trading days.",
)
features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.assets(features),
    partitions_def=bars_partitions,
    description="The feature table for symbol x day partitions (regimes first).",
)


defs = dg.Definitions(
    assets=[bars_1m, derived_bars, market_regimes, features, simulations],
    asset_checks=[bars_1m_unique_ts, bars_1m_ohlc_consistent],
    jobs=[ingest_job, regimes_job, features_job, gap_fill_job, grid_search_job],
    schedules=[nightly_schedule],
    sensors=[gap_scanner_sensor],
    resources={"market_data": MarketDataResource(), "warehouse": WarehouseResource()},
)
