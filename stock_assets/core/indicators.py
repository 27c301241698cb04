"""Vectorized technical indicators over one symbol's continuous bar history.

Conventions shared by every function here:

- Inputs are float64 arrays (or Series) aligned bar by bar, oldest first; the output has the
  same length. Windows count bars, not minutes, and span session boundaries (continuous
  history) unless a function says it is session-aware.
- A value that needs more history than exists is NaN: the indicator's warm-up, given per
  function as "warm-up k" (the first k bars of the history are NaN).
- A division by zero returns the documented neutral value, never inf or NaN.
- Rolling sums and means are compensated running sums (Neumaier; error ~1e-16 of the summed
  magnitudes). Rolling (co)variances are two-pass, window by window, so their values depend only
  on the bars in the window, never on where the computation started: pandas' online rolling
  variance drifts by ~1e-7 relative on minute prices, far above the 1e-9 guaranteed here.
- Recursive smoothers (EMA, Wilder) are seeded the textbook way, with the simple mean of their
  first n inputs, then E_t = (1 - alpha) E_{t-1} + alpha x_t.
- The loops are numba kernels (compiled once, cached on disk): each is one pass where pandas
  needs several, ~5x faster overall (benchmarks/bench_features.py).
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


def _nans(n: int) -> FloatArray:
    return np.full(n, np.nan)


def _safe_div(num: FloatArray, den: FloatArray, default: float) -> FloatArray:
    """num / den, with ``default`` where den == 0 (NaN stays NaN)."""
    num, den = _f64(num), _f64(den)
    out = np.empty_like(num)
    _safe_div_kernel(num, den, default, out)
    return out


def _diff(x: FloatArray) -> FloatArray:
    """x_t - x_{t-1}, NaN at t = 0."""
    out = np.empty_like(x)
    out[:1] = np.nan
    np.subtract(x[1:], x[:-1], out=out[1:])
    return out


# --- numba kernels -------------------------------------------------------------------------


@numba.njit(cache=True)
def _safe_div_kernel(num, den, default, out):  # pragma: no cover - compiled
    for t in range(len(num)):
        if num[t] != num[t] or den[t] != den[t]:
            out[t] = np.nan
        elif den[t] == 0.0:
            out[t] = default
        else:
            out[t] = num[t] / den[t]


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


@numba.njit(cache=True)
def _ema_kernel(x, alpha, seed_at, seed, out):  # pragma: no cover - compiled
    out[:seed_at] = np.nan
    y = seed
    out[seed_at] = y
    for t in range(seed_at + 1, len(x)):
        y = (1.0 - alpha) * y + alpha * x[t]
        out[t] = y


@numba.njit(cache=True)
def _true_range_kernel(h, lo, c, out):  # pragma: no cover - compiled
    if len(h):
        out[0] = h[0] - lo[0]
    for t in range(1, len(h)):
        out[t] = max(h[t], c[t - 1]) - min(lo[t], c[t - 1])


@numba.njit(cache=True)
def _session_cumsum_kernel(x, session, out):  # pragma: no cover - compiled
    total = 0.0
    for t in range(len(x)):
        if t > 0 and session[t] != session[t - 1]:
            total = 0.0
        total += x[t]
        out[t] = total


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


def ema(x: ArrayLike, n: int, *, alpha: float | None = None) -> FloatArray:
    """Exponential moving average, seeded with the SMA of the first n valid inputs.

    alpha = 2/(n+1) unless given. With f the first non-NaN input: E_{f+n-1} = mean(x_f..x_{f+n-1}),
    then E_t = (1-alpha) E_{t-1} + alpha x_t. Warm-up f+n-1. NaN is allowed only as a leading
    warm-up of the input. Memory decays as (1-alpha)^k after k bars.
    """
    x = _f64(x)
    first = int(np.argmax(~np.isnan(x))) if len(x) else 0
    seed_at = first + n - 1
    if seed_at >= len(x) or np.isnan(x[first]):
        return _nans(len(x))
    out = np.empty_like(x)
    alpha = 2.0 / (n + 1.0) if alpha is None else alpha
    _ema_kernel(x, alpha, seed_at, float(np.mean(x[first : seed_at + 1])), out)
    return out


def wilder(x: ArrayLike, n: int) -> FloatArray:
    """Wilder smoothing: ema with alpha = 1/n, i.e. W_t = ((n-1) W_{t-1} + x_t) / n."""
    return ema(x, n, alpha=1.0 / n)


# --- standard indicators ---------------------------------------------------------------------


def sma(close: ArrayLike, n: int) -> FloatArray:
    """SMA_n of close. Warm-up n-1."""
    return rolling_mean(close, n)


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line = EMA_fast - EMA_slow; signal = EMA_signal(line); hist = line - signal.

    Warm-up: line slow-1 (25), signal and hist slow+signal-2 (33).
    """
    c = _f64(close)
    line = ema(c, fast) - ema(c, slow)
    sig = ema(line, signal)
    return line, sig, line - sig


