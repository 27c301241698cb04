"""The engines the simulation benchmark (`bench_simulation`) compares the grid with, besides
its hand-written numba loop: vectorbt, backtesting.py and the original service's pandas
iterrows loop. Each run includes the preparation every engine makes (`sim_data.prepare`)
and is timed as the median of `repeat` runs after a warm-up; `repeat` 0 runs an engine
once, untimed (for its memory).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sim_data import (
    BOT_LIMIT,
    CASH,
    DELAY,
    FEE,
    VOL_MEDIAN,
    VOL_WINDOW,
    Z_LIMIT,
    Z_WINDOW,
    combo_table,
    grid_spec,
    prepare,
    signals,
)


def timed(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(median seconds of `repeat` runs after a warm-up, the last result)."""
    if repeat == 0:
        return math.nan, run()
    result, seconds = run(), []
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - began)
    return float(np.median(seconds)), result


def run_vectorbt(data: tuple, repeat: int) -> dict:
    import vectorbt as vbt

    bars, pred, _, _ = data
    combos = combo_table(grid_spec())
    # UTC times without the zone: vectorbt turns a zoned index into Timestamp objects
    # several times per call (seconds at 100,000 bars)
    close = pd.Series(bars["close"].to_numpy(), index=bars["ts"].dt.tz_localize(None))

    def once() -> dict:
        shared = prepare(*data)
        buy, sell = signals(shared, pred, combos)
        entries = pd.DataFrame(np.roll(buy, DELAY, axis=0), index=close.index)
        exits = pd.DataFrame(np.roll(sell, DELAY, axis=0), index=close.index)
        entries.iloc[:DELAY], exits.iloc[:DELAY] = False, False
        portfolio = vbt.Portfolio.from_signals(
            close, entries, exits, price=pd.Series(shared["fill_px"], index=close.index),
            fixed_fees=FEE, init_cash=CASH, freq="1min",
        )  # fmt: skip
        # drawdown and Sharpe from the returns accessor: the portfolio's own methods also
        # build a benchmark portfolio, several times slower
        returns = portfolio.returns().vbt.returns(freq="1min")
        closed = portfolio.trades.closed
        stats = {
            "final_equity": portfolio.final_value(),
            "max_drawdown": -returns.max_drawdown(),
            "sharpe": returns.sharpe_ratio(),
            "trades": closed.count(),
            "win_rate": closed.win_rate(),
            "profit_factor": closed.profit_factor(),
            "expectancy": closed.expectancy(),
            "sqn": closed.sqn(),
        }
        return {name: values.to_numpy().tolist() for name, values in stats.items()}

    seconds, stats = timed(once, repeat)
    return {"seconds": seconds, "stats": stats}


def _signal_strategy(
    base: type, buys: np.ndarray, sells: np.ndarray, fill_px: np.ndarray, unit: float
) -> type:
    """A backtesting.py Strategy trading precomputed signals `DELAY` bars late."""

    class Signals(base):  # type: ignore[misc, valid-type]
        def init(self) -> None:
            pass

        def next(self) -> None:
            s = len(self.data) - DELAY  # an order placed now fills at the next bar's open
            if s < 0:
                return
            if buys[s] and not self.position:
                self.buy(size=int((self.equity - FEE) / (fill_px[s + DELAY] * unit)))
            elif sells[s] and self.position:
                self.position.close()

    return Signals


def run_backtesting(data: tuple, combos_run: int, repeat: int) -> dict:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    bars, pred, _, _ = data
    combos = combo_table(grid_spec())
    chosen = np.linspace(0, len(combos) - 1, combos_run).round().astype(int)
    unit = 1e-8

    def once(chosen: np.ndarray) -> dict:
        shared = prepare(*data)
        buy, sell = signals(shared, pred, combos)
        fill_px = shared["fill_px"]
        frame = pd.DataFrame(
            {"Open": fill_px, "Close": bars["close"].to_numpy(), "Volume": 1.0},
            index=bars["ts"].dt.tz_localize(None),
        )
        frame["High"] = np.fmax(bars["high"].to_numpy(), frame[["Open", "Close"]].max(axis=1))
        frame["Low"] = np.fmin(bars["low"].to_numpy(), frame[["Open", "Close"]].min(axis=1))
        prepared, results = time.perf_counter(), {}
        for c in chosen:
            strategy = _signal_strategy(Strategy, buy[:, c], sell[:, c], fill_px, unit)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                test = FractionalBacktest(
                    frame, strategy, cash=CASH, commission=(FEE, 0.0), fractional_unit=unit
                )
                stats = test.run()
            results[int(c)] = (float(stats["Equity Final [$]"]), int(stats["# Trades"]))
        return {"runs_seconds": time.perf_counter() - prepared, "results": results}

    if repeat == 0:
        return {"results": once(chosen)["results"]}
    once(chosen[:1])  # warm-up: one combination
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        out = once(chosen)
        total = time.perf_counter() - began
        seconds.append(total + out["runs_seconds"] * (len(combos) / len(chosen) - 1))
    return {"seconds": float(np.median(seconds)), "results": out["results"],
            "combos_run": len(chosen)}  # fmt: skip


def run_iterrows(data: tuple, bars_run: int, repeat: int) -> dict:
    """The original's shape: pandas rolling columns, then one iterrows loop per combination."""
    bars, pred, regimes, proba = data
    params = grid_spec().combinations()[-1]  # 0.002, z-score, volnorm, gmm whitelist, bot
    frame = bars.iloc[:bars_run].copy()
    frame["pred"] = pred[:bars_run]
    past = frame["pred"].shift(1).rolling(Z_WINDOW, min_periods=2)
    frame["z"] = (frame["pred"] - past.mean()) / past.std(ddof=0)
    frame.loc[frame.index < Z_WINDOW, "z"] = np.nan
    vol = frame["close"].pct_change().rolling(VOL_WINDOW).std(ddof=0)
    frame["scale"] = (vol / vol.rolling(VOL_MEDIAN).median()).fillna(1.0)
    frame["mid"] = ((frame["high"] + frame["low"]) / 2).fillna(frame["close"])
    frame["regime"] = regimes["gmm"][:bars_run]
    frame["proba"] = proba[:bars_run]

    def once() -> float:
        cash, shares, long, pending = CASH, 0.0, False, []
        for i, row in frame.iterrows():
            for order in [o for o in pending if o[0] + DELAY == i]:
                pending.remove(order)
                if order[1] > 0:
                    shares = (cash - FEE) / row["mid"]
                    cash -= shares * row["mid"] + FEE
                else:
                    cash += shares * row["mid"] - FEE
                    shares = 0.0
            threshold = params.threshold * row["scale"]
            buy, sell = row["pred"] > threshold, row["pred"] <= -threshold
            if abs(row["z"]) > Z_LIMIT:
                buy = sell = False
            if not row["proba"] > BOT_LIMIT:
                buy = False
            if row["regime"] not in params.regime.allowed:
                buy, sell = False, True
            if buy and not long:
                pending.append((i, 1))
                long = True
            elif sell and long:
                pending.append((i, -1))
                long = False
        return cash + shares * frame["close"].iloc[-1]

    seconds, final = timed(once, repeat)
    return {"seconds": seconds * len(bars) / bars_run * 96, "one_seconds": seconds,
            "final": final, "bars_run": bars_run, "bars": len(bars)}  # fmt: skip
