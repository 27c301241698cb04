"""Automation for bars: the nightly close-out schedule and the gap scanner sensor.
Both need the daemon (`stock-assets dev` starts it)."""

import dagster as dg
import pandas as pd

from stock_assets.assets.partitions import partition_key
from stock_assets.core import calendar
from stock_assets.resources.warehouse import WarehouseResource

GAP_LOOKBACK_SESSIONS = 5
MAX_GAP_REQUESTS = 50


@dg.schedule(
    job_name="ingest_job",
    cron_schedule="30 16 * * 1-5",
    execution_timezone=calendar.EXCHANGE_TZ,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """After each session's close (16:30 ET), ingest that day for every symbol."""
    day = pd.Timestamp(context.scheduled_execution_time).tz_convert(calendar.EXCHANGE_TZ).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day} is not an XNYS session")
    symbols = context.instance.get_dynamic_partitions("symbols")
    if not symbols:
        return dg.SkipReason("no symbols yet: stock-assets symbols add SPY")
    return [
        dg.RunRequest(run_key=f"nightly-{day}-{symbol}", partition_key=partition_key(symbol, day))
        for symbol in sorted(symbols)
    ]


@dg.sensor(
    job_name="ingest_job",
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def gap_scanner_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Ask providers again for recent days that still miss session minutes.

    Looks at `ingest_status` over the last 5 sessions; a (symbol, day) is requested again
    only while its count of missing minutes changes, so a gap no provider can fill is
    asked for once, not forever.
    """
    today = pd.Timestamp.now(calendar.EXCHANGE_TZ).date()
    last = calendar.last_session_on_or_before(today)
    first = calendar.previous_sessions(last, GAP_LOOKBACK_SESSIONS - 1)[:1] or [last]
    status = warehouse.catalog.ingest_status()
    recent = status[
        (status["status"] == "partial")
        & status["date"].between(pd.Timestamp(first[0]), pd.Timestamp(last))
    ]
    if recent.empty:
        return dg.SkipReason(f"no partial days between {first[0]} and {last}")
    config = {"ops": {"bars_1m": {"config": {"refetch": True}}}}
    return [
        dg.RunRequest(
            run_key=f"gaps-{row.symbol}-{row.date.date()}-{row.missing_minutes}",
            partition_key=partition_key(row.symbol, row.date.date()),
            run_config=config,
            tags={"stock_assets/reason": f"{row.missing_minutes} missing minutes"},
        )
        for row in recent.head(MAX_GAP_REQUESTS).itertuples()
    ]
