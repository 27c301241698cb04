"""The one Definitions object of stock-assets.

Resources take their settings from the environment (`dg.EnvVar`, read when a run
starts) where a variable is set, and from their defaults otherwise.
"""

from __future__ import annotations

import os

import dagster as dg

from stock_assets.assets.bars import bars, lake_readable
from stock_assets.assets.features import features, market_regimes
from stock_assets.assets.models import models
from stock_assets.assets.research import RESEARCH_ASSETS, research_automation_sensor
from stock_assets.assets.simulations import simulations
from stock_assets.jobs import JOBS
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.bars import gap_scanner_sensor, nightly_schedule
from stock_assets.sensors.follow import features_follow_sensor
from stock_assets.sensors.history import symbol_history_sensor
from stock_assets.sensors.live import live_bars_sensor
from stock_assets.sensors.ops import run_failure_alert_sensor

MARKET_DATA_ENV = {
    "providers": "STOCK_ASSETS_PROVIDERS",
    "alpaca_feed": "ALPACA_FEED",
    "alpaca_data_url": "ALPACA_DATA_URL",
    "csv_path": "STOCK_ASSETS_CSV_PATH",
    "csv_label": "STOCK_ASSETS_CSV_LABEL",
    "alpaca_request_deadline_s": "ALPACA_REQUEST_DEADLINE_S",
    "alpaca_fetch_deadline_s": "ALPACA_FETCH_DEADLINE_S",
    "alpaca_requests_per_minute": "ALPACA_REQUESTS_PER_MINUTE",
}


def _from_env(fields: dict[str, str]) -> dict[str, object]:
    """EnvVar fields for the variables that are set (an unset one keeps its default);
    fields named `*_s` (whole seconds) and `*_per_minute` are integers."""
    return {
        field: dg.EnvVar.int(name) if field.endswith(("_s", "_per_minute")) else dg.EnvVar(name)
        for field, name in fields.items()
        if os.environ.get(name)
    }


def build_defs() -> dg.Definitions:
    """The definitions, with resources bound to the environment as it is now (a process
    that launches runs in process builds them again when its environment changed)."""
    return dg.Definitions(
        assets=[bars, market_regimes, features, models, simulations, *RESEARCH_ASSETS],
        asset_checks=[lake_readable],
        jobs=JOBS,
        schedules=[nightly_schedule],
        sensors=[
            gap_scanner_sensor,
            live_bars_sensor,
            research_automation_sensor,
            run_failure_alert_sensor,
            symbol_history_sensor,
            features_follow_sensor,
        ],  # fmt: skip
        resources={
            "market_data": MarketDataResource(**_from_env(MARKET_DATA_ENV)),
            "warehouse": WarehouseResource(**_from_env({"home": "STOCK_ASSETS_HOME"})),
            "mlflow": MlflowResource(**_from_env({"tracking_uri": "MLFLOW_TRACKING_URI"})),
        },
    )


defs = build_defs()
