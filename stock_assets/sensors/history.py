"""The history agent: a symbol added to the `symbols` partitions (UI, CLI, API) gets its
history ingested by `symbol_history_sensor`, as ranged ingest runs over its last
STOCK_ASSETS_HISTORY_SESSIONS sessions (default 252, about a year). Needs the daemon."""

from __future__ import annotations

import datetime as dt
import json
import os

import dagster as dg

from stock_assets import settings
from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import InvalidSymbol, check_symbol_key
from stock_assets.jobs import ingest_job
from stock_assets.jobs import launcher as launches
from stock_assets.resources.warehouse import WarehouseResource

HISTORY_SESSIONS_ENV = "STOCK_ASSETS_HISTORY_SESSIONS"
DEFAULT_HISTORY_SESSIONS = 252
MAX_HISTORY_SESSIONS = 252 * 30
CHUNK_SESSIONS = 63  # one run per quarter: a failed run loses a quarter, not the year
REASON_TAG = "stock_assets/reason"


class InvalidHistoryDepth(UsageError):
    """STOCK_ASSETS_HISTORY_SESSIONS is not a usable number of sessions."""


def history_sessions() -> int:
    """How many sessions of history a new symbol gets (STOCK_ASSETS_HISTORY_SESSIONS;
    0: none, the backfill is off)."""
    raw = os.environ.get(HISTORY_SESSIONS_ENV, "").strip()
    if not raw:
        return DEFAULT_HISTORY_SESSIONS
    try:
        sessions = int(raw)
    except ValueError:
        sessions = -1
    if not 0 <= sessions <= MAX_HISTORY_SESSIONS:
        raise InvalidHistoryDepth(
            f"{HISTORY_SESSIONS_ENV}={raw!r}: a whole number of sessions from 0 (no "
            f"history) to {MAX_HISTORY_SESSIONS} (default {DEFAULT_HISTORY_SESSIONS}, a year)"
        )
    return sessions


def history_chunks(last: dt.date, sessions: int) -> list[tuple[dt.date, dt.date]]:
    """The last `sessions` sessions up to `last` (none before the first partition day),
    as (first, last) ranges of at most CHUNK_SESSIONS sessions, oldest first."""
    from stock_assets.core import calendar

    days = calendar.previous_sessions(last, sessions - 1) + [last]
    days = [day for day in days if day >= settings.first_partition_day()]
    return [
        (days[i], days[min(i + CHUNK_SESSIONS, len(days)) - 1])
        for i in range(0, len(days), CHUNK_SESSIONS)
    ]


def history_requests(symbol: str, last: dt.date, sessions: int) -> list[dg.RunRequest]:
    """Ranged ingest runs over one symbol's history; the run keys name the symbol and the
    days, so evaluating again never requests a run twice."""
    return [
        launches.ingest(symbol, first, end).run_request(
            run_key=f"history-{symbol}-{first}-{end}",
            **{REASON_TAG: f"history: {symbol}'s last {sessions} sessions"},
        )
        for first, end in history_chunks(last, sessions)
    ]


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def symbol_history_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Ingest the history of each symbol added to the `symbols` partitions: its last
    STOCK_ASSETS_HISTORY_SESSIONS sessions (default 252) up to the last closed session,
    as ingest runs of at most 63 sessions (0 sessions: no backfill).

    The cursor lists the symbols already handled; a removed symbol drops out of it, so
    added again it is requested again (the same days' run keys only once; complete days
    are not fetched twice). On the first evaluation, symbols that already have bars are
    recorded without a backfill.
    """
    registered = sorted(context.instance.get_dynamic_partitions("symbols"))
    first_evaluation = context.cursor is None
    handled = set(json.loads(context.cursor or "[]")) & set(registered)
    new = [key for key in registered if key not in handled]
    if not new:
        return dg.SensorResult(skip_reason="no new symbols", cursor=json.dumps(sorted(handled)))
    sessions = history_sessions()
    if sessions == 0:
        return dg.SensorResult(
            skip_reason=f"{HISTORY_SESSIONS_ENV}=0: new symbols get no history",
            cursor=json.dumps(sorted(handled | set(new))),
        )
    from stock_assets.core import calendar

    last = calendar.last_closed_session(dt.datetime.now(dt.UTC))
    store = warehouse.open()
    requests = []
    for key in new:
        try:
            symbol = check_symbol_key(key)
        except InvalidSymbol as error:
            context.log.warning(f"no history for partition {key!r}: {error}")
            continue
        if first_evaluation and store.bar_days(symbol):
            context.log.info(f"{symbol} already has bars: recorded, no history backfill")
            continue
        requests += history_requests(symbol, last, sessions)
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(handled | set(new))))
