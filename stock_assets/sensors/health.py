"""Status at a glance, for `stock-assets status` and `GET /status`: per symbol the newest
stored 1m bar, its lag behind the session clock, today's missing minutes and whether it
is stale; the live sensor's last tick, the daemons' health and the firing alerts.

The session clock is the open of the newest completed bar of the current XNYS session,
or the last bar of the last session when none is open. A symbol is stale:
- during an open session, when its lag exceeds the stall threshold
  (STOCK_ASSETS_STALL_MINUTES, default 5) or it has no bar at all;
- outside a session, when a whole session after its newest stored day is missing.
The report is stale (the CLI exits 1) only when a symbol is stale during a session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from stock_assets.storage.warehouse import Warehouse

LIVE_SENSOR = "live_bars_sensor"
MINUTE_NS = 60_000_000_000


@dataclass
class SymbolStatus:
    symbol: str
    last_bar: str | None  # open time (UTC) of the newest stored 1m bar
    lag_minutes: float | None  # minutes from last_bar to the session clock
    lag_seconds: float | None  # seconds from last_bar to now
    sessions_behind: int | None  # sessions after the newest stored day, up to the clock's
    missing_minutes_today: int | None  # elapsed session minutes not stored; None: no session
    stale: bool


@dataclass
class DaemonStatus:
    daemon: str
    required: bool
    healthy: bool | None
    last_heartbeat: str | None


@dataclass
class InstigatorStatus:
    name: str
    kind: str  # sensor or schedule
    status: str
    last_tick: str | None
    last_tick_status: str | None


@dataclass
class StatusReport:
    now: str
    session_open: bool
    session_clock: str | None
    stall_minutes: int
    daemons: list[DaemonStatus]
    daemons_healthy: bool
    instigators: list[InstigatorStatus]
    live_sensor: InstigatorStatus | None
    symbols: list[SymbolStatus]
    alerts: list[dict] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """Something is stale during an open session."""
        return self.session_open and any(s.stale for s in self.symbols)

    def to_dict(self) -> dict:
        return {**asdict(self), "stale": self.stale}


def report(instance, warehouse: Warehouse, now: dt.datetime | None = None) -> StatusReport:
    """The status of the instance and the warehouse at `now` (default: the clock)."""
    import pandas as pd

    from stock_assets.pipelines import alerts

    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    clock, session_open = session_clock(now_ts)
    threshold = alerts.stall_minutes()
    daemons = daemon_statuses(instance)
    instigators = instigator_statuses(instance)
    return StatusReport(
        now=_iso(now_ts), session_open=session_open, session_clock=_iso(clock),
        stall_minutes=threshold, daemons=daemons,
        daemons_healthy=all(d.healthy for d in daemons if d.required),
        instigators=instigators,
        live_sensor=next((i for i in instigators if i.name == LIVE_SENSOR), None),
        symbols=symbol_statuses(warehouse, symbols(instance), now_ts, clock, session_open,
                                threshold),
        alerts=_alerts(warehouse),
    )  # fmt: skip


def session_clock(now: pd.Timestamp) -> tuple[pd.Timestamp | None, bool]:
    """(the open of the newest completed bar of the current or last session, whether a
    session is open at `now`)."""
    import pandas as pd

    from stock_assets.core import calendar
    from stock_assets.core.ingest import last_completed_minute

    today = now.tz_convert(calendar.EXCHANGE_TZ).date()
    session_open = False
    if calendar.is_session(today):
        start, end = calendar.session_bounds(today)
        session_open = start <= now < end
        minute = last_completed_minute(now)
        if minute >= start:
            return min(minute, end - pd.Timedelta(minutes=1)), session_open
    previous = calendar.previous_sessions(today, 1)
    if not previous:
        return None, session_open
    return calendar.session_bounds(previous[0])[1] - pd.Timedelta(minutes=1), session_open


def symbol_statuses(warehouse: Warehouse, names: list[str], now: pd.Timestamp,
                    clock: pd.Timestamp | None, session_open: bool,
                    threshold: int) -> list[SymbolStatus]:  # fmt: skip
    import pandas as pd

    from stock_assets.core import calendar

    today = now.tz_convert(calendar.EXCHANGE_TZ).date()
    missing_today = {}
    if calendar.is_session(today):
        rows = warehouse.catalog.read(
            "SELECT symbol, missing_minutes FROM ingest_status WHERE date = ?", [today]
        )
        missing_today = dict(zip(rows["symbol"], rows["missing_minutes"], strict=True))
    clock_day = clock.tz_convert(calendar.EXCHANGE_TZ).date() if clock is not None else None
    found = []
    for symbol in names:
        newest = warehouse.latest_bars(symbol, "1m", 1)
        last = pd.Timestamp(newest.column("ts")[0].as_py()) if newest is not None else None
        if last is not None and last.tzinfo is None:
            last = last.tz_localize("UTC")
        lag = behind = None
        if last is not None and clock is not None:
            lag = max(0.0, (clock - last).total_seconds() / 60)
            last_day = last.tz_convert(calendar.EXCHANGE_TZ).date()
            behind = (len(calendar.sessions(last_day + dt.timedelta(days=1), clock_day))
                      if last_day < clock_day else 0)  # fmt: skip
        # in a session: behind the clock; outside: a whole session missing
        stale = (lag is None or lag > threshold) if session_open else (last is None or bool(behind))
        found.append(SymbolStatus(
            symbol=symbol, last_bar=_iso(last), lag_minutes=lag,
            lag_seconds=round((now - last).total_seconds(), 3) if last is not None else None,
            sessions_behind=behind,
            missing_minutes_today=_missing_today(today, clock, missing_today.get(symbol)),
            stale=stale,
        ))  # fmt: skip
    return found


def _missing_today(today: dt.date, clock, stored_missing) -> int | None:
    """Session minutes of today up to the clock that are not stored (None when today is
    no session). `ingest_status` counts every minute of the day not stored, those still
    to come included, so the minutes after the clock are taken off."""
    from stock_assets.core import calendar

    if not calendar.is_session(today):
        return None
    start, _ = calendar.session_bounds(today)
    elapsed = 0
    if clock is not None and clock >= start:
        elapsed = int((clock - start).value // MINUTE_NS) + 1
    length = calendar.session_length(today)
    present = 0 if stored_missing is None else length - int(stored_missing)
    return max(0, elapsed - present)


def symbols(instance) -> list[str]:
    """The valid symbols among the instance's `symbols` partitions, sorted."""
    from stock_assets.core.symbols import SYMBOL_PATTERN

    keys = instance.get_dynamic_partitions("symbols")
    return sorted(key for key in keys if SYMBOL_PATTERN.fullmatch(key))


