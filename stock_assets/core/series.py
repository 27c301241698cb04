"""Primitives over one symbol's bar series: rolling windows and the ET session clock.

Rolling windows, the building blocks of ``indicators``:

- Inputs are float64 arrays (or Series) aligned bar by bar, oldest first; the output has the
  same length. A window counts n bars, not minutes, and spans session boundaries; its first
  n-1 values are NaN (warm-up n-1).
- Rolling sums and means are compensated running sums (Neumaier; error ~1e-16 of the summed
  magnitudes). Rolling (co)variances are two-pass, window by window, so their values depend only
  on the bars in the window, never on where the computation started: pandas' online rolling
  variance drifts by ~1e-7 relative on minute prices, far above the 1e-9 guaranteed here.
- The loops are numba kernels (compiled once, cached on disk).

Session clock and point-in-time joins: bar-open times as int64 UTC nanoseconds, their
America/New_York trading day and minute, and the same-day as-of join of context rows.
"""

from __future__ import annotations

import datetime
import math

import numba
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ET = "America/New_York"
NS_PER_MINUTE = 60_000_000_000
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 1440 * NS_PER_MINUTE


def _f64(x: ArrayLike) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64)


# --- numba kernels -------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _neumaier_add(total, comp, value):  # pragma: no cover - compiled
    s = total + value
    if abs(total) >= abs(value):
        comp += (total - s) + value
    else:
        comp += (value - s) + total
    return s, comp


@numba.njit(cache=True)
def _rolling_sum_kernel(x, n, out):  # pragma: no cover - compiled
    total, comp, nans = 0.0, 0.0, 0
    for t in range(len(x)):
        if x[t] != x[t]:
            nans += 1
        else:
            total, comp = _neumaier_add(total, comp, x[t])
        if t >= n:
            if x[t - n] != x[t - n]:
                nans -= 1
            else:
                total, comp = _neumaier_add(total, comp, -x[t - n])
        out[t] = np.nan if nans or t < n - 1 else total + comp


@numba.njit(cache=True, inline="always")
def _window_mean(x, lo, n):  # pragma: no cover - compiled
    # Four interleaved partial sums in a fixed order: the result depends only on the window's
    # values, and the chains run in parallel (~4x one dependent chain).
    a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
    i = 0
    while i + 4 <= n:
        a0 += x[lo + i]
        a1 += x[lo + i + 1]
        a2 += x[lo + i + 2]
        a3 += x[lo + i + 3]
        i += 4
    while i < n:
        a0 += x[lo + i]
        i += 1
    return ((a0 + a1) + (a2 + a3)) / n


@numba.njit(cache=True)
def _window_mean_kernel(x, n, out):  # pragma: no cover - compiled
    out[: n - 1] = np.nan
    for t in range(n - 1, len(x)):
        out[t] = _window_mean(x, t - n + 1, n)


@numba.njit(cache=True)
def _rolling_moments_kernel(x, y, n, same, cov, var_y):  # pragma: no cover - compiled
    run_x, run_y = 0, 0  # length of the run of equal values ending at t: flat iff run >= n
    cov[: n - 1] = np.nan
    var_y[: n - 1] = np.nan
    for t in range(len(x)):
        run_x = run_x + 1 if t > 0 and x[t] == x[t - 1] else 1
        run_y = run_y + 1 if t > 0 and y[t] == y[t - 1] else 1
        if t < n - 1:
            continue
        lo = t - n + 1
        mx = _window_mean(x, lo, n)
        my = mx if same else _window_mean(y, lo, n)
        if math.isnan(mx) or math.isnan(my):
            cov[t] = np.nan
            var_y[t] = np.nan
            continue
        c0, c1, v0, v1 = 0.0, 0.0, 0.0, 0.0
        i = 0
        while i + 2 <= n:
            dy0, dy1 = y[lo + i] - my, y[lo + i + 1] - my
            c0 += (x[lo + i] - mx) * dy0
            c1 += (x[lo + i + 1] - mx) * dy1
            v0 += dy0 * dy0
            v1 += dy1 * dy1
            i += 2
        if i < n:
            dy0 = y[lo + i] - my
            c0 += (x[lo + i] - mx) * dy0
            v0 += dy0 * dy0
        cov[t] = 0.0 if run_x >= n or run_y >= n else (c0 + c1) / n
        var_y[t] = 0.0 if run_y >= n else (v0 + v1) / n


@numba.njit(cache=True)
def _rolling_extreme_kernel(x, n, sign, out):  # pragma: no cover - compiled
    out[: n - 1] = np.nan
    for t in range(n - 1, len(x)):
        best = sign * x[t]
        for i in range(t - n + 1, t):
            v = sign * x[i]
            if v > best or v != v:
                best = v
        out[t] = sign * best


# --- rolling primitives ----------------------------------------------------------------------


def rolling_sum(x: ArrayLike, n: int) -> FloatArray:
    """S_t = sum_{i=t-n+1..t} x_i (compensated running sum). Warm-up n-1; NaN in window -> NaN."""
    x = _f64(x)
    out = np.empty_like(x)
    _rolling_sum_kernel(x, n, out)
    return out


def rolling_mean(x: ArrayLike, n: int, *, per_window: bool = False) -> FloatArray:
    """Simple moving average SMA_n(x)_t = (1/n) sum_{i=t-n+1..t} x_i. Warm-up n-1.

    per_window: sum each window on its own (O(len n)) so the value depends on the window's
    bars only, bit for bit, wherever the computation starts (for discrete decisions).
    """
    if per_window:
        x = _f64(x)
        out = np.empty_like(x)
        _window_mean_kernel(x, n, out)
        return out
    return rolling_sum(x, n) / n


