"""The engine behind `stock_assets.core.simulation`: the arrays a grid's combinations
share, each filter computed once per grid (the z-score and volatility filters are numba
kernels here), and the calls into the fill state machine of `sim_machine`, which runs the
whole grid in one pass per combination.

The semantics are documented in the simulation module's docstring; inputs arrive there
validated, so nothing here checks them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numba as nb
import numpy as np
import pandas as pd

from stock_assets.core import metrics
from stock_assets.core.sim_machine import (
    COST_COLUMNS,
    FILL_COLUMNS,
    OUT_COLUMNS,
    SETUP_COLUMNS,
    grid_kernel,
    random_baselines,
    run_combination,
    signal_codes,
)
from stock_assets.core.sim_params import SimGrid, SimParams, SimRun

__all__ = ["FILL_COLUMNS", "GridInputs", "baseline_params", "random_ranks"]
_TRADE_SCORES = ("win_rate", "profit_factor", "sqn", "sqn_100", "expectancy", "weekly_consistency")


def random_ranks(n: int, seed: int, draw: int) -> np.ndarray:
    """Each of `n` bars' rank in the seeded random permutation of draw `draw`."""
    permutation = np.random.default_rng([seed, draw]).permutation(n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[permutation] = np.arange(n)
    return ranks


def baseline_params(params: SimParams) -> SimParams:
    """`params` with every filter off: the fills and costs baselines run under."""
    return replace(params, threshold=0.0, zscore=False, volnorm=False, regime=None, bot=False)


def _costs(p: SimParams) -> tuple[float, ...]:
    """Fixed fee, fee rate, fractional flag and initial cash: COST_COLUMNS after threshold."""
    return (p.fee_per_trade, p.fee_bps / 10_000.0, float(p.fractional), float(p.initial_cash))


def _cost_key(p: SimParams) -> tuple[object, ...]:
    """What the baselines depend on: the fill preset and the costs."""
    return (p.fill, p.fee_per_trade, p.fee_bps, p.fractional, p.initial_cash)


@dataclass
class GridInputs:
    """Arrays every combination shares and the filters, each computed once per grid.

    `simulation` validates the bars and builds it; `buy_hold_pred` is its always-buy
    prediction, which the buy-and-hold baseline replays.
    """

    ts: pd.DatetimeIndex
    close: np.ndarray
    mid: np.ndarray
    pred: np.ndarray
    regimes: dict[str, np.ndarray]
    bot_proba: np.ndarray | None
    day_end: np.ndarray
    bar_week: np.ndarray
    hits: np.ndarray
    grid: SimGrid
    buy_hold_pred: np.ndarray
    cache: dict[tuple[object, ...], object] = field(default_factory=dict)

    def _cached(self, key: tuple[object, ...], compute: object) -> np.ndarray:
        if key not in self.cache:
            self.cache[key] = compute()  # type: ignore[operator]
        return self.cache[key]  # type: ignore[return-value]

    def _filters(self, p: SimParams) -> tuple[np.ndarray, ...]:
        """(scale, outlier, regime_ok, bot_ok) for one combination, each computed once."""
        n = len(self.close)
        scale = self._cached(("ones",), lambda: np.ones(n))
        outlier = self._cached(("falses",), lambda: np.zeros(n, dtype=np.bool_))
        regime_ok = bot_ok = self._cached(("trues",), lambda: np.ones(n, dtype=np.bool_))
        if p.volnorm:
            windows = (p.vol_window, p.vol_median_window)
            scale = self._cached(("scale", *windows), lambda: _vol_scale(self.close, *windows))
        if p.zscore:
            z = (p.zscore_window, float(p.zscore_limit))
            outlier = self._cached(("z", *z), lambda: _zscore_outliers(self.pred, *z))
        if p.regime is not None:
            codes, allowed = self.regimes[p.regime.column], np.array(p.regime.allowed, np.int64)
            regime_ok = self._cached(("regime", p.regime), lambda: np.isin(codes, allowed))
        if p.bot:
            proba, limit = self.bot_proba, p.bot_threshold
            bot_ok = self._cached(("bot", limit), lambda: proba > limit)  # type: ignore[operator]
        return scale, outlier, regime_ok, bot_ok

    def _filter_tables(self, combos: list[SimParams]) -> tuple[np.ndarray, ...]:
        """The distinct filter arrays of `combos` stacked into one table per filter, and each
        combination's row in them (the first four SETUP_COLUMNS)."""
        # the filter arrays are cached, so equal filters are the same object
        tables: tuple[dict[int, tuple[int, np.ndarray]], ...] = ({}, {}, {}, {})
        rows = np.empty((len(combos), len(tables)), dtype=np.int64)
        for c, p in enumerate(combos):
            for f, array in enumerate(self._filters(p)):
                rows[c, f] = tables[f].setdefault(id(array), (len(tables[f]), array))[0]
        return (*(np.stack([array for _, array in table.values()]) for table in tables), rows)

    def _run(self, pred: np.ndarray, combos: list[SimParams]) -> np.ndarray:
        """`grid_kernel` over `combos`: one row of OUT_COLUMNS per combination, in order."""
        *tables, filter_rows = self._filter_tables(combos)
        prices = self._cached(("fill_prices",), lambda: np.stack((self.close, self.mid)))
        setup = np.empty((len(combos), len(SETUP_COLUMNS)), dtype=np.int64)
        setup[:, :4] = filter_rows
        setup[:, 4] = [int(p.fill.price == "mid") for p in combos]
        setup[:, 5] = [p.fill.delay_bars for p in combos]
        setup[:, 6] = [int(p.target_kind == "classifier") for p in combos]
        costs = np.array([(p.threshold, *_costs(p)) for p in combos], dtype=np.float64)
        costs = costs.reshape(-1, len(COST_COLUMNS))
        # number the signal paths and run each path's combinations one after another
        paths = np.column_stack((setup[:, [0, 1, 2, 3, 6]], costs[:, :1].view(np.int64)))
        setup[:, 7] = np.unique(paths, axis=0, return_inverse=True)[1].reshape(-1)
        order = np.argsort(setup[:, 7], kind="stable")
        out = np.empty((len(combos), len(OUT_COLUMNS)))
        out[order] = grid_kernel(
            pred, self.close, prices, *tables, self.day_end, self.bar_week,
            setup[order], costs[order],
        )  # fmt: skip
        return out

    def replay(self, p: SimParams, pred: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """(fill table, equity curve) of one combination."""
        n, n_weeks = len(self.close), int(self.bar_week[-1]) + 1
        codes = np.empty(n, dtype=np.int8)
        pred = self.pred if pred is None else pred
        classifier = p.target_kind == "classifier"
        signal_codes(pred, classifier, float(p.threshold), *self._filters(p), codes)
        fills, curve = np.empty((n, len(FILL_COLUMNS))), np.empty(n)
        nf = run_combination(
            codes,
            self.close,
            self.mid if p.fill.price == "mid" else self.close,
            p.fill.delay_bars,
            np.array(_costs(p)[:3]),
            float(p.initial_cash),
            self.day_end,
            self.bar_week,
            np.empty(n, dtype=np.int8),
            np.empty(n // 2 + 1),
            np.zeros(n_weeks),
            np.empty(len(self.day_end)),
            fills,
            curve,
        )[0]
        return fills[:nf].copy(), curve

    def _cost(self, p: SimParams) -> tuple[np.ndarray, np.ndarray]:
        """(fill prices, cost vector: fixed fee, fee rate, fractional flag) of a combination."""
        prices = self.mid if p.fill.price == "mid" else self.close
        return prices, np.array(_costs(p)[:3])

    def random_returns(self, p: SimParams, counts: np.ndarray) -> np.ndarray:
        """Mean return of the random baselines with each of `counts` orders (one pass/draw)."""
        draws, n = self.grid.random_draws, len(self.close)
        if draws == 0:
            return np.full(len(counts), np.nan)
        seed = self.grid.random_seed
        ranks = self._cached(
            ("ranks",), lambda: np.stack([random_ranks(n, seed, d) for d in range(draws)])
        )
        order = np.argsort(-counts, kind="stable")
        finals = random_baselines(
            counts[order], ranks, self.close, *self._cost(p), p.fill.delay_bars, p.initial_cash
        )
        out = np.empty(len(counts))
        out[order] = finals / p.initial_cash - 1.0
        return out

    def score(self, combos: list[SimParams]) -> list[dict[str, float]]:
        """The metrics of every combination, in one kernel call; the random baseline's are
        NaN until `add_random_baselines` fills them in."""
        out = self._run(self.pred, combos)
        buy_hold = self._buy_hold_returns(combos)
        hit_rate = self._cached(("hit_rate",), lambda: metrics.hit_rate(self.hits))
        n, scores = len(self.close), []
        for p, values in zip(combos, out.tolist(), strict=True):
            v = dict(zip(OUT_COLUMNS, values, strict=True))
            total = v["final_equity"] / p.initial_cash - 1.0
            bh = buy_hold[_cost_key(p)]
            scores.append(
                {
                    "final_equity": v["final_equity"],
                    "total_return": total,
                    "buy_hold_return": bh,
                    "excess_vs_buy_hold": total - bh,
                    "random_return": math.nan,  # set by add_random_baselines, all at once
                    "excess_vs_random": math.nan,
                    "sharpe": v["sharpe"],
                    "sortino": v["sortino"],
                    "max_drawdown": v["max_drawdown"],
                    "exposure": v["exposed"] / n,
                    "trades": int(v["trades"]),
                    "fills": int(v["fills"]),
                    "open_position": v["shares"] > 0,
                    **{name: v[name] for name in _TRADE_SCORES},
                    "hit_rate": hit_rate,
                    "fees_paid": v["fees"],
                }
            )
        return scores

    def _buy_hold_returns(self, combos: list[SimParams]) -> dict[tuple[object, ...], float]:
        """Return of the always-buy prediction under each fill preset and costs of `combos`."""
        bases: dict[tuple[object, ...], SimParams] = {}
        for p in combos:
            key = _cost_key(p)
            if key not in bases:
                bases[key] = baseline_params(p)
        missing = [key for key in bases if ("buy_hold", key) not in self.cache]
        if missing:
            finals = self._run(self.buy_hold_pred, [bases[key] for key in missing])[:, 0]
            for key, final in zip(missing, finals.tolist(), strict=True):
                self.cache[("buy_hold", key)] = final / bases[key].initial_cash - 1.0
        return {key: self.cache[("buy_hold", key)] for key in bases}  # type: ignore[misc]

    def add_random_baselines(self, runs: list[SimRun]) -> None:
        """Fill in random_return and excess_vs_random, one batch per fill preset and costs."""
        groups: dict[tuple[object, ...], list[SimRun]] = {}
        for run in runs:
            groups.setdefault(_cost_key(run.params), []).append(run)
        for group in groups.values():
            counts = np.array(sorted({run.metrics["fills"] for run in group}), dtype=np.int64)
            by_count = dict(
                zip(counts.tolist(), self.random_returns(group[0].params, counts), strict=True)
            )
            for run in group:
                rand = float(by_count[run.metrics["fills"]])
                run.metrics["random_return"] = rand
                run.metrics["excess_vs_random"] = run.metrics["total_return"] - rand


# --- filters -----------------------------------------------------------------------

_EPS = float(np.finfo(np.float64).eps)


@nb.njit(cache=True, nogil=True)
def _window_stats(pred: np.ndarray, i: int, window: int) -> tuple[int, float, float]:
    """(count, mean, std ddof=0) of the finite values among pred[i-window .. i-1], two-pass."""
    count, total = 0, 0.0
    for j in range(i - window, i):
        if np.isfinite(pred[j]):
            count += 1
            total += pred[j]
    mean = total / max(count, 1)
    squares = 0.0
    for j in range(i - window, i):
        if np.isfinite(pred[j]):
            squares += (pred[j] - mean) ** 2
    return count, mean, math.sqrt(squares / max(count, 1))


@nb.njit(cache=True, nogil=True)
def _zscore_outliers(pred: np.ndarray, window: int, limit: float) -> np.ndarray:
    """|z| > limit per the docstring. Running sums decide where their error bound allows;
    elsewhere (near the limit, tiny variance) the exact two-pass statistics decide."""
    n = pred.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    count, total, squares, biggest, since = 0, 0.0, 0.0, 0.0, window
    for i in range(window, n):
        if since >= window:  # re-anchor the running sums, bounding their drift
            count, total, squares, biggest, since = 0, 0.0, 0.0, 0.0, 0
            for j in range(i - window, i):
                if np.isfinite(pred[j]):
                    count, total, squares = count + 1, total + pred[j], squares + pred[j] ** 2
                    biggest = max(biggest, pred[j] ** 2)
        else:
            since += 1
            new, old = pred[i - 1], pred[i - window - 1]
            if np.isfinite(new):
                count, total, squares = count + 1, total + new, squares + new**2
                biggest = max(biggest, new**2)
            if np.isfinite(old):
                count, total, squares = count - 1, total - old, squares - old**2
        x = pred[i]
        if not np.isfinite(x) or count < 2:
            continue
        mean = total / count
        variance = squares / count - mean * mean
        if variance > 1e4 * 8.0 * window * window * _EPS * biggest:
            z = abs(x - mean) / math.sqrt(variance)
            if abs(z - limit) > 1e-3 * limit:
                out[i] = z > limit
                continue
        exact_count, mean, std = _window_stats(pred, i, window)
        if exact_count >= 2 and std > 1e-12 * abs(mean):
            out[i] = abs(x - mean) / std > limit
    return out


@nb.njit(cache=True, nogil=True)
def _rolling_return_std(close: np.ndarray, window: int) -> np.ndarray:
    n = close.shape[0]
    returns = np.full(n, np.nan)
    for j in range(1, n):
        returns[j] = close[j] / close[j - 1] - 1.0
    out = np.full(n, np.nan)
    for i in range(window, n):
        total = 0.0
        for j in range(i - window + 1, i + 1):
            total += returns[j]
        mean = total / window
        squares = 0.0
        for j in range(i - window + 1, i + 1):
            squares += (returns[j] - mean) ** 2
        out[i] = math.sqrt(squares / window)
    return out


@nb.njit(cache=True, nogil=True)
def _rolling_median(values: np.ndarray, start: int, window: int) -> np.ndarray:
    """Median of values[i-window+1 .. i] from i = start+window-1 (finite from `start` on)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    first, half = start + window - 1, window // 2
    if first >= n:
        return out
    ordered = np.sort(values[start : first + 1])
    for i in range(first, n):
        if i > first:  # swap the leaving value for the new one, keeping the order
            new = values[i]
            k = np.searchsorted(ordered, values[i - window])
            t = np.searchsorted(ordered, new)
            if t > k:
                for j in range(k, t - 1):
                    ordered[j] = ordered[j + 1]
                ordered[t - 1] = new
            else:
                for j in range(k - t):
                    ordered[k - j] = ordered[k - j - 1]
                ordered[t] = new
        odd = window % 2 == 1
        out[i] = ordered[half] if odd else (ordered[half - 1] + ordered[half]) / 2.0
    return out


def _vol_scale(close: np.ndarray, window: int, median_window: int) -> np.ndarray:
    vol = _rolling_return_std(close, window)
    med = _rolling_median(vol, window, median_window)
    ok = np.isfinite(vol) & np.isfinite(med) & (med > 0)
    return np.where(ok, vol / np.where(ok, med, 1.0), 1.0)
