"""The simulation engine against a plain bar-by-bar reference written from its docstring.

The reference below is deliberately naive (Python loops, lists, the statistics module):
it is the definition the vectorized/numba engine must reproduce to 1e-9 for every
combination of every grid hypothesis generates.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stock_assets.core import sim_kernels
from stock_assets.core import simulation as sim
from stock_assets.core.simulation import FillPreset, RegimeFilter, SimGrid, SimParams

ET = "America/New_York"
THRESHOLDS = [0.0, 0.0005, 0.002]


# --- the reference -------------------------------------------------------------------


def reference_filters(close, pred, regimes, bot_proba, p: SimParams):
    """Per bar: (buy, sell) after every filter, straight from the docstring's words."""
    n = len(close)
    returns = [math.nan] + [close[j] / close[j - 1] - 1.0 for j in range(1, n)]
    vol = [math.nan] * n
    for i in range(p.vol_window, n):
        vol[i] = statistics.pstdev(returns[i - p.vol_window + 1 : i + 1])
    signals = []
    for i in range(n):
        x = pred[i]
        if p.target_kind == "classifier":
            buy, sell = x == 1.0, x == 0.0
        else:
            scale = 1.0
            if p.volnorm:
                window = vol[max(i - p.vol_median_window + 1, 0) : i + 1]
                if len(window) == p.vol_median_window and all(math.isfinite(v) for v in window):
                    med = statistics.median(window)
                    if math.isfinite(vol[i]) and med > 0:
                        scale = vol[i] / med
            t = p.threshold * scale
            buy, sell = x > t, x <= -t
        if p.zscore and p.target_kind == "regressor" and i >= p.zscore_window and x == x:
            past = [v for v in pred[i - p.zscore_window : i] if v == v]
            if len(past) >= 2:
                mean = sum(past) / len(past)
                std = math.sqrt(sum((v - mean) ** 2 for v in past) / len(past))
                if std > 1e-12 * abs(mean) and abs(x - mean) / std > p.zscore_limit:
                    buy = sell = False
        if p.bot and not bot_proba[i] > p.bot_threshold:
            buy = False
        if p.regime is not None and int(regimes[p.regime.column][i]) not in p.regime.allowed:
            buy, sell = False, True
        signals.append((buy, sell))
    return signals


def reference_run(bars: pd.DataFrame, pred, p: SimParams, regimes=None, bot_proba=None):
    """Fills, equity per bar and final equity of one combination, one bar at a time."""
    close = bars["close"].tolist()
    high, low = bars["high"].tolist(), bars["low"].tolist()
    n = len(close)
    signals = reference_filters(close, list(pred), regimes, bot_proba, p)
    fee_rate = p.fee_bps / 10_000.0
    cash, shares, long_intent = p.initial_cash, 0.0, False
    submitted, pending, fills, equity = [], [], [], []

    def price_at(bar: int, past_end: bool) -> float:
        if past_end:
            return close[-1]
        if p.fill.price == "mid":
            mid = (high[bar] + low[bar]) / 2.0
            if math.isfinite(mid) and mid > 0:
                return mid
        return close[bar]

    def execute(order: dict, bar: int, past_end: bool) -> None:
        nonlocal cash, shares, long_intent
        price = price_at(bar, past_end)
        if order["side"] == 1:
            budget = cash - p.fee_per_trade
            qty = budget / (price * (1.0 + fee_rate)) if budget > 0 else 0.0
            if not p.fractional:
                qty = math.floor(qty)
            if qty <= 0:
                if submitted[-1] is order:
                    long_intent = False
                return
            notional = qty * price
            fee = p.fee_per_trade + notional * fee_rate
            cash = cash - notional - fee
            shares = qty
            traded = qty
        else:
            if shares <= 0:
                return
            traded = shares
            notional = shares * price
            fee = p.fee_per_trade + notional * fee_rate
            cash = cash + notional - fee
            shares = 0.0
        fills.append((order["bar"], bar, order["side"], price, traded, fee, cash))

    for j in range(n):
        for order in [o for o in pending if o["bar"] + p.fill.delay_bars == j]:
            pending.remove(order)
            execute(order, j, past_end=False)
        buy, sell = signals[j]
        order = None
        if buy and not long_intent:
            order, long_intent = {"bar": j, "side": 1}, True
        elif sell and long_intent:
            order, long_intent = {"bar": j, "side": -1}, False
        if order is not None:
            submitted.append(order)
            if p.fill.delay_bars == 0:
                execute(order, j, past_end=False)
            else:
                pending.append(order)
        if j == n - 1:
            for order in list(pending):
                pending.remove(order)
                execute(order, j, past_end=True)
        equity.append(cash + shares * close[j])
    return fills, equity, shares


