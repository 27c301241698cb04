"""The XNYS market calendar: which days are sessions and which minutes they contain.

Every minute is labelled by the start of its bar, in UTC: a regular session has 390
minutes (09:30 .. 15:59 ET), a half day 210 (09:30 .. 12:59 ET). Holidays and weekends
are not sessions. DST is handled by the calendar itself (13:30 or 14:30 UTC opens).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stock_assets.core.errors import UsageError

if TYPE_CHECKING:
    import exchange_calendars as xcals

EXCHANGE_TZ = "America/New_York"
FIRST_DAY = dt.date(2000, 1, 3)


class InvalidDate(UsageError):
    """A date or date range that cannot be used (malformed, reversed or out of range)."""


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    import exchange_calendars as xcals  # built once, on first use: a slow import

    return xcals.get_calendar("XNYS", start=FIRST_DAY.isoformat())


@lru_cache(maxsize=1)
def _schedule() -> pd.DataFrame:
    schedule = _calendar().schedule[["open", "close"]].copy()
    schedule.index = schedule.index.date
    return schedule


@lru_cache(maxsize=1)
def bounds_ns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All sessions as arrays: dates, opens and closes (UTC nanoseconds), in order."""
    schedule = _schedule()
    opens = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
    return np.asarray(schedule.index), opens, closes


def last_day() -> dt.date:
    """The last day the calendar knows (about a year ahead of today)."""
    return _calendar().last_session.date()


def parse_date(value: str | dt.date) -> dt.date:
    """A date from `YYYY-MM-DD` (or a date), inside the calendar's range."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidDate(f"{value!r}: dates are YYYY-MM-DD") from None
    if not FIRST_DAY <= value <= last_day():
        raise InvalidDate(f"{value}: dates must lie between {FIRST_DAY} and {last_day()}")
    return value


def parse_range(start: str | dt.date, end: str | dt.date) -> tuple[dt.date, dt.date]:
    """A validated inclusive date range (start <= end)."""
    first, last = parse_date(start), parse_date(end)
    if first > last:
        raise InvalidDate(f"start {first} is after end {last}")
    return first, last


@lru_cache(maxsize=1)
def _positions() -> dict[dt.date, int]:
    return {day: i for i, day in enumerate(_schedule().index)}


def session_position(day: dt.date) -> int | None:
    """The index of a session in `bounds_ns()` arrays (None for a non-session day)."""
    return _positions().get(day)


def is_session(day: dt.date) -> bool:
    return day in _positions()


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """The trading days from start to end, both included."""
    index = _schedule().index
    lo, hi = np.searchsorted(index, start, "left"), np.searchsorted(index, end, "right")
    return list(index[lo:hi])


def previous_sessions(day: dt.date, count: int) -> list[dt.date]:
    """The `count` sessions strictly before `day`, oldest first."""
    index = _schedule().index
    hi = int(np.searchsorted(index, day, "left"))
    return list(index[max(0, hi - count) : hi])


def last_session_on_or_before(day: dt.date) -> dt.date:
    index = _schedule().index
    return index[int(np.searchsorted(index, day, "right")) - 1]


def last_closed_session(now: dt.datetime | pd.Timestamp) -> dt.date:
    """The newest session that has closed by `now` (tz-aware): a session in progress is
    not closed (the live updater owns it)."""
    moment = pd.Timestamp(now)
    last = last_session_on_or_before(moment.tz_convert(EXCHANGE_TZ).date())
    if moment < session_bounds(last)[1]:
        last = previous_sessions(last, 1)[0]
    return last


def session_bounds(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Open and close of a session as UTC timestamps; the close is exclusive."""
    position = session_position(day)
    if position is None:
        raise InvalidDate(f"{day} is not an XNYS session")
    _, opens, closes = bounds_ns()
    return pd.Timestamp(opens[position], tz="UTC"), pd.Timestamp(closes[position], tz="UTC")


def session_length(day: dt.date) -> int:
    """The number of minutes in a session (0 for a non-session day)."""
    position = session_position(day)
    if position is None:
        return 0
    _, opens, closes = bounds_ns()
    return int((closes[position] - opens[position]) // 60_000_000_000)


def session_minutes(day: dt.date) -> pd.DatetimeIndex:
    """The bar-start minutes of one session, UTC (empty for a non-session day)."""
    if not is_session(day):
        return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="ts")
    open_, close = session_bounds(day)
    return pd.date_range(open_, close, freq="min", inclusive="left", name="ts").as_unit("ns")


def sessions_minutes(days: list[dt.date]) -> pd.DatetimeIndex:
    """The bar-start minutes of several sessions, concatenated in order."""
    parts = [session_minutes(day) for day in days]
    if not parts:
        return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="ts")
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]
