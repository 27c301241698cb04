"""Market regimes from QQQ and VIXY, computed once per trading day before any ticker.

Columns (codes are int8):

- ``regime_vix``: VIX quadrant from VIXY's level and trend.
  quiet = close <= SMA_390 of VIXY (about one session), volatile otherwise;
  bull = VIXY's 30-bar log change <= 0 (fear falling), bear otherwise.
  Codes: 0 bull-quiet, 1 bull-volatile, 2 bear-quiet, 3 bear-volatile (code = 2 bear + volatile).
- ``regime_gmm``: 0 calm, 1 volatile. A two-component ``GaussianMixture`` over
  x = [ln sigma_30(QQQ r), ln sigma_30(VIXY r)] (sigma_30: population std of the last 30 1-minute
  log returns; only the symbols present are used). The model for day D is fitted only on the
  rows of the ``train_sessions`` sessions before D, so appending later data never changes
  earlier regimes. Components are ranked by the sum of their means, so 0 is always the calmer.
  The raw labels are smoothed by a 30-bar rolling mode within the session (ties: the bar's
  own label).
- ``regime_sma``: 1 when QQQ close >= its SMA_200, else 0; ``regime_sma_dist`` = C/SMA_200 - 1.
- ``regime_ready``: 1 when every regime column above comes from data; 0 when one of them is
  a default (context symbol missing, the very start of its history, or no GMM fitted yet).

Defaults (``REGIME_DEFAULTS``): regime_vix 0, regime_gmm 0, regime_sma 1, regime_sma_dist 0.0.
Every rolling statistic here is computed window by window (``per_window``, two-pass std), so
an incremental day equals the full build bit for bit, and no regime can flip on rounding,
when at least ``REGIME_LOOKBACK_SESSIONS`` sessions precede it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from stock_assets.core import indicators as ind
from stock_assets.core import series

GMM_TRAIN_SESSIONS = 20
GMM_MIN_SAMPLES = 100
VOL_WINDOW = 30
MODE_WINDOW = 30
VIX_LEVEL_WINDOW = 390
VIX_TREND_BARS = 30
SMA_WINDOW = 200
_LOG_VOL_FLOOR = 1e-8


def regime_lookback_sessions(train_sessions: int = GMM_TRAIN_SESSIONS) -> int:
    """Sessions of QQQ/VIXY before the target day that an incremental build must pass in:
    the GMM's training sessions, one more for their 30-bar windows, one spare."""
    return train_sessions + 2


REGIME_LOOKBACK_SESSIONS = regime_lookback_sessions()

REGIME_CODES: dict[str, dict[int, str]] = {
    "regime_vix": {0: "bull_quiet", 1: "bull_volatile", 2: "bear_quiet", 3: "bear_volatile"},
    "regime_gmm": {0: "calm", 1: "volatile"},
    "regime_sma": {0: "below_sma200", 1: "above_sma200"},
    "regime_ready": {0: "defaulted", 1: "ready"},
}
REGIME_DEFAULTS: dict[str, float] = {
    "regime_vix": 0,
    "regime_gmm": 0,
    "regime_sma": 1,
    "regime_sma_dist": 0.0,
    "regime_ready": 0,
}
REGIME_COLUMNS: list[str] = list(REGIME_DEFAULTS)
REGIME_PARAMS: dict[str, dict[str, Any]] = {
    "regime_vix": {"level_window": VIX_LEVEL_WINDOW, "trend_bars": VIX_TREND_BARS},
    "regime_gmm": {
        "components": 2,
        "train_sessions": GMM_TRAIN_SESSIONS,
        "vol_window": VOL_WINDOW,
        "mode_window": MODE_WINDOW,
        "inputs": ["QQQ", "VIXY"],
    },
    "regime_sma": {"n": SMA_WINDOW},
    "regime_sma_dist": {"n": SMA_WINDOW},
    "regime_ready": {},
}
_INT_COLUMNS = ("regime_vix", "regime_gmm", "regime_sma", "regime_ready")


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]")})
    for col in REGIME_COLUMNS:
        frame[col] = pd.Series([], dtype="int8" if col in _INT_COLUMNS else "float64")
    return frame