def reference_metrics(bars, pred, p: SimParams, regimes, bot_proba, draws, seed):
    fills, equity, shares = reference_run(bars, pred, p, regimes, bot_proba)
    close = bars["close"].tolist()
    n = len(close)
    dates = [t.date() for t in pd.DatetimeIndex(bars["ts"]).tz_convert(ET)]
    eod = {}
    for date, value in zip(dates, equity, strict=True):
        eod[date] = value
    days = list(eod.values())
    daily = [days[0] / p.initial_cash - 1.0] + [
        b / a - 1.0 for a, b in zip(days[:-1], days[1:], strict=True)
    ]
    if len(daily) < 2:
        sharpe = sortino = math.nan
    else:
        mean, std = statistics.fmean(daily), statistics.stdev(daily)
        sharpe = 0.0 if std <= 1e-12 * abs(mean) else mean / std * math.sqrt(252)
        downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in daily) / len(daily))
        if downside == 0:
            sortino = math.inf if mean > 0 else 0.0
        else:
            sortino = mean / downside * math.sqrt(252)
    peak, max_dd = p.initial_cash, 0.0
    for value in equity:
        peak = max(peak, value)
        max_dd = max(max_dd, 1.0 - value / peak)
    net, exit_bars = [], []
    for buy, sell in zip(fills[0::2], fills[1::2], strict=False):  # an open buy has no pair
        cost = buy[4] * buy[3] + buy[5]
        net.append((sell[4] * sell[3] - sell[5]) / cost - 1.0)
        exit_bars.append(sell[1])
    wins, losses = sum(r for r in net if r > 0), -sum(r for r in net if r < 0)
    profit_factor = (math.inf if wins > 0 else math.nan) if losses == 0 else wins / losses

    def sqn(cap):
        if len(net) < 2:
            return math.nan
        mean, std = statistics.fmean(net), statistics.stdev(net)
        if std <= 1e-12 * abs(mean):
            return math.nan
        return math.sqrt(min(len(net), cap)) * mean / std

    weeks = [d.isocalendar()[:2] for d in dates]
    per_week = {week: 0 for week in weeks}
    for bar in exit_bars:
        per_week[weeks[bar]] += 1
    counts = list(per_week.values())
    mean_count = statistics.fmean(counts)
    weekly = math.nan if mean_count == 0 else statistics.pstdev(counts) / mean_count
    hits = []
    for i in range(n - 1):
        move = close[i + 1] - close[i]
        x = pred[i]
        up = x == 1.0 if p.target_kind == "classifier" else x > 0
        down = x == 0.0 if p.target_kind == "classifier" else x <= 0
        if move != 0 and (up or down):
            hits.append(1.0 if (up and move > 0) or (down and move < 0) else 0.0)
    final = equity[-1]
    total = final / p.initial_cash - 1.0
    base = SimParams(**{**p.__dict__, "threshold": 0.0, "zscore": False, "volnorm": False})
    base = SimParams(**{**base.__dict__, "regime": None, "bot": False})
    bh = reference_run(bars, np.ones(n), base)[1][-1] / p.initial_cash - 1.0
    kind = p.target_kind
    finals = []
    for d in range(draws):
        noise = sim.random_prediction(n, len(fills), seed=seed, draw=d, target_kind=kind)
        finals.append(reference_run(bars, noise, base)[1][-1])
    rand = statistics.fmean(finals) / p.initial_cash - 1.0 if draws else math.nan
    metrics = {
        "final_equity": final,
        "total_return": total,
        "buy_hold_return": bh,
        "excess_vs_buy_hold": total - bh,
        "random_return": rand,
        "excess_vs_random": total - rand,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "exposure": 0.0,  # filled below
        "trades": len(net),
        "fills": len(fills),
        "open_position": shares > 0,
        "win_rate": sum(r > 0 for r in net) / len(net) if net else math.nan,
        "profit_factor": profit_factor,
        "sqn": sqn(10**9),
        "sqn_100": sqn(100),
        "expectancy": statistics.fmean(net) if net else math.nan,
        "weekly_consistency": weekly,
        "hit_rate": statistics.fmean(hits) if hits else math.nan,
        "fees_paid": sum(f[5] for f in fills),
    }
    cash_shares = _exposure(fills, n)
    metrics["exposure"] = cash_shares / n
    return metrics, fills, equity


