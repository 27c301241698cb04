"""The one Definitions object of stock-assets."""

from __future__ import annotations

import dagster as dg

from stock_assets import settings
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


def market_data_resource() -> MarketDataResource:
    """Providers from STOCK_ASSETS_PROVIDERS (default auto); Alpaca keys as EnvVars."""
    names = alpaca_env_vars()
    keys = {}
    if names:
        keys = {"alpaca_key_id": dg.EnvVar(names[0]), "alpaca_secret_key": dg.EnvVar(names[1])}
    import os

    return MarketDataResource(
        providers=os.environ.get("STOCK_ASSETS_PROVIDERS", "auto"),
        alpaca_feed=os.environ.get("ALPACA_FEED", "iex"),
        csv_path=os.environ.get("STOCK_ASSETS_CSV_PATH") or None,
        **keys,
    )


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "market_data": market_data_resource(),
        "warehouse": WarehouseResource(home=str(settings.home())),
    }


defs = dg.Definitions(
    assets=[bars_1m, derived_bars],
    asset_checks=[bars_1m_unique_ts, bars_1m_ohlc_consistent],
    jobs=[ingest_job, gap_fill_job],
    resources=resources(),
)