def rsi(close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder RSI. d_t = C_t - C_{t-1}; G = max(d, 0), L = max(-d, 0).

    AG = wilder(G, n), AL = wilder(L, n) (first value = mean of d_1..d_n);
    RSI = 100 - 100/(1 + AG/AL) = 100 AG/(AG + AL); 50 when AG + AL = 0. Warm-up n.
    """
    d = _diff(_f64(close))
    gain, loss = np.fmax(d, 0.0), np.fmax(-d, 0.0)
    gain[:1] = loss[:1] = np.nan
    ag, al = wilder(gain, n), wilder(loss, n)
    return _safe_div(100.0 * ag, ag + al, 50.0)


def stochastic(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14, d: int = 3
) -> tuple[FloatArray, FloatArray]:
    """%K = 100 (C - LL_n)/(HH_n - LL_n) (50 when HH_n = LL_n), %D = SMA_d(%K).

    LL_n/HH_n: lowest low/highest high of the last n bars. Warm-up: %K n-1, %D n+d-2.
    """
    c = _f64(close)
    hh, ll = rolling_max(high, n), rolling_min(low, n)
    k = _safe_div(100.0 * (c - ll), hh - ll, 50.0)
    return k, rolling_mean(k, d)


def bollinger(close: ArrayLike, n: int = 20, k: float = 2.0) -> dict[str, FloatArray]:
    """Bollinger bands with the population standard deviation sigma_n of close.

    mid = SMA_n, upper/lower = mid +/- k sigma_n, pctb = (C - lower)/(upper - lower)
    (0.5 when sigma_n = 0), width = (upper - lower)/mid. Warm-up n-1.
    """
    c = _f64(close)
    mid, sd = rolling_mean(c, n), rolling_std(c, n)
    upper, lower = mid + k * sd, mid - k * sd
    pctb = _safe_div(c - lower, upper - lower, 0.5)
    width = (upper - lower) / mid
    return {"mid": mid, "upper": upper, "lower": lower, "pctb": pctb, "width": width}


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """TR_t = max(H_t, C_{t-1}) - min(L_t, C_{t-1}); TR_0 = H_0 - L_0."""
    h = _f64(high)
    out = np.empty_like(h)
    _true_range_kernel(h, _f64(low), _f64(close), out)
    return out


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder ATR_n = wilder(TR, n), first value = mean(TR_0..TR_{n-1}). Warm-up n-1."""
    return wilder(true_range(high, low, close), n)


def obv(close: ArrayLike, volume: ArrayLike, initial: float = 0.0) -> FloatArray:
    """On-balance volume. OBV_0 = initial; OBV_t = OBV_{t-1} + sign(C_t - C_{t-1}) V_t.

    Cumulative (infinite memory): to continue a history, pass its last bar first with
    ``initial`` = that bar's OBV; the sequential cumsum then repeats the full build exactly.
    """
    c, v = _f64(close), _f64(volume)
    steps = np.sign(_diff(c)) * v
    steps[:1] = initial
    return np.cumsum(steps)


# --- returns, volume, volatility, liquidity --------------------------------------------------


def log_return(close: ArrayLike) -> FloatArray:
    """r_t = ln(C_t / C_{t-1}). Warm-up 1."""
    return _diff(np.log(_f64(close)))


def lag(x: ArrayLike, k: int) -> FloatArray:
    """x_{t-k}. Warm-up k (plus the input's own)."""
    x = _f64(x)
    out = _nans(len(x))
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def volume_change(volume: ArrayLike) -> FloatArray:
    """ln(1 + V_t) - ln(1 + V_{t-1}): log change of volume, finite for zero volume. Warm-up 1."""
    return _diff(np.log1p(_f64(volume)))


def z_score(x: ArrayLike, n: int, *, sigma: FloatArray | None = None) -> FloatArray:
    """(x_t - SMA_n(x)_t) / sigma_n(x)_t (population sigma); 0 when sigma_n = 0. Warm-up n-1.

    ``sigma``: a precomputed rolling_std(x, n), to share it between features.
    """
    x = _f64(x)
    sd = rolling_std(x, n) if sigma is None else sigma
    return _safe_div(x - rolling_mean(x, n), sd, 0.0)


def return_z_score(
    log_ret: ArrayLike, n: int = 20, *, sigma: FloatArray | None = None
) -> FloatArray:
    """Return spike: z_score(r, n) of 1-minute log returns. Warm-up n (r_0 is NaN)."""
    return z_score(log_ret, n, sigma=sigma)


def vol_ratio(volume: ArrayLike, n: int = 60) -> FloatArray:
    """Relative volume V_t / SMA_n(V)_t; 1 when SMA_n(V) = 0. Warm-up n-1."""
    v = _f64(volume)
    return _safe_div(v, rolling_mean(v, n), 1.0)


def atr_ratio(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 15) -> FloatArray:
    """Range expansion TR_t / SMA_n(TR)_t; 1 when SMA_n(TR) = 0. Warm-up n-1."""
    tr = true_range(high, low, close)
    return _safe_div(tr, rolling_mean(tr, n), 1.0)


def amihud_illiquidity(
    close: ArrayLike, volume: ArrayLike, log_ret: ArrayLike, n: int = 20
) -> FloatArray:
    """Amihud price impact per $1M traded: 1e6 sum_n |r| / sum_n (C V); 0 when sum_n C V = 0.

    Warm-up n (r_0 is NaN).
    """
    dollar = rolling_sum(_f64(close) * _f64(volume), n)
    return _safe_div(1e6 * rolling_sum(np.abs(_f64(log_ret)), n), dollar, 0.0)


def ibs(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """Internal bar strength (C - L)/(H - L); 0.5 when H = L."""
    h, lo, c = _f64(high), _f64(low), _f64(close)
    return _safe_div(c - lo, h - lo, 0.5)


def parkinson_vol(high: ArrayLike, low: ArrayLike, n: int = 20) -> FloatArray:
    """Parkinson volatility sqrt( sum_n ln(H/L)^2 / (4 n ln 2) ), per bar. Warm-up n-1."""
    hl = np.log(_f64(high) / _f64(low))
    return np.sqrt(rolling_mean(hl * hl, n) / (4.0 * math.log(2.0)))


def efficiency_ratio(close: ArrayLike, n: int = 10) -> FloatArray:
    """Kaufman: |C_t - C_{t-n}| / sum_{i=t-n+1..t} |C_i - C_{i-1}|; 0 if the sum is 0. Warm-up n."""
    c = _f64(close)
    path = rolling_sum(np.abs(_diff(c)), n)
    return _safe_div(np.abs(c - lag(c, n)), path, 0.0)


def session_vwap(price: ArrayLike, volume: ArrayLike, session: ArrayLike) -> FloatArray:
    """Running VWAP since the session's first bar: sum(P V) / sum(V) over the session so far.

    P: the bar's price (its own VWAP where known, else (H+L+C)/3: the caller's choice). Before
    any volume trades in the session the running VWAP is the bar's P. Resets every session
    (``session``: one key per bar, equal within a session, bars grouped by session).
    """
    p, v = _f64(price), _f64(volume)
    keys = np.ascontiguousarray(session, dtype=np.int64)
    pv, cv = np.empty_like(p), np.empty_like(p)
    _session_cumsum_kernel(p * v, keys, pv)
    _session_cumsum_kernel(v, keys, cv)
    return np.divide(pv, cv, out=p.copy(), where=cv > 0)


def dist_vwap(close: ArrayLike, running_vwap: ArrayLike) -> FloatArray:
    """Distance to the session's running VWAP: C_t / VWAP_t - 1."""
    return _f64(close) / _f64(running_vwap) - 1.0


def intraday_intensity(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, n: int = 20
) -> FloatArray:
    """Intraday intensity %: sum_n [(2C - H - L)/(H - L)] V / sum_n V, in [-1, 1].

    The bar factor is 0 when H = L; the ratio is 0 when sum_n V = 0. Warm-up n-1.
    """
    h, lo, c, v = _f64(high), _f64(low), _f64(close), _f64(volume)
    factor = _safe_div(2.0 * c - h - lo, h - lo, 0.0)
    return _safe_div(rolling_sum(factor * v, n), rolling_sum(v, n), 0.0)


def vol_adj_mom(
    close: ArrayLike, log_ret: ArrayLike, n: int = 20, *, sigma: FloatArray | None = None
) -> FloatArray:
    """Volatility-adjusted momentum ln(C_t/C_{t-n}) / (sigma_n(r) sqrt(n)); 0 if sigma_n = 0.

    Warm-up n. ``sigma``: a precomputed rolling_std(log_ret, n).
    """
    c = _f64(close)
    sd = rolling_std(log_ret, n) if sigma is None else sigma
    return _safe_div(np.log(c / lag(c, n)), sd * math.sqrt(n), 0.0)


def beta(log_ret: ArrayLike, market_ret: ArrayLike, n: int = 60) -> FloatArray:
    """Rolling beta cov_n(r, m)/var_n(m); 0 when var_n(m) = 0. Warm-up n-1 (+ inputs')."""
    cov, var = rolling_cov_var(log_ret, market_ret, n)
    return _safe_div(cov, var, 0.0)


def relative_strength(log_ret: ArrayLike, market_ret: ArrayLike, n: int = 20) -> FloatArray:
    """Relative strength: sum_n (r - m), the n-bar log-return difference. Warm-up n-1."""
    return rolling_sum(_f64(log_ret) - _f64(market_ret), n)


def cyclical(value: ArrayLike, period: int) -> tuple[FloatArray, FloatArray]:
    """(sin(2 pi value/period), cos(2 pi value/period)) of integer values in [0, period)."""
    angle = np.arange(period) * (2.0 * math.pi / period)
    idx = np.asarray(value, dtype=np.int64)
    return np.sin(angle)[idx], np.cos(angle)[idx]


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