def _exposure(fills, n):
    """Bars ending with shares > 0, from the fill list alone."""
    holding, bars_long, k = False, 0, 0
    for j in range(n):
        while k < len(fills) and fills[k][1] == j:
            holding = fills[k][2] == 1
            k += 1
        bars_long += holding
    return bars_long


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    if isinstance(a, float) and math.isinf(a) or isinstance(b, float) and math.isinf(b):
        return a == b
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


# --- generated scenarios -------------------------------------------------------------


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.choice([1, 1, 1, 1, 2, 7, 60 * 18, 60 * 66], size=n)  # gaps, nights, weekends
    start = pd.Timestamp("2024-03-04 14:30", tz="UTC") + pd.Timedelta(
        days=int(rng.integers(0, 300))
    )
    ts = start + pd.to_timedelta(np.cumsum(steps) - steps[0], unit="min")
    level = draw(st.sampled_from([5.0, 100.0, 3000.0]))
    moves = rng.normal(0, 0.01, n) * (rng.random(n) > draw(st.sampled_from([0.0, 0.5])))
    close = np.round(level * np.exp(np.cumsum(moves)), 2)
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    high, low = close + spread, close - spread * rng.random(n)
    high[rng.random(n) < 0.2] = np.nan
    nonpositive_mid = rng.random(n) < 0.05
    low[nonpositive_mid] = -close[nonpositive_mid] - spread[nonpositive_mid]
    bars = pd.DataFrame({"ts": ts, "open": close, "high": high, "low": low, "close": close})
    kind = draw(st.sampled_from(["regressor", "regressor", "classifier"]))
    if kind == "classifier":
        pred = rng.choice([0.0, 1.0, 1.0, np.nan, 0.5], size=n)
    else:
        levels = rng.normal(0, 0.002, 4)
        pred = np.where(rng.random(n) < 0.3, rng.choice(levels, n), rng.normal(0, 0.002, n))
        pred[rng.random(n) < 0.1] = np.nan
        pred[rng.random(n) < 0.05] *= 40  # outliers for the z-score filter
    regimes = {
        "vix": np.repeat(rng.integers(0, 4, n), rng.integers(1, 6, n))[:n],
        "gmm": rng.integers(0, 2, n),
    }
    bot_proba = rng.random(n)
    bot_proba[rng.random(n) < 0.1] = np.nan
    delays = draw(st.lists(st.integers(0, 5), min_size=1, max_size=2, unique=True))
    fills = tuple(FillPreset(d, draw(st.sampled_from(["close", "mid"]))) for d in delays)
    allowed = tuple(draw(st.sets(st.integers(0, 3), max_size=3)))
    grid = SimGrid(
        target_kind=kind,
        thresholds=tuple(
            draw(st.lists(st.sampled_from(THRESHOLDS), min_size=1, max_size=2, unique=True))
        ),
        zscore=(False, True),
        zscore_window=draw(st.integers(2, 6)),
        zscore_limit=draw(st.sampled_from([1.0, 1.5, 3.0])),
        volnorm=(False, True),
        vol_window=draw(st.integers(1, 4)),
        vol_median_window=draw(st.integers(1, 5)),
        regimes=(None, RegimeFilter("vix", allowed), RegimeFilter("gmm", (1,))),
        bot=(False, True),
        bot_threshold=draw(st.sampled_from([0.3, 0.55])),
        fills=fills,
        fee_per_trade=draw(st.sampled_from([0.0, 0.02, 1.0])),
        fee_bps=draw(st.sampled_from([0.0, 5.0])),
        fractional=draw(st.booleans()),
        # near one share's price too, so buys get cancelled and retried
        initial_cash=round(level * draw(st.sampled_from([0.97, 1.01, 1.5, 80.0])), 2),
        random_draws=2,
        random_seed=draw(st.integers(0, 1000)),
    )
    return bars, pred, regimes, bot_proba, grid


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_every_combination_matches_the_reference_loop(scenario):
    bars, pred, regimes, bot_proba, grid = scenario
    result = sim.simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=bot_proba)
    combos = grid.combinations()
    assert len(result.runs) == len(combos)
    for combo, (run, params) in enumerate(zip(result.runs, combos, strict=True)):
        assert run.params == params
        expected, fills, equity = reference_metrics(
            bars, pred, params, regimes, bot_proba, grid.random_draws, grid.random_seed
        )
        got_fills = result.fills(combo)
        assert len(got_fills) == len(fills), params
        for got, want in zip(got_fills.itertuples(index=False), fills, strict=True):
            assert all(same(float(a), float(b)) for a, b in zip(got, want, strict=True)), (
                params,
                got,
                want,
            )
        np.testing.assert_allclose(result.equity(combo).to_numpy(), equity, rtol=1e-9, atol=1e-9)
        for name, value in expected.items():
            assert same(run.metrics[name], value), (name, run.metrics[name], value, params)


