"""The one Definitions object of stock-assets."""

from __future__ import annotations

import dagster as dg

from stock_assets.assets.bars import bars_1m, bars_1m_ohlc_consistent, bars_1m_unique_ts, derived_bars
from stock_assets.assets.partitions import bars_partitions
from stock_assets.jobs.gap_fill import gap_fill_job
from stock_assets.resources.market_data import MarketDataResource, alpaca_env_vars
from stock_assets.resources.warehouse import WarehouseResource

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(bars_1m, derived_bars),
    partitions_def=bars_partitions,
    description="Fetch 1-minute bars and derive 5m..1d bars for symbol x day partitions.",
)


def resources() -> dict[str, dg.ConfigurableResource]:
    """Resources read their settings from the environment when used; Alpaca keys come in
    as EnvVars when set, so they never show in the UI or run config."""
    names = alpaca_env_vars()
    keys = {}
    if names:
        keys = {"alpaca_key_id": dg.EnvVar(names[0]), "alpaca_secret_key": dg.EnvVar(names[1])}
    return {"market_data": MarketDataResource(**keys), "warehouse": WarehouseResource()}


defs = dg.Definitions(
    assets=[bars_1m, derived_bars],
    asset_checks=[bars_1m_unique_ts, bars_1m_ohlc_consistent],
    jobs=[ingest_job, gap_fill_job],
    resources=resources(),
)
