"""The fill state machine behind `stock_assets.core.simulation`, a whole grid in one call.

Per combination, two passes over the bars: a branch-free one that turns the prediction
and the filters into a signal code per bar (`signal_codes`: 1 buy, 2 sell, 0 none), and
the state machine (`run_combination`), which places the orders, fills them and
accumulates every metric's inputs on the way (bar-close equity and drawdown, exposure,
end-of-day equity, per-trade net returns, trades per week). Combinations that share a
signal path (the same threshold and filters, other fills or costs) share its codes.
The random baselines are here too.

The semantics are documented in the simulation module's docstring; `sim_kernels` prepares
the arrays (validated by `simulation`), so nothing here checks them again.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from stock_assets.core import metrics

FILL_COLUMNS = ("signal_bar", "bar", "side", "price", "shares", "fee", "cash")
# `grid_kernel`'s per-combination inputs, one row each: rows of the stacked filter and
# fill price tables, the fill delay, the target kind (1: classifier), the signal path
# (combinations with the same one are adjacent) ...
SETUP_COLUMNS = (
    "scale_row", "outlier_row", "regime_row", "bot_row", "price_row", "delay", "classifier",
    "signal_path",
)  # fmt: skip
# ... and the numbers:
COST_COLUMNS = ("threshold", "fee_per_trade", "fee_rate", "fractional", "initial_cash")
# Its output, one row per combination:
OUT_COLUMNS = (
    "final_equity", "cash", "shares", "fills", "trades", "fees", "max_drawdown", "exposed",
    # metrics.summary's, in its order
    "sharpe", "sortino", "win_rate", "profit_factor", "sqn", "sqn_100", "expectancy",
    "weekly_consistency",
)  # fmt: skip
_N_OUT = len(OUT_COLUMNS)
_N_FILL = len(FILL_COLUMNS)
BUY, SELL = 1, 2


# --- signals -------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def signal_codes(pred, classifier, threshold, scale, outlier, regime_ok, bot_ok, codes):
    """Per bar, into `codes`: BUY | SELL bits after every filter (docstring of `simulation`).

    A filter that is off comes as its neutral array (scale 1, no outlier, regime and bot
    passing), so this is one branch-free pass; threshold x 1.0 is the threshold exactly.
    (`~` of a bool is its negation in numba, as in numpy.)
    """
    if classifier:
        for j in range(pred.shape[0]):
            buy, sell, ok, z = pred[j] == 1.0, pred[j] == 0.0, regime_ok[j], outlier[j]
            codes[j] = (buy & ~z & bot_ok[j] & ok) | (((sell & ~z) | ~ok) << 1)
    else:
        for j in range(pred.shape[0]):
            t = threshold * scale[j]
            buy, sell, ok, z = pred[j] > t, pred[j] <= -t, regime_ok[j], outlier[j]
            codes[j] = (buy & ~z & bot_ok[j] & ok) | (((sell & ~z) | ~ok) << 1)


# --- the fill state machine ----------------------------------------------------------


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


@nb.njit(cache=True, nogil=True, inline="always")
def _apply(s, bar, side, price, cash, shares, nf, nt, entry, fees, cost, bar_week, out):
    """Fill the order of bar `s` at `bar`: the new state, and whether it was a cancelled buy.
    A closed trade's net return and exit week are recorded; every fill when `fills` has room."""
    fills, trade_returns, week_counts = out
    sold = shares
    filled, cash, shares, fee = _fill(side, price, cash, shares, cost)
    if not filled:
        return cash, shares, nf, nt, entry, fees, side > 0
    if fills.shape[0] > 0:
        fills[nf, 0], fills[nf, 1], fills[nf, 2], fills[nf, 3] = s, bar, side, price
        fills[nf, 4], fills[nf, 5], fills[nf, 6] = shares if side > 0 else sold, fee, cash
    if side > 0:
        entry = shares * price + fee
    else:
        trade_returns[nt] = (sold * price - fee) / entry - 1.0
        week_counts[bar_week[bar]] += 1.0
        nt += 1
    return cash, shares, nf + 1, nt, entry, fees + fee, False


@nb.njit(cache=True, nogil=True, inline="always")
def _drawdown_floor(peak: float, max_dd: float) -> float:
    """Equity below which a new drawdown may exceed max_dd (generous; exact test follows)."""
    return peak * (1.0 - max_dd) * (1.0 + 1e-9) if max_dd < 0.5 else np.inf