# --- the rules, one at a time ---------------------------------------------------------


def _bars(close, high=None, low=None, start="2024-03-04 14:30"):
    close = np.asarray(close, dtype=float)
    ts = pd.date_range(start, periods=len(close), freq="min", tz="UTC")
    high = close if high is None else np.asarray(high, dtype=float)
    low = close if low is None else np.asarray(low, dtype=float)
    return pd.DataFrame({"ts": ts, "open": close, "high": high, "low": low, "close": close})


def _fills(bars, pred, **params):
    return sim.simulate(bars, np.asarray(pred, dtype=float), SimParams(**params)).fills


def test_a_signal_repeated_while_an_order_is_pending_buys_once():
    bars = _bars([10.0] * 8)
    fills = _fills(bars, [1, 1, 1, 1, 1, 1, 1, 1], fill=FillPreset(4, "close"), fee_per_trade=0)
    assert fills[["signal_bar", "bar", "side"]].values.tolist() == [[0, 4, 1]]
    assert fills.loc[0, "shares"] == 1000


def test_a_sell_after_a_pending_buy_is_queued_behind_it():
    bars = _bars([10.0, 10.0, 10.0, 11.0, 12.0, 13.0, 14.0])
    fills = _fills(bars, [1, -1, 1, np.nan, np.nan, np.nan, np.nan], fill=FillPreset(2, "close"))
    assert fills[["signal_bar", "bar", "side"]].values.tolist() == [
        [0, 2, 1],
        [1, 3, -1],
        [2, 4, 1],
    ]


def test_midpoint_fill_and_its_fallback_to_close():
    bars = _bars([10.0] * 4, high=[10.4, 10.4, np.nan, 10.4], low=[9.8, 9.8, 9.8, 9.8])
    fills = _fills(bars, [1, -1, np.nan, np.nan], fill=FillPreset(1, "mid"), fee_per_trade=0)
    assert fills["price"].tolist() == [pytest.approx(10.1), 10.0]  # bar 2 has no high


def test_orders_past_the_end_fill_at_the_last_close():
    bars = _bars([10.0, 11.0, 12.0], high=[13.0] * 3, low=[11.0] * 3)
    fills = _fills(bars, [np.nan, 1, np.nan], fill=FillPreset(4, "mid"), fee_per_trade=0)
    assert fills[["signal_bar", "bar", "price"]].values.tolist() == [[1, 2, 12.0]]