def rolling_cov_var(x: ArrayLike, y: ArrayLike, n: int) -> tuple[FloatArray, FloatArray]:
    """(cov_n(x, y), var_n(y)): population moments over n bars, two-pass per window.

    cov_t = (1/n) sum (x_i - mean_x)(y_i - mean_y), var_t = (1/n) sum (y_i - mean_y)^2 over
    i = t-n+1..t; exactly 0 when the window's x (for cov) or y values are all equal.
    Warm-up n-1.
    """
    x, y = _f64(x), _f64(y)
    cov, var_y = np.empty_like(x), np.empty_like(x)
    _rolling_moments_kernel(x, y, n, x is y, cov, var_y)
    return cov, var_y


def rolling_std(x: ArrayLike, n: int) -> FloatArray:
    """Population standard deviation sigma_n(x) = sqrt(var_n(x)). Warm-up n-1."""
    x = _f64(x)
    return np.sqrt(rolling_cov_var(x, x, n)[1])


def rolling_max(x: ArrayLike, n: int) -> FloatArray:
    """max_{i=t-n+1..t} x_i. Warm-up n-1."""
    x = _f64(x)
    out = np.empty_like(x)
    _rolling_extreme_kernel(x, n, 1.0, out)
    return out


def rolling_min(x: ArrayLike, n: int) -> FloatArray:
    """min_{i=t-n+1..t} x_i. Warm-up n-1."""
    x = _f64(x)
    out = np.empty_like(x)
    _rolling_extreme_kernel(x, n, -1.0, out)
    return out


# --- session clock and point-in-time joins ---------------------------------------------------


def utc_ns(ts: ArrayLike) -> IntArray:
    """Nanoseconds since the epoch of tz-aware timestamps (any datetime64 unit)."""
    index = pd.DatetimeIndex(ts)
    if index.tz is None:
        raise ValueError("timestamps must be tz-aware (UTC bar-open times), got naive ones")
    return (index if index.unit == "ns" else index.as_unit("ns")).asi8


def session_clock(ts: ArrayLike) -> tuple[IntArray, IntArray, IntArray]:
    """(trading_day, minute_of_day, day_of_week) of each bar in America/New_York time.

    ts: tz-aware timestamps, or int64 UTC nanoseconds (``utc_ns``).
    trading_day counts days since 1970-01-01 (the bar's ET date), minute_of_day is 60 h + m
    in ET, day_of_week is Monday = 0 .. Sunday = 6.
    """
    ns = ts if isinstance(ts, np.ndarray) and ts.dtype == np.int64 else utc_ns(ts)
    local = _et_local_ns(ns)
    day = local // NS_PER_DAY
    minute = (local - day * NS_PER_DAY) // NS_PER_MINUTE
    return day, minute, (day + 3) % 7  # 1970-01-01 was a Thursday


def day_number(ns: IntArray) -> IntArray:
    """ET trading day as an int (days since 1970-01-01) of UTC nanosecond timestamps."""
    return _et_local_ns(ns) // NS_PER_DAY


def _et_local_ns(ns: IntArray) -> IntArray:
    # The UTC offset is looked up once per distinct UTC hour (DST switches on the hour).
    hour = ns // NS_PER_HOUR
    if len(hour) and (hour[1:] >= hour[:-1]).all():
        new_hour = np.concatenate(([True], hour[1:] != hour[:-1]))
        hours, inverse = hour[new_hour], np.cumsum(new_hour) - 1
    else:
        hours, inverse = np.unique(hour, return_inverse=True)
    hour_ns = hours * NS_PER_HOUR
    local_hour = pd.DatetimeIndex(hour_ns, tz="UTC").tz_convert(ET).tz_localize(None).asi8
    return ns + (local_hour - hour_ns)[inverse.reshape(-1)]


def asof_same_day(
    left_ns: IntArray, left_day: IntArray, right_ns: IntArray, right_day: IntArray
) -> IntArray:
    """Index of the latest right row with ts <= the left ts on the same trading day, else -1.

    A context bar opening at or before t closes no later than the bar at t, so the join never
    looks ahead; it never reaches back into an earlier session either.
    """
    idx = np.searchsorted(right_ns, left_ns, side="right") - 1
    ok = idx >= 0
    ok[ok] = right_day[idx[ok]] == left_day[ok]
    return np.where(ok, idx, -1)


def take(values: FloatArray, idx: IntArray, default: float = np.nan) -> FloatArray:
    """values[idx] where idx >= 0, else default."""
    if len(values) == 0:
        return np.full(len(idx), default)
    out = np.asarray(values, dtype=np.float64)[idx]
    out[idx < 0] = default
    return out


def first_row_at(ns: IntArray, day: IntArray, start: object) -> int:
    """Position of the first row at or after ``start`` in rows sorted by time.

    start: None (0); a ``datetime.date`` or a date string such as "2024-03-04" (the first row of
    that ET trading day or a later one); a tz-aware timestamp (the first row with ts >= start).
    """
    if start is None:
        return 0
    if isinstance(start, datetime.date) and not isinstance(start, datetime.datetime):
        first_day = (start - datetime.date(1970, 1, 1)).days
        return int(np.searchsorted(day, first_day, side="left"))
    stamp = pd.Timestamp(start)
    if stamp.tzinfo is None:
        if stamp != stamp.normalize():
            raise ValueError(f"start {start!r}: give a tz-aware timestamp or a date")
        return first_row_at(ns, day, stamp.date())
    return int(np.searchsorted(ns, stamp.as_unit("ns").value, side="left"))