@nb.njit(cache=True, nogil=True)
def run_combination(
    codes, close, fill_px, delay, cost, cash0, day_end, bar_week,
    orders, trade_returns, week_counts, eod, fills, curve,
):  # fmt: skip
    """One combination bar by bar, from its signal codes; cost: fixed fee, fee rate,
    fractional. `week_counts` must be zero on entry. Fills `eod`, `trade_returns` and
    `week_counts`, and `fills` and `curve` when they have room. Returns (fills, trades,
    cash, shares, max drawdown, bars exposed, fees)."""
    n, record = close.shape[0], curve.shape[0] > 0
    out = (fills, trade_returns, week_counts)
    cash, shares, nf, nt, entry, fees = cash0, 0.0, 0, 0, 0.0, 0.0
    long_intent, last_order = False, -1
    peak, max_dd, floor, exposed, day = cash0, 0.0, _drawdown_floor(cash0, 0.0), 0, 0
    for j in range(n):
        if delay > 0 and j >= delay and orders[j - delay] != 0:
            s = j - delay
            cash, shares, nf, nt, entry, fees, cancelled = _apply(
                s, j, orders[s], fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
            )
            if cancelled and last_order == s:
                long_intent = False
        # the decision state is the position after every order placed: only the signal
        # that can change it counts
        side = -((codes[j] & SELL) >> 1) if long_intent else codes[j] & BUY
        orders[j] = side
        if side != 0:
            long_intent, last_order = side > 0, j
            if delay == 0:
                cash, shares, nf, nt, entry, fees, cancelled = _apply(
                    j, j, side, fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
                )
                if cancelled:
                    long_intent = False
        if j == n - 1:
            break  # the last bar closes below, after the orders due past the end
        equity = cash + shares * close[j]
        exposed += shares > 0.0
        if equity > peak:
            peak, floor = equity, _drawdown_floor(equity, max_dd)
        elif equity < floor:  # a cheap, slightly generous test before the exact one
            drawdown = 1.0 - equity / peak
            if drawdown > max_dd:
                max_dd, floor = drawdown, _drawdown_floor(peak, drawdown)
        if j == day_end[day]:
            eod[day] = equity
            day += 1
        if record:
            curve[j] = equity
    last = n - 1  # orders due past the end fill at its close, after its own fills
    for s in range(max(n - delay, 0) if delay > 0 else n, n):
        if orders[s] != 0:
            cash, shares, nf, nt, entry, fees, _ = _apply(
                s, last, orders[s], close[last], cash, shares, nf, nt, entry, fees, cost,
                bar_week, out,
            )  # fmt: skip
    equity = cash + shares * close[last]
    exposed += shares > 0.0
    max_dd = max(max_dd, 1.0 - equity / max(peak, equity))
    eod[day] = equity
    if record:
        curve[last] = equity
    return nf, nt, cash, shares, max_dd, exposed, fees


@nb.njit(cache=True, nogil=True)
def grid_kernel(
    pred, close, fill_prices, scales, outliers, regime_oks, bot_oks, day_end, bar_week,
    setup, costs,
):  # fmt: skip
    """Every combination over the bars: a row of `setup` (SETUP_COLUMNS) and `costs`
    (COST_COLUMNS) each, picking its rows of the stacked filter and price tables; a row
    of OUT_COLUMNS each. A signal path's codes are computed once, for its first row."""
    n, k = close.shape[0], setup.shape[0]
    out = np.empty((k, _N_OUT))
    codes, orders = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int8)
    trade_returns = np.empty(n // 2 + 1)
    week_counts = np.empty(int(bar_week[n - 1]) + 1)
    eod = np.empty(day_end.shape[0])
    no_fills, no_curve = np.empty((0, _N_FILL)), np.empty(0)
    for c in range(k):
        r, cost = setup[c], costs[c]
        if c == 0 or r[7] != setup[c - 1, 7]:
            signal_codes(
                pred, r[6] == 1, cost[0], scales[r[0]], outliers[r[1]], regime_oks[r[2]],
                bot_oks[r[3]], codes,
            )  # fmt: skip
        week_counts[:] = 0.0
        nf, nt, cash, shares, max_dd, exposed, fees = run_combination(
            codes, close, fill_prices[r[4]], r[5], cost[1:4], cost[4], day_end, bar_week,
            orders, trade_returns, week_counts, eod, no_fills, no_curve,
        )  # fmt: skip
        summary = metrics.summary(eod, cost[4], trade_returns[:nt], week_counts)
        out[c, 0], out[c, 1], out[c, 2] = cash + shares * close[n - 1], cash, shares
        out[c, 3], out[c, 4], out[c, 5], out[c, 6], out[c, 7] = nf, nt, fees, max_dd, exposed
        for m in range(len(summary)):
            out[c, 8 + m] = summary[m]
    return out


# --- random baselines ----------------------------------------------------------------


@nb.njit(cache=True, nogil=True, error_model="numpy")
def random_baselines(counts, ranks, close, fill_px, cost, delay, cash0):
    """Mean final equity, per count (sorted descending), of alternating buy/sell orders at
    the bars ranked below the count, over every draw (row of `ranks`); one scan per draw.
    The counts with an order at a bar are a prefix of `counts`, filled together with
    `_fill`'s arithmetic written branch-free (so it vectorizes; the price is never 0)."""
    n, k = close.shape[0], counts.shape[0]
    fixed, rate, fractional = cost[0], cost[1], cost[2] != 0.0
    total = np.zeros(k)
    for draw in range(ranks.shape[0]):
        cash, shares, buying = np.full(k, cash0), np.zeros(k), np.ones(k, dtype=np.uint8)
        for i in range(n):
            rank = ranks[draw, i]
            if counts[0] <= rank:
                continue
            members, above = 1, k  # binary search: how many counts exceed the rank
            while members < above:
                middle = (members + above) >> 1
                if counts[middle] > rank:
                    members = middle + 1
                else:
                    above = middle
            due = i + delay
            price = fill_px[due] if due < n else close[n - 1]
            unit = price * (1.0 + rate)
            for c in range(members):
                budget = cash[c] - fixed
                qty = budget / unit if fractional else np.floor(budget / unit)
                bought = (buying[c] != 0) & (budget > 0.0) & (qty > 0.0)
                sold = (buying[c] == 0) & (shares[c] > 0.0)
                notional = (qty if bought else shares[c]) * price
                fee = fixed + notional * rate
                if_sold = cash[c] + notional - fee if sold else cash[c]
                cash[c] = cash[c] - notional - fee if bought else if_sold
                shares[c] = qty if bought else (0.0 if sold else shares[c])
                buying[c] = 1 - buying[c]
        total += cash + shares * close[n - 1]
    return total / ranks.shape[0]
