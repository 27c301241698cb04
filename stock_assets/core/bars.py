"""1-minute bars: the frame contract, validation, merging, gaps, gap filling, resampling.

A bars frame holds one symbol, sorted by `ts` (bar-open time, UTC) with unique `ts`, and
the columns of BAR_COLUMNS. Everything here is vectorized over whole frames spanning
many sessions, so a year of minutes is validated or resampled in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.intervals import DERIVED_INTERVALS, INTERVALS  # noqa: F401 (re-exported)

PRICE_COLUMNS = ["open", "high", "low", "close"]
VALUE_COLUMNS = [*PRICE_COLUMNS, "volume", "vwap", "trade_count"]
BAR_COLUMNS = ["ts", *VALUE_COLUMNS, "source", "is_filled"]
FILL_SOURCE = "fill"
_NS_PER_MIN = 60_000_000_000


@lru_cache(maxsize=1)
def _empty() -> pd.DataFrame:
    return conform(pd.DataFrame({column: [] for column in BAR_COLUMNS}), source="")


def empty_bars() -> pd.DataFrame:
    return _empty().copy()


def conform(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The frame with exactly BAR_COLUMNS in their dtypes, sorted by ts.

    Missing optional columns (vwap, trade_count, source, is_filled) get NaN/NA, the given
    source and False. `ts` becomes UTC (naive timestamps are taken as UTC).
    """
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    ts = pd.to_datetime(frame["ts"], utc=True) if len(frame) else pd.Series([], dtype="M8[ns, UTC]")
    out["ts"] = pd.DatetimeIndex(ts).as_unit("ns")
    for column in ["open", "high", "low", "close", "volume", "vwap"]:
        values = frame.get(column, np.nan)
        out[column] = pd.to_numeric(pd.Series(values, index=out.index), errors="coerce")
        out[column] = out[column].astype("float64")
    counts = frame.get("trade_count", pd.NA)
    counts = pd.to_numeric(pd.Series(counts, index=out.index), errors="coerce")
    out["trade_count"] = counts.round().astype("Int64")
    if "source" in frame and source is None:
        out["source"] = frame["source"].astype(str).to_numpy()
    else:
        out["source"] = source or ""
    filled = frame["is_filled"].to_numpy() if "is_filled" in frame else False
    out["is_filled"] = pd.Series(filled, index=out.index).astype(bool)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def session_position(ts: pd.Series | pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """For each timestamp: the index of the session it falls in, and whether it does.

    A timestamp is inside a session when open <= ts < close of the latest session that
    opened at or before it.
    """
    _, opens, closes = calendar.bounds_ns()
    values = pd.DatetimeIndex(ts).as_unit("ns").asi8
    index = np.searchsorted(opens, values, "right") - 1
    safe = np.clip(index, 0, len(opens) - 1)
    inside = (index >= 0) & (values < closes[safe])
    return safe, inside


def day_slices(ts: pd.Series | pd.DatetimeIndex, days: list) -> dict:
    """For sorted in-session timestamps: {day: (first row, end row)} of each day's rows
    (an empty slice for a day that is not a session)."""
    index, _ = session_position(ts)
    positions = np.array([calendar.session_position(day) for day in days], dtype=float)
    known = ~np.isnan(positions)
    lo = np.searchsorted(index, np.where(known, positions, -1), "left")
    hi = np.where(known, np.searchsorted(index, np.where(known, positions, -1), "right"), lo)
    return {day: (int(a), int(b)) for day, a, b in zip(days, lo, hi, strict=True)}


def bar_days(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """The session date of each in-session timestamp (object array of datetime.date)."""
    index, _ = session_position(ts)
    return calendar.bounds_ns()[0][index]


@dataclass
class Validation:
    """What validation dropped, by reason (a row counts once, under its first reason)."""

    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.dropped.values())


def validate_bars(frame: pd.DataFrame) -> tuple[pd.DataFrame, Validation]:
    """The rows that are fit to store, and the count of rows dropped per reason.

    Reasons: `missing_values` (any OHLCV NaN), `nonpositive_price`, `negative_volume`,
    `ohlc_inconsistent` (low > min(open, close) or high < max(open, close)),
    `outside_session` (not inside an XNYS session), `duplicate_ts` (later copies of a
    timestamp already seen).
    """
    bars = conform(frame, source=None) if list(frame.columns) != BAR_COLUMNS else frame
    ohlc = bars[PRICE_COLUMNS].to_numpy()
    volume = bars["volume"].to_numpy()
    _, inside = session_position(bars["ts"])
    ohlc_rule = ohlc_violations(bars)
    checks = {
        "missing_values": np.isnan(ohlc).any(axis=1) | np.isnan(volume),
        "nonpositive_price": ohlc_rule["nonpositive_price"],
        "negative_volume": volume < 0,
        "ohlc_inconsistent": ohlc_rule["ohlc_inconsistent"],
        "outside_session": ~inside,
        "duplicate_ts": bars["ts"].duplicated(keep="first").to_numpy(),
    }
    bad = np.zeros(len(bars), dtype=bool)
    report = Validation()
    for reason, mask in checks.items():
        fresh = mask & ~bad
        if fresh.any():
            report.dropped[reason] = int(fresh.sum())
        bad |= mask
    return bars.loc[~bad].reset_index(drop=True), report


def ohlc_violations(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The OHLC rule, one mask per way to break it: `nonpositive_price` (a price <= 0) and
    `ohlc_inconsistent` (low > min(open, close) or high < max(open, close))."""
    open_, high, low, close = (bars[c].to_numpy(dtype=np.float64) for c in PRICE_COLUMNS)
    return {
        "nonpositive_price": (np.minimum(np.minimum(open_, high), np.minimum(low, close)) <= 0),
        "ohlc_inconsistent": (low > np.minimum(open_, close)) | (high < np.maximum(open_, close)),
    }


def merge_bars(existing: pd.DataFrame, incoming: pd.DataFrame) -> pd.DataFrame:
    """Stored bars plus the incoming ones they lack.

    A stored real bar is never replaced; a real incoming bar replaces a filled one; a
    filled incoming bar only fills a minute that has nothing.
    """
    if existing.empty:
        return incoming.reset_index(drop=True)
    both = pd.concat([existing, incoming], ignore_index=True)
    rank = both["is_filled"].to_numpy().astype(int) * 2
    rank[len(existing) :] += 1
    both["_rank"] = rank
    both = both.sort_values(["ts", "_rank"], kind="stable").drop_duplicates("ts")
    return both.drop(columns="_rank").reset_index(drop=True)


def expected_minutes(days: list) -> pd.DatetimeIndex:
    return calendar.sessions_minutes(sorted(d for d in days if calendar.is_session(d)))


def missing_minutes(bars: pd.DataFrame, days: list) -> pd.DatetimeIndex:
    """Session minutes of `days` that have no bar at all (filled bars count as present)."""
    expected = expected_minutes(days)
    return expected[~expected.isin(pd.DatetimeIndex(bars["ts"]))]


def missing_by_day(bars: pd.DataFrame, days: list) -> dict:
    """The number of missing session minutes of each day, for validated bars (sorted,
    unique, in-session): the session's length minus the bars it has."""
    slices = day_slices(bars["ts"], days)
    return {day: calendar.session_length(day) - (hi - lo) for day, (lo, hi) in slices.items()}


def fill_gaps(bars: pd.DataFrame, days: list, max_iterations: int = 10) -> pd.DataFrame:
    """Bars with missing session minutes filled from their neighbours, flagged.

    Each iteration fills every missing minute that has a bar one minute before or after it
    in the same session, with the mean of those neighbours (OHLC, volume, vwap,
    trade_count rounded); fills get `is_filled=True` and `source='fill'`. A run of k
    missing minutes closes from both ends in ceil(k/2) iterations. Repeatable: filling an
    already filled frame changes nothing.
    """
    grid = expected_minutes(days)
    if len(grid) == 0:
        return bars
    session, _ = session_position(grid)
    frame = bars.set_index("ts").reindex(grid)
    present = frame["open"].notna().to_numpy()
    if present.all() or not present.any():
        return bars
    numeric = ["open", "high", "low", "close", "volume", "vwap", "trade_count"]
    values = frame[numeric].astype("float64").to_numpy()
    filled = np.zeros(len(grid), dtype=bool)
    same_prev = np.r_[False, session[1:] == session[:-1]]
    same_next = np.r_[session[:-1] == session[1:], False]
    for _ in range(max_iterations):
        has_prev = np.r_[False, present[:-1]] & same_prev
        has_next = np.r_[present[1:], False] & same_next
        target = ~present & (has_prev | has_next)
        if not target.any():
            break
        prev_vals = np.vstack([np.full(len(numeric), np.nan), values[:-1]])
        next_vals = np.vstack([values[1:], np.full(len(numeric), np.nan)])
        prev_vals[~has_prev] = np.nan
        next_vals[~has_next] = np.nan
        stacked = np.stack([prev_vals[target], next_vals[target]])
        with np.errstate(invalid="ignore"):
            values[target] = np.nanmean(stacked, axis=0)
        present = present | target
        filled |= target
    new = pd.DataFrame(values[filled], columns=numeric)
    new.insert(0, "ts", grid[filled])
    new["source"] = FILL_SOURCE
    new["is_filled"] = True
    return merge_bars(bars, conform(new, source=None))


DERIVED_COLUMNS = ["ts", *VALUE_COLUMNS, "minutes", "filled_minutes"]


def resample_bars(bars: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Bars aggregated into session-aligned buckets (5m, 15m, 30m, 1h from 09:30 ET; 1d).

    open = first open, high = max, low = min, close = last close, volume = sum,
    vwap = sum(vwap x volume) / sum(volume) (the mean vwap when the volume is 0),
    trade_count = sum; `minutes` and `filled_minutes` say how many 1-minute bars, and
    how many made-up ones, went into each bucket. `ts` is the bucket's start.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r}: choose one of {', '.join(INTERVALS)}")
    if interval == "1m" or bars.empty:
        out = bars.drop(columns=["source", "is_filled"]).copy()
        out["minutes"] = 1
        out["filled_minutes"] = bars["is_filled"].astype(int)
        return out[DERIVED_COLUMNS] if interval == "1m" else out.iloc[0:0][DERIVED_COLUMNS]
    session, inside = session_position(bars["ts"])
    if not inside.all():
        raise ValueError("bars outside XNYS sessions cannot be resampled")
    opens = calendar.bounds_ns()[1]
    ts = pd.DatetimeIndex(bars["ts"]).asi8
    open_ns = opens[session]
    width = INTERVALS[interval]
    if width is None:
        bucket = open_ns
    else:
        step = width * _NS_PER_MIN
        bucket = open_ns + (ts - open_ns) // step * step
    order = np.argsort(bucket, kind="stable")  # validated bars are sorted: a no-op
    bucket = bucket[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]

    def column(name: str) -> np.ndarray:
        return bars[name].to_numpy("float64", na_value=np.nan)[order]

    def total(values: np.ndarray) -> np.ndarray:  # NaN counts as nothing, as in a SQL SUM
        return np.add.reduceat(np.nan_to_num(values, nan=0.0), starts)

    volume, vwap, trades = column("volume"), column("vwap"), column("trade_count")
    known_vwap, known_trades = ~np.isnan(vwap), ~np.isnan(trades)
    vwap_volume = total(np.where(known_vwap, volume, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        by_volume = total(vwap * volume) / vwap_volume
        by_count = total(vwap) / np.add.reduceat(known_vwap.astype(np.int64), starts)
    trade_count = pd.array(np.round(total(trades)), dtype="Int64")
    trade_count[np.add.reduceat(known_trades.astype(np.int64), starts) == 0] = pd.NA
    out = pd.DataFrame({
        "ts": pd.DatetimeIndex(bucket[starts], tz="UTC").as_unit("ns"),
        "open": column("open")[starts],
        "high": np.maximum.reduceat(column("high"), starts),
        "low": np.minimum.reduceat(column("low"), starts),
        "close": column("close")[ends - 1],
        "volume": total(volume),
        "vwap": np.where(vwap_volume > 0, by_volume, by_count),
        "trade_count": trade_count,
        "minutes": (ends - starts).astype(np.int64),
        "filled_minutes": np.add.reduceat(bars["is_filled"].to_numpy(np.int64)[order], starts),
    })  # fmt: skip
    return out[DERIVED_COLUMNS]