def test_whole_shares_are_bought_with_cash_net_of_the_fee():
    bars = _bars([33.0, 34.0])
    result = sim.simulate(bars, np.array([1.0, np.nan]), SimParams(fee_per_trade=0.02))
    fill = result.fills.iloc[0]
    assert fill["shares"] == 303  # floor(9999.98 / 33)
    assert fill["cash"] == pytest.approx(10_000 - 303 * 33 - 0.02)
    assert result.metrics["final_equity"] == pytest.approx(fill["cash"] + 303 * 34.0)
    assert result.metrics["open_position"] and result.metrics["trades"] == 0


def test_fractional_shares_spend_all_the_cash_including_bps_fees():
    bars = _bars([40.0, 40.0, 40.0])
    params = SimParams(fractional=True, fee_per_trade=1.0, fee_bps=10.0)
    result = sim.simulate(bars, np.array([1.0, -1.0, np.nan]), params)
    buy, sell = result.fills.iloc[0], result.fills.iloc[1]
    assert buy["shares"] == pytest.approx(9_999.0 / (40.0 * 1.001))
    assert buy["cash"] == pytest.approx(0.0, abs=1e-9)
    assert sell["fee"] == pytest.approx(1.0 + buy["shares"] * 40.0 * 0.001)
    assert result.trades.loc[0, "net_return"] == pytest.approx(sell["cash"] / 10_000 - 1)


def test_a_buy_that_cannot_afford_one_share_is_cancelled_and_the_state_is_flat_again():
    bars = _bars([100.0, 100.0, 50.0, 50.0, 50.0])
    params = SimParams(initial_cash=60.0, fill=FillPreset(1, "close"), fee_per_trade=0.0)
    fills = sim.simulate(bars, np.array([1, np.nan, 1, np.nan, np.nan]), params).fills
    # bar 0's buy fails at bar 1 (price 100 > cash 60); bar 2's buy can go ahead
    assert fills[["signal_bar", "bar", "side", "shares"]].values.tolist() == [[2, 3, 1, 1]]


def test_regime_outside_the_whitelist_forces_an_exit_and_blocks_entries():
    bars = _bars([10.0] * 6)
    regimes = {"vix": np.array([3, 3, 0, 0, 3, 3])}
    params = SimParams(regime=RegimeFilter("vix", (3,)))
    result = sim.simulate(bars, np.ones(6), params, regimes=regimes)
    assert result.fills[["bar", "side"]].values.tolist() == [[0, 1], [2, -1], [4, 1]]


def test_the_bot_gates_entries_but_not_exits():
    bars = _bars([10.0] * 5)
    proba = np.array([0.5, 0.6, 0.1, 0.1, 0.9])
    result = sim.simulate(bars, np.array([1, 1, -1, 1, 1]), SimParams(bot=True), bot_proba=proba)
    assert result.fills[["bar", "side"]].values.tolist() == [[1, 1], [2, -1], [4, 1]]


def test_the_zscore_filter_drops_an_outlier_prediction():
    pred = np.array([0.001, -0.001, 0.001, -0.001, 0.5, -0.001])
    bars = _bars([10.0] * 6)
    plain = _fills(bars, pred)
    filtered = _fills(bars, pred, zscore=True, zscore_window=4)
    assert 4 in plain["bar"].tolist() and 4 not in filtered["bar"].tolist()


def test_volatility_normalization_scales_the_threshold():
    # returns 0, 0, 0, .01, 0, .02: vol (2 bars) .005, .005, .01 at bars 4-6; median .005
    bars = _bars([10.0, 10.0, 10.0, 10.0, 10.1, 10.1, 10.302])
    pred = np.array([np.nan] * 6 + [0.0015])
    plain = _fills(bars, pred, threshold=0.001)
    scaled = _fills(bars, pred, threshold=0.001, volnorm=True, vol_window=2, vol_median_window=3)
    assert len(plain) == 1 and scaled.empty  # the threshold doubles to 0.002 at bar 6


