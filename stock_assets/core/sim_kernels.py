"""The engine behind `stock_assets.core.simulation`: the arrays a grid's combinations
share, each filter computed once per grid, and the numba kernels (z-score and volatility
filters, the fill state machine, the equity walk, the random baselines).

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
from stock_assets.core.sim_params import SimGrid, SimParams, SimRun

FILL_COLUMNS = ("signal_bar", "bar", "side", "price", "shares", "fee", "cash")


def random_ranks(n: int, seed: int, draw: int) -> np.ndarray:
    """Each of `n` bars' rank in the seeded random permutation of draw `draw`."""
    permutation = np.random.default_rng([seed, draw]).permutation(n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[permutation] = np.arange(n)
    return ranks


def baseline_params(params: SimParams) -> SimParams:
    """`params` with every filter off: the fills and costs baselines run under."""
    return replace(params, threshold=0.0, zscore=False, volnorm=False, regime=None, bot=False)


@dataclass
class GridInputs:
    """Arrays every combination shares, the filters (computed once each) and buffers.

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

    def _kernel(self, p: SimParams, pred: np.ndarray, record: bool) -> tuple:
        n, n_weeks = len(self.close), int(self.bar_week[-1]) + 1
        buffers = self._cached(
            ("buffers",),
            lambda: (
                np.empty(n, dtype=np.int8),
                np.empty(n // 2 + 1),
                np.zeros(n_weeks),
                np.empty(len(self.day_end)),
            ),
        )
        fills = self._cached(("fill_buffer",), lambda: np.empty((n, len(FILL_COLUMNS))))
        curve = np.empty(n if record else 0)
        buffers[2][:] = 0.0
        prices, cost = self._cost(p)
        flags = (p.target_kind == "classifier", p.volnorm, p.zscore, p.bot, p.regime is not None)
        state = _simulate_kernel(
            pred,
            np.array(flags, dtype=np.bool_),
            float(p.threshold),
            *self._filters(p),
            self.close,
            prices,
            p.fill.delay_bars,
            cost,
            float(p.initial_cash),
            self.day_end,
            self.bar_week,
            *buffers,
            fills,
            curve,
        )
        return state, fills[: state[0]].copy() if record else fills[:0], curve

    def replay(self, p: SimParams, pred: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """(fill table, equity curve) of one combination."""
        _, fills, curve = self._kernel(p, self.pred if pred is None else pred, record=True)
        return fills, curve

    def _cost(self, p: SimParams) -> tuple[np.ndarray, np.ndarray]:
        """(fill prices, cost vector: fixed fee, fee rate, fractional flag) of a combination."""
        prices = self.mid if p.fill.price == "mid" else self.close
        return prices, np.array([p.fee_per_trade, p.fee_bps / 10_000.0, float(p.fractional)])

    def buy_hold_return(self, p: SimParams) -> float:
        """Return of the always-buy prediction under the combination's fill and costs."""
        base = baseline_params(p)
        _, _, cash, shares, *_ = self._kernel(base, self.buy_hold_pred, record=False)[0]
        return (cash + shares * self.close[-1]) / p.initial_cash - 1.0

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
        finals = _random_baselines(
            counts[order], ranks, self.close, *self._cost(p), p.fill.delay_bars, p.initial_cash
        )
        out = np.empty(len(counts))
        out[order] = finals / p.initial_cash - 1.0
        return out

    def score(self, p: SimParams) -> dict[str, float]:
        """The metrics of one combination; the random baseline's are NaN until
        `add_random_baselines` fills them in."""
        nf, nt, cash, shares, max_dd, exposed, fees = self._kernel(p, self.pred, False)[0]
        _, trade_returns, week_counts, eod = self.cache[("buffers",)]  # type: ignore[misc]
        scores = metrics.summary(eod, p.initial_cash, trade_returns[:nt], week_counts)
        final = cash + shares * self.close[-1]
        total = final / p.initial_cash - 1.0
        costs = (p.fill, p.fee_per_trade, p.fee_bps, p.fractional, p.initial_cash)
        buy_hold = self._cached(("buy_hold", *costs), lambda: self.buy_hold_return(p))
        sharpe, sortino, win_rate, factor, sqn, sqn_100, expectancy, weekly = scores
        return {
            "final_equity": final,
            "total_return": total,
            "buy_hold_return": buy_hold,
            "excess_vs_buy_hold": total - buy_hold,
            "random_return": math.nan,  # set by add_random_baselines, all combinations at once
            "excess_vs_random": math.nan,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": max_dd,
            "exposure": exposed / len(self.close),
            "trades": nt,
            "fills": nf,
            "open_position": bool(shares > 0),
            "win_rate": win_rate,
            "profit_factor": factor,
            "sqn": sqn,
            "sqn_100": sqn_100,
            "expectancy": expectancy,
            "weekly_consistency": weekly,
            "hit_rate": self._cached(("hit_rate",), lambda: metrics.hit_rate(self.hits)),
            "fees_paid": fees,
        }

    def add_random_baselines(self, runs: list[SimRun]) -> None:
        """Fill in random_return and excess_vs_random, one batch per fill preset and costs."""
        groups: dict[tuple[object, ...], list[SimRun]] = {}
        for run in runs:
            p = run.params
            key = (p.fill, p.fee_per_trade, p.fee_bps, p.fractional, p.initial_cash)
            groups.setdefault(key, []).append(run)
        for group in groups.values():
            counts = np.array(sorted({run.metrics["fills"] for run in group}), dtype=np.int64)
            by_count = dict(
                zip(counts.tolist(), self.random_returns(group[0].params, counts), strict=True)
            )
            for run in group:
                rand = float(by_count[run.metrics["fills"]])
                run.metrics["random_return"] = rand
                run.metrics["excess_vs_random"] = run.metrics["total_return"] - rand


# --- numba kernels -------------------------------------------------------------------

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


@nb.njit(cache=True, nogil=True, inline="always")
def _fill(side, price, cash, shares, cost):
    """(filled, cash, shares, fee) after one order; cost = (fixed fee, fee rate, fractional)."""
    if side > 0:
        budget = cash - cost[0]
        if budget <= 0.0:
            return False, cash, shares, 0.0
        qty = budget / (price * (1.0 + cost[1]))
        if cost[2] == 0.0:
            qty = np.floor(qty)
        if qty <= 0.0:
            return False, cash, shares, 0.0
        notional = qty * price
        fee = cost[0] + notional * cost[1]
        return True, cash - notional - fee, qty, fee
    if shares <= 0.0:
        return False, cash, shares, 0.0
    notional = shares * price
    fee = cost[0] + notional * cost[1]
    return True, cash + notional - fee, 0.0, fee


@nb.njit(cache=True, nogil=True)
def _apply(s, bar, side, price, cash, shares, nf, nt, entry, fees, cost, bar_week, out):
    """Fill the order of bar `s` at `bar`: the new state, and whether it was a cancelled buy."""
    fills, trade_returns, week_counts = out
    sold = shares
    filled, cash, shares, fee = _fill(side, price, cash, shares, cost)
    if not filled:
        return cash, shares, nf, nt, entry, fees, side > 0
    fills[nf, 0], fills[nf, 1], fills[nf, 2], fills[nf, 3] = s, bar, side, price
    fills[nf, 4], fills[nf, 5], fills[nf, 6] = shares if side > 0 else sold, fee, cash
    if side > 0:
        entry = shares * price + fee
    else:
        trade_returns[nt] = (sold * price - fee) / entry - 1.0
        week_counts[bar_week[bar]] += 1.0
        nt += 1
    return cash, shares, nf + 1, nt, entry, fees + fee, False


@nb.njit(cache=True, nogil=True)
def _simulate_kernel(
    pred, flags, threshold, scale, outlier, regime_ok, bot_ok, close, fill_px, delay,
    cost, cash0, day_end, bar_week, orders, trade_returns, week_counts, eod, fills, curve,
):  # fmt: skip
    """One combination bar by bar. flags: classifier, volnorm, zscore, bot, regime. Returns
    (fills, trades, cash, shares, max drawdown, bars exposed, fees)."""
    classifier, use_vol, use_z, use_bot, use_regime = (
        flags[0],
        flags[1],
        flags[2],
        flags[3],
        flags[4],
    )
    n = close.shape[0]
    out = (fills, trade_returns, week_counts)
    cash, shares, nf, nt, entry, fees = cash0, 0.0, 0, 0, 0.0, 0.0
    long_intent, last_order = False, -1
    for j in range(n):
        if delay > 0 and j >= delay and orders[j - delay] != 0:
            s = j - delay
            cash, shares, nf, nt, entry, fees, cancelled = _apply(
                s, j, orders[s], fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
            )
            if cancelled and last_order == s:
                long_intent = False
        # only the signal that can change the decision state is evaluated
        p, side = pred[j], 0
        if long_intent:
            if use_regime and not regime_ok[j]:
                side = -1
            elif p == 0.0 if classifier else p <= -(threshold * scale[j] if use_vol else threshold):
                side = 0 if use_z and outlier[j] else -1
        elif p == 1.0 if classifier else p > (threshold * scale[j] if use_vol else threshold):
            blocked = (use_z and outlier[j]) or (use_bot and not bot_ok[j])
            side = 0 if blocked or (use_regime and not regime_ok[j]) else 1
        orders[j] = side
        if side == 0:
            continue
        long_intent, last_order = side > 0, j
        if delay == 0:
            cash, shares, nf, nt, entry, fees, cancelled = _apply(
                j, j, side, fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
            )
            if cancelled:
                long_intent = False
    for s in range(max(n - delay, 0) if delay > 0 else n, n):  # orders due past the end
        if orders[s] != 0:
            cash, shares, nf, nt, entry, fees, _ = _apply(
                s, n - 1, orders[s], close[n - 1], cash, shares, nf, nt, entry, fees, cost,
                bar_week, out,
            )  # fmt: skip
    max_dd, exposed = _equity_path(fills, nf, close, cash0, day_end, eod, curve)
    return nf, nt, cash, shares, max_dd, exposed, fees


@nb.njit(cache=True, nogil=True, inline="always")
def _drawdown_floor(peak: float, max_dd: float) -> float:
    """Equity below which a new drawdown may exceed max_dd (generous; exact test follows)."""
    return peak * (1.0 - max_dd) * (1.0 + 1e-9) if max_dd < 0.5 else np.inf


@nb.njit(cache=True, nogil=True)
def _equity_path(fills, nf, close, cash0, day_end, eod, curve):
    """Walk the bar-close equity between fills: (max drawdown, bars exposed); fills the
    end-of-day equity and, when `curve` has room, the whole curve."""
    n, record = close.shape[0], curve.shape[0] > 0
    peak, max_dd, floor, exposed, day = cash0, 0.0, _drawdown_floor(cash0, 0.0), 0, 0
    cash, shares = cash0, 0.0
    for segment in range(nf + 1):
        # bars [start, stop) close with the state after fill `segment - 1`
        start = 0 if segment == 0 else int(fills[segment - 1, 1])
        stop = n if segment == nf else int(fills[segment, 1])
        if segment > 0:
            cash = fills[segment - 1, 6]
            shares = fills[segment - 1, 4] if fills[segment - 1, 2] > 0 else 0.0
        if stop <= start:
            continue
        if shares > 0.0:
            exposed += stop - start
            for j in range(start, stop):
                equity = cash + shares * close[j]
                if equity > peak:
                    peak, floor = equity, _drawdown_floor(equity, max_dd)
                elif equity < floor:  # a cheap, slightly generous test before the exact one
                    drawdown = 1.0 - equity / peak
                    if drawdown > max_dd:
                        max_dd, floor = drawdown, _drawdown_floor(peak, drawdown)
        elif cash > peak:
            peak, floor = cash, _drawdown_floor(cash, max_dd)
        elif cash < floor:
            drawdown = 1.0 - cash / peak
            if drawdown > max_dd:
                max_dd, floor = drawdown, _drawdown_floor(peak, drawdown)
        while day < day_end.shape[0] and day_end[day] < stop:
            eod[day] = cash + shares * close[day_end[day]]
            day += 1
        if record:
            for j in range(start, stop):
                curve[j] = cash + shares * close[j]
    return max_dd, exposed


@nb.njit(cache=True, nogil=True)
def _random_baselines(counts, ranks, close, fill_px, cost, delay, cash0):
    """Mean final equity, per count (sorted descending), of alternating buy/sell orders at
    the bars ranked below the count, over every draw (row of `ranks`); one scan per draw."""
    n, k = close.shape[0], counts.shape[0]
    total = np.zeros(k)
    for draw in range(ranks.shape[0]):
        cash, shares, done = np.full(k, cash0), np.zeros(k), np.zeros(k, dtype=np.int64)
        for i in range(n):
            rank, members = ranks[draw, i], 0
            while members < k and counts[members] > rank:
                members += 1
            if members == 0:
                continue
            due = i + delay
            price = fill_px[due] if due < n else close[n - 1]
            for c in range(members):
                side = 1 if done[c] % 2 == 0 else -1
                _, cash[c], shares[c], _ = _fill(side, price, cash[c], shares[c], cost)
                done[c] += 1
        total += cash + shares * close[n - 1]
    return total / ranks.shape[0]