def daemon_statuses(instance) -> list[DaemonStatus]:
    from dagster._daemon.controller import get_daemon_statuses

    kinds = instance.get_required_daemon_types()
    return [
        DaemonStatus(daemon=name, required=found.required, healthy=found.healthy,
                     last_heartbeat=_iso(found.last_heartbeat.timestamp
                                         if found.last_heartbeat else None))
        for name, found in sorted(get_daemon_statuses(instance, kinds).items())
    ]  # fmt: skip


def instigator_statuses(instance) -> list[InstigatorStatus]:
    """Every sensor and schedule the instance knows, with its last tick."""
    found = []
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        tick = ticks[0] if ticks else None
        found.append(InstigatorStatus(
            name=state.name, kind=state.instigator_type.value.lower(), status=state.status.value,
            last_tick=_iso(tick.timestamp) if tick else None,
            last_tick_status=tick.status.value if tick else None,
        ))  # fmt: skip
    return sorted(found, key=lambda i: (i.kind, i.name))


def _alerts(warehouse: Warehouse) -> list[dict]:
    from stock_assets.pipelines import alerts

    firing = alerts.active(warehouse)
    return [
        {"kind": row.kind, "subject": row.subject, "message": row.message,
         "fired_at": _iso(row.fired_at), "updated_at": _iso(row.updated_at)}
        for row in firing.itertuples()
    ]  # fmt: skip


def _iso(value: object) -> str | None:
    """UTC ISO 8601 of a timestamp, a datetime or epoch seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.astimezone(dt.UTC).isoformat()