def test_each_combination_of_a_grid_equals_the_combination_run_alone():
    # the grid runs all combinations in one kernel call, sharing buffers and, between
    # combinations that differ only in fills, the signal codes: nothing may leak across
    rng = np.random.default_rng(3)
    close = np.round(40 * np.exp(np.cumsum(rng.normal(0, 0.01, 400))), 2)
    bars = _bars(close, high=close * 1.002, low=close * 0.997)
    pred = rng.normal(0, 0.002, 400)
    regimes, proba = {"vix": rng.integers(0, 3, 400)}, rng.random(400)
    grid = SimGrid(
        thresholds=(0.0, 0.001),
        zscore=(False, True),
        zscore_window=20,
        volnorm=(False, True),
        vol_window=5,
        vol_median_window=30,
        regimes=(None, RegimeFilter("vix", (0, 1))),
        bot=(False, True),
        fills=(sim.FILL_AT_CLOSE, FillPreset(3, "mid")),
        initial_cash=1000.0,  # the random baseline's draws and seed: SimGrid.of's defaults
    )
    result = sim.simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=proba)
    assert len(result.runs) == 64
    for run in result.runs:
        alone = sim.simulate(bars, pred, run.params, regimes=regimes, bot_proba=proba).metrics
        for name, value in run.metrics.items():
            both_nan = isinstance(value, float) and math.isnan(value) and math.isnan(alone[name])
            assert value == alone[name] or both_nan, (name, value, alone[name], run.params)


def test_a_grid_without_any_trade_has_no_best_but_the_first():
    close = np.linspace(40.0, 41.0, 50)
    grid = SimGrid(thresholds=(0.01, 0.02), fills=(sim.FILL_AT_CLOSE,))
    result = sim.simulate_grid(_bars(close), np.zeros(50), grid)
    assert result.table()["sqn"].isna().all() and result.best("sqn") == 0


def test_classifier_grids_collapse_thresholds_and_filters():
    grid = SimGrid(target_kind="classifier", thresholds=(0.0, 0.1), zscore=(False, True))
    combos = grid.combinations()
    assert len(combos) == 1 and combos[0].threshold == 0.0 and not combos[0].zscore


def test_the_benchmark_grid_has_96_combinations_thresholds_fastest():
    grid = SimGrid(
        thresholds=(0.0001, 0.0005, 0.001, 0.002),
        zscore=(False, True),
        volnorm=(False, True),
        regimes=(None, RegimeFilter("vix", (2, 3)), RegimeFilter("gmm", (0,))),
        bot=(False, True),
        fills=(sim.FILL_REALISTIC,),
    )
    combos = grid.combinations()
    assert len(combos) == 96 and len(set(combos)) == 96
    assert [c.threshold for c in combos[:4]] == [0.0001, 0.0005, 0.001, 0.002]
    assert SimGrid.of(combos[17]).combinations() == [combos[17]]


def test_buy_and_hold_return_equals_the_engine_on_an_always_buy_prediction():
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    bars = _bars(close, high=close * 1.01, low=close * 0.99)
    params = SimParams(fill=sim.FILL_REALISTIC, fee_bps=3.0)
    result = sim.simulate(bars, rng.normal(0, 0.01, 300), params)
    always = sim.simulate(bars, sim.buy_and_hold_prediction(300), params)
    assert result.metrics["buy_hold_return"] == pytest.approx(always.metrics["total_return"])
    assert result.buy_hold_equity.iloc[-1] == pytest.approx(always.metrics["final_equity"])
    assert result.equity.iloc[-1] == pytest.approx(result.metrics["final_equity"])
    excess = result.metrics["total_return"] - result.metrics["buy_hold_return"]
    assert result.metrics["excess_vs_buy_hold"] == pytest.approx(excess)


def test_simulate_baselines_rows_are_a_buy_and_hold_and_a_random_predictor():
    rng = np.random.default_rng(2)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    baselines = sim.simulate_baselines(_bars(close), SimGrid(thresholds=(0.0, 0.001)), n_signals=20)
    assert set(baselines) == {sim.BUY_AND_HOLD, sim.RANDOM}
    assert baselines[sim.BUY_AND_HOLD].runs[0].metrics["fills"] == 1
    assert baselines[sim.RANDOM].runs[0].metrics["fills"] == 20


