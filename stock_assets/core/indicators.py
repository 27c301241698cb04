"""Vectorized technical indicators over one symbol's continuous bar history.

Conventions shared by every function here:

- Inputs are float64 arrays (or Series) aligned bar by bar, oldest first; the output has the
  same length. Windows count bars, not minutes, and span session boundaries (continuous
  history) unless a function says it is session-aware.
- A value that needs more history than exists is NaN: the indicator's warm-up, given per
  function as "warm-up k" (the first k bars of the history are NaN).
- A division by zero returns the documented neutral value, never inf or NaN.
- Rolling windows (sums, means, (co)variances, extremes) are those of ``series``: compensated
  sums and two-pass variances, whose accuracy its docstring states.
- Recursive smoothers (EMA, Wilder) are seeded the textbook way, with the simple mean of their
  first n inputs, then E_t = (1 - alpha) E_{t-1} + alpha x_t.
- The loops are numba kernels (compiled once, cached on disk): each is one pass where pandas
  needs several, ~5x faster overall (benchmarks/bench_features.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike

from stock_assets.core.series import (
    FloatArray,
    _f64,
    rolling_cov_var,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
)


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


# --- recursive smoothers ---------------------------------------------------------------------


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