def _present(bars: pd.DataFrame | None) -> bool:
    return bars is not None and len(bars) > 0


class _Symbol:
    """One context symbol on its own bar grid, joined as of each grid minute (same day)."""

    def __init__(self, bars: pd.DataFrame, grid_ns: np.ndarray, grid_day: np.ndarray):
        ns = series.utc_ns(bars["ts"])
        day = series.day_number(ns)
        self.close = bars["close"].to_numpy(np.float64)
        self.idx = series.asof_same_day(grid_ns, grid_day, ns, day)

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        return series.take(values, self.idx)


def _fit_labels(x_train: np.ndarray, x_day: np.ndarray) -> np.ndarray:
    """Raw GMM labels (0 calm, 1 volatile, -1 unknown) for one day's rows."""
    labels = np.full(len(x_day), -1, dtype=np.int8)
    train = x_train[np.isfinite(x_train).all(axis=1)]
    if len(train) < GMM_MIN_SAMPLES or np.ptp(train, axis=0).max() == 0:
        return labels
    from sklearn.exceptions import ConvergenceWarning  # imported here: a slow import
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    means_init = np.percentile(train, [25.0, 75.0], axis=0)
    gmm = GaussianMixture(
        n_components=2, covariance_type="full", means_init=means_init, random_state=0
    )
    # One BLAS thread: 2x2 covariances gain nothing from threads, which cost ~8x here.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(train)
        rank = np.empty(2, dtype=np.int8)
        rank[np.argsort(gmm.means_.sum(axis=1), kind="stable")] = np.arange(2, dtype=np.int8)
        known = np.isfinite(x_day).all(axis=1)
        if known.any():
            labels[known] = rank[gmm.predict(x_day[known])]
    return labels


def rolling_mode(raw: np.ndarray, session: np.ndarray, window: int = MODE_WINDOW) -> np.ndarray:
    """Binary rolling mode of the last ``window`` known labels' bars within the session.

    raw: 0/1, -1 unknown (ignored). Result 1 if ones > zeros, 0 if zeros > ones, a tie takes the
    bar's raw label (-1 when unknown and no known label in the window).
    """
    n = len(raw)
    pos = np.arange(n)
    session_start = np.zeros(n, dtype=np.int64)
    if n:
        is_start = np.concatenate(([True], session[1:] != session[:-1]))
        session_start = np.maximum.accumulate(np.where(is_start, pos, 0))
    lo = np.maximum(pos - window + 1, session_start)
    ones_cum = np.concatenate(([0], np.cumsum(raw == 1)))
    zeros_cum = np.concatenate(([0], np.cumsum(raw == 0)))
    ones = ones_cum[pos + 1] - ones_cum[lo]
    zeros = zeros_cum[pos + 1] - zeros_cum[lo]
    return np.where(ones > zeros, 1, np.where(zeros > ones, 0, raw)).astype(np.int8)


