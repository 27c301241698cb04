"""The live updater sensor: while the XNYS session is open, each tick (once a minute)
brings every symbol's today partition up to the last completed minute, with today's
derived bars, regimes and features after it (`pipelines.live`).

A tick does its work in the sensor's own evaluation and launches no run: it reports what
it stored as asset materializations of today's partitions (bars_1m, derived_bars and
features per symbol that advanced, market_regimes when QQQ or VIXY did), so a tick over
S symbols costs one provider request per group of symbols sharing their last bar (one in
the steady state) and 3 S + 1 events at most. It fires the `stall` alert when no symbol
has advanced for STOCK_ASSETS_STALL_MINUTES during the session, and clears it when one does.
"""

from __future__ import annotations

import dagster as dg

from stock_assets.assets.partitions import partition_key
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors import health

SENSOR = "live_bars_sensor"


@dg.sensor(
    name=SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="During XNYS sessions, appends each symbol's newly completed minutes to "
    "today's partitions (bars, derived bars, features) in the sensor itself: no run per "
    "tick. Skips outside sessions without asking any provider.",
)
def live_bars_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    market_data: MarketDataResource,
):
    import pandas as pd

    return evaluate(context.instance, warehouse, market_data, pd.Timestamp.now("UTC"))


def evaluate(
    instance: dg.DagsterInstance,
    warehouse: WarehouseResource,
    market_data: MarketDataResource,
    now,
) -> dg.SensorResult | dg.SkipReason:
    """One tick at `now` (UTC): what the sensor returns."""
    import pandas as pd

    from stock_assets.pipelines import alerts
    from stock_assets.pipelines.features import QQQ, VIXY
    from stock_assets.pipelines.live import live_tick, live_window

    store = warehouse.open()
    window = live_window(now)
    if isinstance(window, str):
        alerts.check_stall(store, SENSOR, now, now, session_open=False)
        return dg.SkipReason(window)
    symbols = health.symbols(instance)
    if not symbols:
        return dg.SkipReason("no symbols yet: stock-assets symbols add SPY")
    tick = live_tick(store, market_data.chain(), symbols, window, now)
    newest = max((bar for bar in tick.last_bar.values() if bar is not None), default=None)
    advanced_at = window.open if newest is None else newest + pd.Timedelta(minutes=1)
    alerts.check_stall(store, SENSOR, advanced_at, now)
    day = window.day
    events = []
    for symbol in tick.advanced:
        metadata = {"rows_added": tick.added[symbol], "rows": tick.stored[symbol],
                    "last_bar": tick.last_bar[symbol].isoformat(), "by": SENSOR}  # fmt: skip
        key = partition_key(symbol, day)
        events += [
            dg.AssetMaterialization("bars_1m", partition=key, metadata=metadata),
            dg.AssetMaterialization("derived_bars", partition=key, metadata={"by": SENSOR}),
            dg.AssetMaterialization(
                "features",
                partition=key,
                metadata={"rows_added": tick.features.get(symbol, 0), "by": SENSOR},
            ),  # fmt: skip
        ]
    if {QQQ, VIXY} & set(tick.advanced):
        events.append(dg.AssetMaterialization("market_regimes", partition=day.isoformat()))
    if not events:
        failed = "; ".join(f"{s}: {e}" for s, e in sorted(tick.errors.items()))
        return dg.SkipReason(f"no new bars through {window.until.isoformat()}" +
                             (f" ({failed})" if failed else ""))  # fmt: skip
    return dg.SensorResult(asset_events=events)
