"""Automation for bars: the nightly close-out schedule and the gap scanner sensor.
Both need the daemon (`stock-assets dev` starts it)."""

import dagster as dg

from stock_assets.jobs import ingest_job
from stock_assets.jobs import launcher as launches
from stock_assets.resources.warehouse import WarehouseResource

GAP_LOOKBACK_SESSIONS = 5
MAX_GAP_REQUESTS = 50
EXCHANGE_TZ = "America/New_York"


@dg.schedule(
    job=ingest_job,
    cron_schedule="30 16 * * 1-5",
    execution_timezone=EXCHANGE_TZ,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """After each session's close (16:30 ET), ingest that day for every symbol."""
    import pandas as pd

    from stock_assets.core import calendar

    day = pd.Timestamp(context.scheduled_execution_time).tz_convert(EXCHANGE_TZ).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day} is not an XNYS session")
    symbols = context.instance.get_dynamic_partitions("symbols")
    if not symbols:
        return dg.SkipReason("no symbols yet: stock-assets symbols add SPY")
    return [
        launches.ingest(symbol, day).run_request(run_key=f"nightly-{day}-{symbol}")
        for symbol in sorted(symbols)
    ]


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def gap_scanner_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Ask providers again for recent days that still miss session minutes.

    Looks at `ingest_status` over the last 5 sessions (today's only once it has closed:
    the live updater fills it meanwhile); a (symbol, day) is requested again
    only while its count of missing minutes changes, so a gap no provider can fill is
    asked for once, not forever.
    """
    import pandas as pd

    from stock_assets.core import calendar

    last = calendar.last_closed_session(pd.Timestamp.now("UTC"))  # today: the live updater's
    first = calendar.previous_sessions(last, GAP_LOOKBACK_SESSIONS - 1)[:1] or [last]
    status = warehouse.open().catalog.ingest_status()
    recent = status[
        (status["status"] == "partial")
        & status["date"].between(pd.Timestamp(first[0]), pd.Timestamp(last))
    ]
    if recent.empty:
        return dg.SkipReason(f"no partial days between {first[0]} and {last}")
    return [
        launches.ingest(row.symbol, row.date.date(), refetch=True).run_request(
            run_key=f"gaps-{row.symbol}-{row.date.date()}-{row.missing_minutes}",
            **{"stock_assets/reason": f"{row.missing_minutes} missing minutes"},
        )
        for row in recent.head(MAX_GAP_REQUESTS).itertuples()
    ]