def compute_regimes(
    qqq: pd.DataFrame | None,
    vixy: pd.DataFrame | None,
    *,
    start: Any = None,
    train_sessions: int = GMM_TRAIN_SESSIONS,
) -> pd.DataFrame:
    """Regime columns on the union of QQQ and VIXY bar times, rows with ts >= start.

    qqq/vixy: bars frames (ts, open, high, low, close, volume, ...) including lookback history;
    None or empty when the symbol is missing (its regimes take defaults, regime_ready 0).
    start: tz-aware timestamp (rows ts >= start) or a date (rows of trading days >= date);
    a GMM is fitted only for the trading days that are output.
    """
    present = [b for b in (qqq, vixy) if _present(b)]
    if not present:
        return _empty()
    grid = pd.DatetimeIndex(np.unique(np.concatenate([series.utc_ns(b["ts"]) for b in present])))
    grid = grid.tz_localize("UTC")
    grid_ns = grid.asi8
    grid_day = series.day_number(grid_ns)
    n = len(grid_ns)
    out = {k: np.full(n, v, dtype=np.float64) for k, v in REGIME_DEFAULTS.items()}
    ready = np.ones(n, dtype=bool)
    gmm_inputs = []

    if _present(qqq):
        q = _Symbol(qqq, grid_ns, grid_day)
        sma = series.rolling_mean(q.close, SMA_WINDOW, per_window=True)
        close, sma_g = q.on_grid(q.close), q.on_grid(sma)
        ok = np.isfinite(sma_g)
        out["regime_sma"] = np.where(ok, (close >= sma_g).astype(np.float64), 1.0)
        out["regime_sma_dist"] = np.where(ok, close / sma_g - 1.0, 0.0)
        ready &= ok
        gmm_inputs.append(q.on_grid(_log_vol(q.close)))
    else:
        ready[:] = False

    if _present(vixy):
        v = _Symbol(vixy, grid_ns, grid_day)
        level = series.rolling_mean(v.close, VIX_LEVEL_WINDOW, per_window=True)
        trend = np.log(v.close / ind.lag(v.close, VIX_TREND_BARS))
        close, level_g, trend_g = v.on_grid(v.close), v.on_grid(level), v.on_grid(trend)
        ok = np.isfinite(level_g) & np.isfinite(trend_g)
        code = 2 * (trend_g > 0) + (close > level_g)
        out["regime_vix"] = np.where(ok, code, 0).astype(np.float64)
        ready &= ok
        gmm_inputs.append(v.on_grid(_log_vol(v.close)))
    else:
        ready[:] = False

    s = series.first_row_at(grid_ns, grid_day, start)
    if s >= n:
        return _empty()
    x = np.column_stack(gmm_inputs)
    raw = np.full(n, -1, dtype=np.int8)
    day_starts = np.flatnonzero(np.concatenate(([True], grid_day[1:] != grid_day[:-1])))
    bounds = np.append(day_starts, n)
    first_day = int(np.searchsorted(day_starts, s, side="right")) - 1
    for j in range(max(first_day, 0), len(day_starts)):
        lo_train, lo, hi = bounds[max(j - train_sessions, 0)], bounds[j], bounds[j + 1]
        raw[lo:hi] = _fit_labels(x[lo_train:lo], x[lo:hi])
    smoothed = rolling_mode(raw, grid_day)
    out["regime_gmm"] = np.where(smoothed >= 0, smoothed, 0).astype(np.float64)
    ready &= smoothed >= 0
    out["regime_ready"] = ready.astype(np.float64)

    frame = pd.DataFrame({"ts": grid[s:]})
    for col in REGIME_COLUMNS:
        values = out[col][s:]
        frame[col] = values.astype(np.int8) if col in _INT_COLUMNS else values
    return frame


def _log_vol(close: np.ndarray) -> np.ndarray:
    """ln max(sigma_30(r), 1e-8): the GMM's volatility input (finite for flat prices)."""
    return np.log(np.fmax(series.rolling_std(ind.log_return(close), VOL_WINDOW), _LOG_VOL_FLOOR))


def check_regime_codes(
    frame: pd.DataFrame, codes: Mapping[str, Mapping[int, str]] = REGIME_CODES
) -> tuple[bool, dict[str, Any]]:
    """Every regime code column holds only its documented codes (no NaN)."""
    bad: dict[str, Any] = {}
    for col, allowed in codes.items():
        if col not in frame:
            bad[col] = "missing column"
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        wrong = ~values.isin(list(allowed))
        if wrong.any():
            examples = sorted(map(str, values[wrong].unique()[:5]))
            bad[col] = {"count": int(wrong.sum()), "values": examples}
    if "regime_sma_dist" in frame and not np.isfinite(frame["regime_sma_dist"]).all():
        bad["regime_sma_dist"] = "non-finite values"
    return not bad, {"violations": bad}


def describe_code(column: str, code: int) -> str:
    """Human name of a regime code, e.g. describe_code('regime_vix', 3) == 'bear_volatile'."""
    return REGIME_CODES[column][int(code)]


__all__ = [
    "GMM_TRAIN_SESSIONS",
    "REGIME_CODES",
    "REGIME_COLUMNS",
    "REGIME_DEFAULTS",
    "REGIME_LOOKBACK_SESSIONS",
    "check_regime_codes",
    "compute_regimes",
    "describe_code",
    "regime_lookback_sessions",
    "rolling_mode",
]
