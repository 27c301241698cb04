"""The simulation benchmark's data, its grid and the preparation every engine is given.

Two datasets share the bars, regimes and bot probability (seed 7) and differ only in the
prediction, so they differ only in how often the strategy trades:

- ``base``: a prediction that is a weak, persistent (AR(1), phi 0.95) noisy view of the
  next 5 minutes' log return: signals come in runs, so few trades (median ~440 closed
  trades per combination of the benchmark grid over 100,000 bars).
- ``heavy``: the same weak edge plus independent noise each bar (sd 0.0019, seed 11), what
  a 1-minute model read with a low threshold does: the signal flips often, median ~7,300
  closed trades per combination, up to ~24,000 (the 0.0001 threshold with no filter:
  nearly a round trip every 4 bars).

Bars: a seeded random walk of 1-minute bars over weekday sessions 09:30-16:00 ET
(U-shaped intraday volatility, persistent daily volatility, overnight gaps, 0.3% missing
minutes, 0.1% bars without a high so midpoints fall back to the close; holidays are not
skipped). Regimes: two persistent Markov chains (``vix`` with 4 states, ``gmm`` with 2).
The last ``QUIET_TAIL`` bars carry no signal and a whitelisted regime, so no order is left
pending at the end (vectorbt and backtesting.py would drop one where ours fills it at the
last close).

Grid: 4 thresholds x z-score filter on/off x volatility normalization on/off x 3 regime
whitelists x bot gate on/off = 96 combinations; every order fills 4 bars after its signal
at the bar's midpoint, $0.02 per fill, fractional shares (so every engine can be compared).
`prepare` computes what every engine is given, with the grid's own filter kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stock_assets.core import sim_kernels
from stock_assets.core import simulation as sim

DELAY, FEE, CASH = 4, 0.02, 10_000.0
THRESHOLDS = (0.0001, 0.0005, 0.001, 0.002)
Z_WINDOW, Z_LIMIT, VOL_WINDOW, VOL_MEDIAN, BOT_LIMIT = 100, 3.0, 30, 390, 0.55
REGIMES = (None, sim.RegimeFilter("vix", (2, 3)), sim.RegimeFilter("gmm", (0,)))
QUIET_TAIL = 10
DATASETS = ("base", "heavy")
HEAVY_NOISE_SD, HEAVY_SEED = 0.0019, 11

Data = tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray], np.ndarray]


def make_data(n: int, dataset: str = "base", seed: int = 7) -> Data:
    """Bars, prediction, regimes and bot probability of `dataset` (see the module docstring)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: one of {DATASETS}")
    rng = np.random.default_rng(seed)
    bars = _bars(rng, n)
    close = bars["close"].to_numpy()
    forward = np.log(np.concatenate((close[5:], np.full(5, close[-1]))) / close)
    noise = np.zeros(n)
    shocks = rng.normal(0, 0.0003, n)
    for i in range(1, n):
        noise[i] = 0.95 * noise[i - 1] + shocks[i]
    pred = 0.02 * forward + noise  # a weak edge: hit rate about 51%
    vix = _markov(rng, n, 4, 1 / 200)
    gmm = _markov(rng, n, 2, 1 / 800)
    vix[-QUIET_TAIL:], gmm[-QUIET_TAIL:] = 3, 0
    proba = 0.55 + 0.15 * np.tanh(np.cumsum(rng.normal(0, 0.05, n)) % 4 - 2)
    if dataset == "heavy":
        flips = np.random.default_rng(HEAVY_SEED).normal(0, HEAVY_NOISE_SD, n)
        pred = 0.02 * forward + flips
    pred[-QUIET_TAIL:] = np.nan
    return bars, pred, {"vix": vix, "gmm": gmm}, proba