def test_random_signal_bars_are_distinct_sorted_reproducible_and_nested():
    bars = sim.random_signal_bars(1000, 50, seed=7, draw=1)
    assert len(set(bars.tolist())) == 50 and (np.diff(bars) > 0).all()
    np.testing.assert_array_equal(bars, sim.random_signal_bars(1000, 50, seed=7, draw=1))
    assert set(sim.random_signal_bars(1000, 10, seed=7, draw=1)) <= set(bars.tolist())
    assert not np.array_equal(bars, sim.random_signal_bars(1000, 50, seed=7, draw=2))


def test_daily_returns_group_bars_by_their_new_york_date():
    # 19:59 and 20:01 ET on 2024-03-04 are 00:59 and 01:01 UTC on 2024-03-05: one ET day
    bars = _bars([10.0, 10.0, 10.0], start="2024-03-05 00:59")
    bars["ts"] = pd.to_datetime(
        ["2024-03-05 00:59", "2024-03-05 01:01", "2024-03-05 15:00"], utc=True
    )
    result = sim.simulate(bars, np.array([1.0, np.nan, np.nan]), SimParams(fee_per_trade=5.0))
    # two ET days: the buy's fee on day one, nothing on day two
    assert result.metrics["sharpe"] == pytest.approx(-1 / math.sqrt(2) * math.sqrt(252), rel=1e-9)


def test_bad_inputs_raise_with_what_would_be_valid():
    bars = _bars([10.0, 11.0])
    with pytest.raises(sim.InvalidSimulationInput, match="increase strictly"):
        sim.simulate(bars.iloc[::-1], np.zeros(2), SimParams())
    with pytest.raises(sim.InvalidSimulationInput, match="one value per bar"):
        sim.simulate(bars, np.zeros(3), SimParams())
    with pytest.raises(sim.InvalidSimulationInput, match="regime columns"):
        sim.simulate(bars, np.zeros(2), SimParams(regime=RegimeFilter("vix", (1,))))
    with pytest.raises(sim.InvalidSimulationInput, match="bot_proba is None"):
        sim.simulate(bars, np.zeros(2), SimParams(bot=True))
    with pytest.raises(sim.InvalidSimulationInput, match="finite and > 0"):
        sim.simulate(_bars([10.0, 0.0]), np.zeros(2), SimParams())
    with pytest.raises(sim.InvalidSimulationInput, match="invalid grid"):
        SimGrid(thresholds=(-0.1,))
    with pytest.raises(sim.InvalidSimulationInput, match="an int >= 0"):
        FillPreset(-1)


def test_predictions_are_read_in_return_units():
    close = np.array([100.0, 200.0])
    np.testing.assert_allclose(
        sim.prediction_as_return(np.log([1.002, 0.99]), "log_return"), [0.002, -0.01]
    )
    np.testing.assert_allclose(
        sim.prediction_as_return(np.array([101.0, 198.0]), "price", close), [0.01, -0.01]
    )
    with pytest.raises(sim.InvalidSimulationInput, match="price with `close`"):
        sim.prediction_as_return(np.array([101.0, 198.0]), "price")


def test_rolling_median_of_long_windows_matches_pandas_with_ties():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=3000), 1)  # many ties
    values[:5] = np.nan
    for window in (1, 2, 7, 64, 390, 1001):
        got = sim_kernels._rolling_median(values, 5, window)
        want = pd.Series(values).rolling(window, min_periods=window).median().to_numpy()
        np.testing.assert_array_equal(got, want)


def test_zscore_running_sums_decide_as_the_two_pass_definition_on_long_windows():
    rng = np.random.default_rng(1)
    pred = rng.normal(0, 0.001, 5000)
    pred[rng.random(5000) < 0.02] *= 50  # outliers that leave the window again
    pred[1000:1300] = 0.0007  # a constant stretch
    pred[rng.random(5000) < 0.05] = np.nan
    window, limit = 100, 3.0
    want = np.zeros(5000, dtype=bool)
    for i in range(window, 5000):
        past = pred[i - window : i][np.isfinite(pred[i - window : i])]
        if np.isfinite(pred[i]) and past.size >= 2:
            mean, std = past.mean(), past.std()
            want[i] = std > 1e-12 * abs(mean) and abs(pred[i] - mean) / std > limit
    got = sim_kernels._zscore_outliers(pred, window, limit)
    np.testing.assert_array_equal(got, want)
    assert want.sum() > 50
