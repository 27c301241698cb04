"""Backtest metrics: their definitions and the code that computes them.

Definitions (the simulation module's docstring says where the inputs come from):

- Daily returns: from end-of-day equity, one value per ET trading date that has bars;
  the first day is measured against the initial cash, every later day against the
  previous day's end equity. Days spent flat count, with return 0.
- Sharpe = mean / std(ddof=1) of the daily returns x sqrt(252); Sortino = mean /
  sqrt(mean(min(r, 0)^2)) x sqrt(252). Fewer than 2 days: NaN. A zero std (<= 1e-12 x
  |mean|, rounding of identical values) or a zero downside deviation with a mean <= 0:
  0.0. Zero downside deviation with a positive mean: +inf (no losing day).
- Max drawdown: the largest fall from a running peak of bar-close equity, the initial
  cash being the first peak, as a positive fraction.
- Per-trade net return: (exit notional - exit fee) / (entry notional + entry fee) - 1.
  Win rate: share of trades with a net return > 0. Profit factor: sum of the positive
  net returns / -sum of the negative ones (+inf with gains and no loss, NaN with neither).
  Expectancy: mean net return. SQN = sqrt(N) x mean / std(ddof=1) (NaN with N < 2 or a
  zero std, <= 1e-12 x |mean|); `sqn_100` caps N at 100.
- Weekly consistency: std(ddof=0) / mean of closed trades per ET ISO week (a trade
  belongs to the week of its exit fill), over every week that has bars; NaN with no
  trade. Lower is steadier.
- Directional hit: the prediction's direction (regressor: up when > 0, down when <= 0;
  classifier: 1 up, 0 down) against the sign of the realized move; a zero move or a
  missing prediction is no observation. Hit rate is hits / observations.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

TRADING_DAYS = 252
SQN_CAP = 100

TRADE_METRICS = ("trades", "win_rate", "profit_factor", "sqn", "sqn_100", "expectancy")
METRIC_NAMES = (
    "final_equity",
    "total_return",
    "buy_hold_return",
    "excess_vs_buy_hold",
    "random_return",
    "excess_vs_random",
    "sharpe",
    "sortino",
    "max_drawdown",
    "exposure",
    "trades",
    "fills",
    "open_position",
    "win_rate",
    "profit_factor",
    "sqn",
    "sqn_100",
    "expectancy",
    "weekly_consistency",
    "hit_rate",
    "fees_paid",
)
LOWER_IS_BETTER = frozenset({"max_drawdown", "weekly_consistency"})


def daily_returns(eod_equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """Return of each trading day from end-of-day equity (the first day vs the initial cash)."""
    return _daily_returns(_floats(eod_equity), float(initial_cash))


def sharpe_ratio(daily: np.ndarray, periods: int = TRADING_DAYS) -> float:
    """mean / std(ddof=1) x sqrt(periods); NaN under 2 days, 0.0 with a zero std."""
    return float(_sharpe(_floats(daily), periods))


def sortino_ratio(daily: np.ndarray, periods: int = TRADING_DAYS) -> float:
    """mean / downside deviation (target 0, over all days) x sqrt(periods)."""
    return float(_sortino(_floats(daily), periods))


def max_drawdown(equity: np.ndarray, initial_cash: float) -> float:
    """Largest fall from a running peak (the initial cash is the first peak), as a fraction."""
    curve = np.concatenate(([float(initial_cash)], _floats(equity)))
    peaks = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peaks))


def profit_factor(net_returns: np.ndarray) -> float:
    """Gross gains / gross losses of per-trade net returns (+inf without a loss)."""
    return float(_profit_factor(_floats(net_returns)))


def sqn(net_returns: np.ndarray, cap: int = 0) -> float:
    """System quality number sqrt(N) x mean / std(ddof=1), N capped at `cap` when > 0."""
    return float(_sqn(_floats(net_returns), cap))


def trade_metrics(net_returns: np.ndarray) -> dict[str, float]:
    """Trade count, win rate, profit factor, SQN (plain and capped) and expectancy."""
    r = _floats(net_returns)
    win_rate, factor, plain, capped, expectancy = _trade_summary(r)
    return {
        "trades": int(r.size),
        "win_rate": float(win_rate),
        "profit_factor": float(factor),
        "sqn": float(plain),
        "sqn_100": float(capped),
        "expectancy": float(expectancy),
    }


def weekly_consistency(trades_per_week: np.ndarray) -> float:
    """std(ddof=0) / mean of the closed-trade counts of every week with bars (NaN: none)."""
    return float(_weekly_consistency(_floats(trades_per_week)))


def _floats(values: object) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


# The definitions themselves, compiled so the simulation kernel calls the same code.


@nb.njit(cache=True, nogil=True)
def _daily_returns(eod: np.ndarray, initial_cash: float) -> np.ndarray:
    out = np.empty(eod.shape[0])
    previous = initial_cash
    for k in range(eod.shape[0]):
        out[k] = eod[k] / previous - 1.0
        previous = eod[k]
    return out


@nb.njit(cache=True, nogil=True)
def _mean_std(x: np.ndarray, ddof: int) -> tuple[float, float]:
    """Two-pass mean and std; a std <= 1e-12 x |mean| (rounding of equal values) is 0."""
    n = x.shape[0]
    total = 0.0
    for v in x:
        total += v
    mean = total / n
    squares = 0.0
    for v in x:
        squares += (v - mean) ** 2
    std = math.sqrt(squares / (n - ddof))
    return mean, 0.0 if std <= 1e-12 * abs(mean) else std


@nb.njit(cache=True, nogil=True)
def _sharpe(daily: np.ndarray, periods: int) -> float:
    if daily.shape[0] < 2:
        return np.nan
    mean, std = _mean_std(daily, 1)
    return 0.0 if std == 0.0 else mean / std * math.sqrt(periods)


@nb.njit(cache=True, nogil=True)
def _sortino(daily: np.ndarray, periods: int) -> float:
    n = daily.shape[0]
    if n < 2:
        return np.nan
    total, downside = 0.0, 0.0
    for v in daily:
        total += v
        downside += min(v, 0.0) ** 2
    mean, downside = total / n, math.sqrt(downside / n)
    if downside == 0.0:
        return np.inf if mean > 0.0 else 0.0
    return mean / downside * math.sqrt(periods)


@nb.njit(cache=True, nogil=True)
def _profit_factor(r: np.ndarray) -> float:
    gains, losses = 0.0, 0.0
    for v in r:
        if v > 0.0:
            gains += v
        elif v < 0.0:
            losses -= v
    if losses == 0.0:
        return np.inf if gains > 0.0 else np.nan
    return gains / losses


@nb.njit(cache=True, nogil=True)
def _sqn(r: np.ndarray, cap: int) -> float:
    if r.shape[0] < 2:
        return np.nan
    mean, std = _mean_std(r, 1)
    if std == 0.0:
        return np.nan
    count = r.shape[0] if cap <= 0 else min(r.shape[0], cap)
    return math.sqrt(count) * mean / std


@nb.njit(cache=True, nogil=True)
def _trade_summary(r: np.ndarray) -> tuple[float, float, float, float, float]:
    """(win rate, profit factor, SQN, SQN with N capped at 100, expectancy)."""
    n = r.shape[0]
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, np.nan
    wins = 0
    for v in r:
        wins += v > 0.0
    mean = _mean_std(r, 0)[0]
    return wins / n, _profit_factor(r), _sqn(r, 0), _sqn(r, SQN_CAP), mean


@nb.njit(cache=True, nogil=True)
def _weekly_consistency(counts: np.ndarray) -> float:
    if counts.shape[0] == 0:
        return np.nan
    total = 0.0
    for v in counts:
        total += v
    if total == 0.0:
        return np.nan
    mean = total / counts.shape[0]
    squares = 0.0
    for v in counts:
        squares += (v - mean) ** 2
    return math.sqrt(squares / counts.shape[0]) / mean


@nb.njit(cache=True, nogil=True)
def summary(
    eod: np.ndarray, initial_cash: float, net_returns: np.ndarray, trades_per_week: np.ndarray
) -> tuple[float, float, float, float, float, float, float, float]:
    """(sharpe, sortino, win rate, profit factor, sqn, sqn_100, expectancy, weekly
    consistency) of one simulation, as the kernel computes them."""
    daily = _daily_returns(eod, initial_cash)
    win_rate, factor, plain, capped, expectancy = _trade_summary(net_returns)
    return (
        _sharpe(daily, TRADING_DAYS),
        _sortino(daily, TRADING_DAYS),
        win_rate,
        factor,
        plain,
        capped,
        expectancy,
        _weekly_consistency(trades_per_week),
    )


def direction_hits(pred: np.ndarray, realized: np.ndarray, target_kind: str) -> np.ndarray:
    """1.0 where the predicted direction matched the realized move, 0.0 where not, else NaN."""
    pred = np.asarray(pred, dtype=np.float64)
    realized = np.asarray(realized, dtype=np.float64)
    if target_kind == "classifier":
        up, down = pred == 1.0, pred == 0.0
    else:
        up, down = pred > 0.0, pred <= 0.0
    hits = np.full(pred.shape, np.nan)
    moved = (realized > 0.0) | (realized < 0.0)
    observed = (up | down) & moved
    hits[observed] = (up & (realized > 0.0) | down & (realized < 0.0))[observed]
    return hits


def next_bar_moves(close: np.ndarray) -> np.ndarray:
    """close[i+1] - close[i], NaN for the last bar: the move a 1-bar prediction is about."""
    close = np.asarray(close, dtype=np.float64)
    return np.concatenate((np.diff(close), [np.nan]))


def hit_rate(hits: np.ndarray) -> float:
    """Hits over observations (NaN when there is none)."""
    hits = np.asarray(hits, dtype=np.float64)
    observed = np.isfinite(hits)
    return float(hits[observed].mean()) if observed.any() else math.nan


def rolling_hit_rate(hits: np.ndarray, window: int = 100) -> np.ndarray:
    """Hit rate over the observations among the last `window` bars (NaN where none)."""
    hits = np.asarray(hits, dtype=np.float64)
    observed = np.isfinite(hits)
    cum_hits = np.concatenate(([0.0], np.cumsum(np.where(observed, hits, 0.0))))
    cum_obs = np.concatenate(([0], np.cumsum(observed)))
    end = np.arange(1, hits.size + 1)
    start = np.maximum(end - window, 0)
    count = cum_obs[end] - cum_obs[start]
    total = cum_hits[end] - cum_hits[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