def _bars(rng: np.random.Generator, n: int) -> pd.DataFrame:
    sessions = pd.bdate_range("2024-01-02", periods=int(n / 390 * 1.01) + 2)
    opens = (sessions + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York")
    minutes = np.arange(390) * 60_000_000_000
    stamps = (opens.tz_convert("UTC").asi8[:, None] + minutes[None, :]).ravel()
    stamps = stamps[rng.random(stamps.size) > 0.003][:n]
    ts = pd.DatetimeIndex(stamps, tz="UTC")
    minute = ((stamps - stamps.min()) // 60_000_000_000) % 1440
    day = np.unique(ts.normalize().asi8, return_inverse=True)[1]
    daily_vol = np.exp(np.cumsum(rng.normal(0, 0.15, day.max() + 1)) * 0.3)
    u_shape = 1.0 + 1.5 * ((np.argsort(np.argsort(minute)) % 390 - 195) / 195) ** 2
    sigma = 0.0005 * daily_vol[day] * u_shape
    returns = sigma * rng.standard_t(4, n) / math.sqrt(2)
    returns[np.flatnonzero(np.diff(day, prepend=-1))] += rng.normal(0, 0.004, day.max() + 1)
    close = 450.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 1, (2, n))) * sigma * close
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    high[rng.random(n) < 0.001] = np.nan
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close})


def _markov(rng: np.random.Generator, n: int, states: int, switch: float) -> np.ndarray:
    changes = rng.random(n) < switch
    return np.cumsum(changes * rng.integers(1, states, n)) % states


# --- the grid, and the preparation every engine is given ------------------------------


def grid_spec(random_draws: int = 8) -> sim.SimGrid:
    return sim.SimGrid(
        thresholds=THRESHOLDS,
        zscore=(False, True),
        zscore_window=Z_WINDOW,
        zscore_limit=Z_LIMIT,
        volnorm=(False, True),
        vol_window=VOL_WINDOW,
        vol_median_window=VOL_MEDIAN,
        regimes=REGIMES,
        bot=(False, True),
        bot_threshold=BOT_LIMIT,
        fills=(sim.FILL_REALISTIC,),
        fee_per_trade=FEE,
        fractional=True,
        random_draws=random_draws,
    )


def combo_table(grid: sim.SimGrid) -> np.ndarray:
    """One row per combination: threshold, zscore, volnorm, regime index, bot."""
    rows = [
        (p.threshold, p.zscore, p.volnorm, REGIMES.index(p.regime), p.bot)
        for p in grid.combinations()
    ]
    return np.array(rows, dtype=np.float64)


def prepare(bars: pd.DataFrame, pred: np.ndarray, regimes: dict, proba: np.ndarray) -> dict:
    """Filters (the grid's own z-score and volatility kernels), regime and bot masks, fill
    prices, and the ET calendar (each bar's day end and week) the daily metrics need."""
    close = bars["close"].to_numpy()
    mid = (bars["high"].to_numpy() + bars["low"].to_numpy()) / 2.0
    regime_ok = np.ones((len(REGIMES), len(pred)), dtype=np.bool_)
    for r, flt in enumerate(REGIMES):
        if flt is not None:
            regime_ok[r] = np.isin(regimes[flt.column], flt.allowed)
    local = pd.DatetimeIndex(bars["ts"]).tz_convert("America/New_York").tz_localize(None)
    day = local.asi8 // 86_400_000_000_000
    monday = day - (day + 3) % 7  # 1970-01-01 was a Thursday
    return {
        "outlier": sim_kernels._zscore_outliers(pred, Z_WINDOW, Z_LIMIT),
        "scale": sim_kernels._vol_scale(close, VOL_WINDOW, VOL_MEDIAN),
        "fill_px": np.where(np.isfinite(mid) & (mid > 0), mid, close),
        "regime_ok": regime_ok,
        "bot_ok": proba > BOT_LIMIT,
        "day_end": np.flatnonzero(np.diff(day, append=day[-1] + 1)),
        "bar_week": np.cumsum(np.diff(monday, prepend=monday[0]) != 0),
    }


def signals(shared: dict, pred: np.ndarray, combos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell matrices (bars x combinations) after every filter, vectorized."""
    threshold = combos[:, 0][None, :] * np.where(
        combos[:, 2][None, :] > 0, shared["scale"][:, None], 1.0
    )
    buy, sell = pred[:, None] > threshold, pred[:, None] <= -threshold
    blocked = (combos[:, 1][None, :] > 0) & shared["outlier"][:, None]
    buy, sell = buy & ~blocked, sell & ~blocked
    buy &= ~((combos[:, 4][None, :] > 0) & ~shared["bot_ok"][:, None])
    allowed = shared["regime_ok"][combos[:, 3].astype(int)].T
    return buy & allowed, sell | ~allowed
