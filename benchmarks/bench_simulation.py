"""Simulation benchmark: one prediction series, a 96-combination grid, five engines.

Run: ``uv run python benchmarks/bench_simulation.py`` (``--bars``, ``--repeat``,
``--bt-combos``, ``--iterrows-bars``, ``--skip vectorbt,backtesting,iterrows``). Prints one
line per figure: ``name value unit (params)``.

Data: a seeded random walk of 1-minute bars over weekday sessions 09:30-16:00 ET (U-shaped
intraday volatility, persistent daily volatility, overnight gaps, 0.3% missing minutes,
0.1% bars without a high so midpoints fall back to the close; holidays are not skipped),
a prediction that is a noisy view of the next 5 minutes, two persistent regime columns and
a bot probability. Grid: 4 thresholds x z-score on/off x volatility normalization on/off x
3 regime whitelists x bot on/off = 96 combinations, fill 4 bars later at the midpoint,
$0.02 per fill, fractional shares (so every engine can be compared).

Every engine runs in its own process (peak memory is that process's peak RSS over what it
held before the timed call):
- grid: `simulate_grid`, best of --repeat warm runs, with the random baseline (8 draws)
  and without it (`grid_core`, the same work as the numba loop), plus the numba compile.
- numba_loop: a plainly hand-written numba loop over combinations and bars of the same
  strategy (filters prepared by simple numba loops), the practical ceiling.
- vectorbt: `Portfolio.from_signals`, all 96 combinations in one call (signals shifted by
  the delay, executed at the fill price, fractional sizes).
- backtesting: backtesting.py's `FractionalBacktest`, one run per combination (all 96 by
  default, about a minute; --bt-combos N runs N of them and scales to 96).
- iterrows: a pandas `iterrows` loop like the original service's, one combination over
  --iterrows-bars bars, scaled to 96 combinations of the full series.
Final equities of every engine are compared with the grid's (largest relative difference).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numba as nb
import numpy as np
import pandas as pd

from stock_assets.core import sim_kernels
from stock_assets.core import simulation as sim

DELAY, FEE = 4, 0.02
THRESHOLDS = (0.0001, 0.0005, 0.001, 0.002)
Z_WINDOW, Z_LIMIT, VOL_WINDOW, VOL_MEDIAN = 100, 3.0, 30, 390
REGIMES = (None, sim.RegimeFilter("vix", (2, 3)), sim.RegimeFilter("gmm", (0,)))
QUIET_TAIL = 10  # no order in the last bars, so no engine has to fill past the end


def make_data(n: int, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray, dict, np.ndarray]:
    """Bars, prediction, regimes and bot probability (see the module docstring)."""
    rng = np.random.default_rng(seed)
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
    bars = pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close})
    forward = np.log(np.concatenate((close[5:], np.full(5, close[-1]))) / close)
    noise = np.zeros(n)
    shocks = rng.normal(0, 0.0003, n)
    for i in range(1, n):
        noise[i] = 0.95 * noise[i - 1] + shocks[i]
    pred = 0.02 * forward + noise  # a weak edge: hit rate about 51%
    pred[-QUIET_TAIL:] = np.nan
    vix = _markov(rng, n, 4, 1 / 200)
    gmm = _markov(rng, n, 2, 1 / 800)
    vix[-QUIET_TAIL:], gmm[-QUIET_TAIL:] = 3, 0
    proba = 0.55 + 0.15 * np.tanh(np.cumsum(rng.normal(0, 0.05, n)) % 4 - 2)
    return bars, pred, {"vix": vix, "gmm": gmm}, proba


def _markov(rng: np.random.Generator, n: int, states: int, switch: float) -> np.ndarray:
    changes = rng.random(n) < switch
    return np.cumsum(changes * rng.integers(1, states, n)) % states


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
        fills=(sim.FILL_REALISTIC,),
        fee_per_trade=FEE,
        fractional=True,
        random_draws=random_draws,
    )


# --- the hand-written numba loop (and the filter prep every other engine shares) -----


@nb.njit(cache=True)
def _prep(pred, close, high, low, z_window, z_limit, vol_window, median_window):
    n = close.shape[0]
    outlier = np.zeros(n, dtype=np.bool_)
    for i in range(z_window, n):
        window = pred[i - z_window : i]
        finite = window[np.isfinite(window)]
        if finite.size >= 2 and np.isfinite(pred[i]):
            mean, std = finite.mean(), finite.std()
            if std > 1e-12 * abs(mean):
                outlier[i] = abs(pred[i] - mean) / std > z_limit
    returns = np.full(n, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1.0
    vol = np.full(n, np.nan)
    for i in range(vol_window, n):
        vol[i] = returns[i - vol_window + 1 : i + 1].std()
    scale = np.ones(n)
    for i in range(vol_window + median_window - 1, n):
        med = np.median(vol[i - median_window + 1 : i + 1])
        if med > 0:
            scale[i] = vol[i] / med
    mid = (high + low) / 2.0
    fill_px = np.where(np.isfinite(mid) & (mid > 0), mid, close)
    return outlier, scale, fill_px


@nb.njit(cache=True)
def _numba_loop(pred, close, fill_px, outlier, scale, regime_ok, bot_ok, combos, delay, fee, cash0):
    """combos rows: threshold, zscore, volnorm, regime index, bot. Returns final equities."""
    n, k = close.shape[0], combos.shape[0]
    finals, fills = np.empty(k), np.zeros(k, dtype=np.int64)
    orders = np.zeros(n, dtype=np.int8)
    for c in range(k):
        threshold, use_z, use_vol = combos[c, 0], combos[c, 1] > 0, combos[c, 2] > 0
        regime, use_bot = int(combos[c, 3]), combos[c, 4] > 0
        cash, shares, long = cash0, 0.0, False
        for j in range(n):
            if j >= delay and orders[j - delay] != 0:
                price = fill_px[j]
                if orders[j - delay] > 0:
                    shares = (cash - fee) / price
                    cash = cash - shares * price - fee
                else:
                    cash = cash + shares * price - fee
                    shares = 0.0
                fills[c] += 1
            t = threshold * scale[j] if use_vol else threshold
            buy, sell = pred[j] > t, pred[j] <= -t
            if use_z and outlier[j]:
                buy = sell = False
            if use_bot and not bot_ok[j]:
                buy = False
            if not regime_ok[regime, j]:
                buy, sell = False, True
            orders[j] = 0
            if buy and not long:
                orders[j], long = 1, True
            elif sell and long:
                orders[j], long = -1, False
        finals[c] = cash + shares * close[n - 1]
    return finals, fills


def _combo_table(grid: sim.SimGrid) -> np.ndarray:
    rows = [
        (p.threshold, p.zscore, p.volnorm, REGIMES.index(p.regime), p.bot)
        for p in grid.combinations()
    ]
    return np.array(rows, dtype=np.float64)


def _shared(bars: pd.DataFrame, pred: np.ndarray, regimes: dict, proba: np.ndarray) -> dict:
    outlier, scale, fill_px = _prep(
        pred, bars["close"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy(),
        Z_WINDOW, Z_LIMIT, VOL_WINDOW, VOL_MEDIAN,
    )  # fmt: skip
    regime_ok = np.ones((len(REGIMES), len(pred)), dtype=np.bool_)
    for r, flt in enumerate(REGIMES):
        if flt is not None:
            regime_ok[r] = np.isin(regimes[flt.column], flt.allowed)
    return {"outlier": outlier, "scale": scale, "fill_px": fill_px, "regime_ok": regime_ok,
            "bot_ok": proba > 0.55}  # fmt: skip


def _signals(shared: dict, pred: np.ndarray, combos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


# --- engines -------------------------------------------------------------------------


def run_grid(data: tuple, repeat: int) -> dict:
    bars, pred, regimes, proba = data
    timings = {}
    for name, draws in (("grid", 8), ("grid_core", 0)):
        grid = grid_spec(draws)
        best = math.inf
        for _ in range(repeat):
            began = time.perf_counter()
            result = sim.simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=proba)
            best = min(best, time.perf_counter() - began)
        timings[name] = best
    began = time.perf_counter()  # the shared filters on their own (private, for the split)
    sim_kernels._zscore_outliers(pred, Z_WINDOW, Z_LIMIT)
    sim_kernels._vol_scale(bars["close"].to_numpy(), VOL_WINDOW, VOL_MEDIAN)
    timings["prep"] = time.perf_counter() - began
    finals = [r.metrics["final_equity"] for r in result.runs]
    trades = [r.metrics["trades"] for r in result.runs]
    return {"seconds": timings["grid"], "core_seconds": timings["grid_core"], "finals": finals,
            "prep_seconds": timings["prep"],
            "median_trades": float(np.median(trades))}  # fmt: skip


def run_compile(data: tuple) -> dict:
    """First call in a process whose numba cache is empty, minus a warm call."""
    bars, pred, regimes, proba = data
    grid = grid_spec()
    began = time.perf_counter()
    sim.simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=proba)
    first = time.perf_counter() - began
    began = time.perf_counter()
    sim.simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=proba)
    return {"seconds": first - (time.perf_counter() - began)}


def _loop_args(shared: dict) -> tuple:
    """The prepared per-bar arrays the hand-written loop takes, in its argument order."""
    return tuple(shared[k] for k in ("fill_px", "outlier", "scale", "regime_ok", "bot_ok"))


def run_numba_loop(data: tuple, repeat: int) -> dict:
    bars, pred, regimes, proba = data
    combos = _combo_table(grid_spec())
    close = bars["close"].to_numpy()
    shared = _shared(bars, pred, regimes, proba)  # compiles both
    args = _loop_args(shared)
    _numba_loop(pred, close, *args, combos, DELAY, FEE, 10_000.0)
    best = best_total = math.inf
    for _ in range(repeat):
        began = time.perf_counter()
        shared = _shared(bars, pred, regimes, proba)
        prepared = time.perf_counter()
        args = _loop_args(shared)
        finals, _ = _numba_loop(pred, close, *args, combos, DELAY, FEE, 10_000.0)
        done = time.perf_counter()
        best, best_total = min(best, done - prepared), min(best_total, done - began)
    return {"seconds": best, "total_seconds": best_total, "finals": finals.tolist()}


def run_vectorbt(data: tuple, repeat: int) -> dict:
    import vectorbt as vbt

    bars, pred, regimes, proba = data
    combos = _combo_table(grid_spec())
    close = pd.Series(bars["close"].to_numpy(), index=bars["ts"])
    best = math.inf
    for _ in range(min(repeat, 2)):
        began = time.perf_counter()
        shared = _shared(bars, pred, regimes, proba)
        buy, sell = _signals(shared, pred, combos)
        entries = pd.DataFrame(np.roll(buy, DELAY, axis=0), index=close.index)
        exits = pd.DataFrame(np.roll(sell, DELAY, axis=0), index=close.index)
        entries.iloc[:DELAY], exits.iloc[:DELAY] = False, False
        portfolio = vbt.Portfolio.from_signals(
            close, entries, exits, price=pd.Series(shared["fill_px"], index=close.index),
            fixed_fees=FEE, init_cash=10_000.0, freq="1min",
        )  # fmt: skip
        finals = portfolio.final_value()
        best = min(best, time.perf_counter() - began)
    return {"seconds": best, "finals": finals.to_numpy().tolist()}


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


def run_backtesting(data: tuple, combos_run: int) -> dict:
    import warnings

    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    bars, pred, regimes, proba = data
    combos = _combo_table(grid_spec())
    chosen = np.linspace(0, len(combos) - 1, combos_run).round().astype(int)
    shared = _shared(bars, pred, regimes, proba)
    buy, sell = _signals(shared, pred, combos)
    fill_px, unit = shared["fill_px"], 1e-8
    frame = pd.DataFrame(
        {"Open": fill_px, "Close": bars["close"].to_numpy(), "Volume": 1.0},
        index=bars["ts"].dt.tz_localize(None),
    )
    frame["High"] = np.fmax(bars["high"].to_numpy(), frame[["Open", "Close"]].max(axis=1))
    frame["Low"] = np.fmin(bars["low"].to_numpy(), frame[["Open", "Close"]].min(axis=1))
    finals, began = {}, time.perf_counter()
    for c in chosen:
        strategy = _signal_strategy(Strategy, buy[:, c], sell[:, c], fill_px, unit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = FractionalBacktest(
                frame, strategy, cash=10_000.0, commission=(FEE, 0.0), fractional_unit=unit
            )
            finals[int(c)] = float(test.run()["Equity Final [$]"])
    seconds = (time.perf_counter() - began) / len(chosen) * len(combos)
    return {"seconds": seconds, "finals": finals, "combos_run": len(chosen)}


def run_iterrows(data: tuple, bars_run: int) -> dict:
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
    began = time.perf_counter()
    cash, shares, long, pending = 10_000.0, 0.0, False, []
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
        if not row["proba"] > 0.55:
            buy = False
        if row["regime"] not in params.regime.allowed:
            buy, sell = False, True
        if buy and not long:
            pending.append((i, 1))
            long = True
        elif sell and long:
            pending.append((i, -1))
            long = False
    seconds = time.perf_counter() - began
    final = cash + shares * frame["close"].iloc[-1]
    return {"seconds": seconds * len(bars) / bars_run * 96, "one_seconds": seconds, "final": final,
            "bars_run": bars_run}  # fmt: skip


# --- driver --------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def child(engine: str, args: argparse.Namespace) -> None:
    data = make_data(args.bars)
    runners: dict[str, Callable[[], dict]] = {
        "grid": lambda: run_grid(data, args.repeat),
        "compile": lambda: run_compile(data),
        "numba_loop": lambda: run_numba_loop(data, args.repeat),
        "vectorbt": lambda: run_vectorbt(data, args.repeat),
        "backtesting": lambda: run_backtesting(data, args.bt_combos),
        "iterrows": lambda: run_iterrows(data, args.iterrows_bars),
    }
    if engine == "vectorbt":
        import vectorbt  # noqa: F401  (loaded before the RSS baseline, so not counted)
    before = _rss_mb()
    out = runners[engine]()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    print(json.dumps(out))


def spawn(engine: str, args: argparse.Namespace, env: dict | None = None) -> dict | None:
    command = [sys.executable, __file__, "--child", engine, "--bars", str(args.bars),
               "--repeat", str(args.repeat), "--bt-combos", str(args.bt_combos),
               "--iterrows-bars", str(args.iterrows_bars)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"{engine}_error 1 flag ({done.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bt-combos", type=int, default=96)
    parser.add_argument("--iterrows-bars", type=int, default=100_000)
    parser.add_argument("--skip", default="")
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    skip = set(filter(None, args.skip.split(",")))
    report(args, skip)


def _line(name: str, value: str, unit: str, params: str) -> None:
    print(f"{name} {value} {unit} ({params})")


def report(args: argparse.Namespace, skip: set[str]) -> None:
    setup = f"{args.bars} bars, 96 combos, delay {DELAY} midpoint, ${FEE}/fill, fractional"
    grid = spawn("grid", args)
    with tempfile.TemporaryDirectory() as cache:
        cold = spawn("compile", args, env={**os.environ, "NUMBA_CACHE_DIR": cache})
    if grid is None:
        return
    ours, core, best = np.array(grid["finals"]), grid["core_seconds"], f"best of {args.repeat}"
    with_baseline = f"{setup}, random baseline 8 draws, {best}"
    _line("grid_seconds", f"{grid['seconds']:.3f}", "s", with_baseline)
    _line("grid_core_seconds", f"{core:.3f}", "s", f"{setup}, no random baseline, {best}")
    prep = "z-score + volatility scale, part of grid_core"
    _line("grid_filter_prep_seconds", f"{grid['prep_seconds']:.3f}", "s", prep)
    _line("grid_peak_memory", f"{grid['peak_mb']:.0f}", "MB", "peak RSS above the process before")
    _line("grid_median_trades", f"{grid['median_trades']:.0f}", "trades", "per combination")
    if cold:
        _line("grid_numba_compile", f"{cold['seconds']:.2f}", "s", "first call, empty numba cache")
    figures = {e: spawn(e, args) for e in ENGINES if e not in skip}
    for engine, out in figures.items():
        if not out:
            continue
        _line(f"{engine}_seconds", f"{out['seconds']:.3f}", "s", _SETUPS[engine](args, out))
        _line(f"{engine}_peak_memory", f"{out['peak_mb']:.0f}", "MB", "peak RSS above before")
        if engine == "backtesting":
            diffs = [abs(v / ours[int(c)] - 1) for c, v in out["finals"].items()]
        elif engine == "iterrows":
            diffs = [abs(out["final"] / ours[-1] - 1)] if out["bars_run"] == args.bars else []
        else:
            diffs = np.abs(np.array(out["finals"]) / ours - 1).tolist()
        if diffs:
            compared = f"final equity vs grid, {len(diffs)} combos"
            _line(f"{engine}_max_rel_diff", f"{max(diffs):.1e}", "ratio", compared)
        if engine != "numba_loop":
            ratio = f"{out['seconds'] / core:.1f}"
            _line(f"grid_core_speedup_vs_{engine}", ratio, "x", f"{engine} s / grid_core s")
    loop = figures.get("numba_loop")
    if loop:
        naive = "loop + its plainly written filter prep (np.median per window)"
        _line("numba_loop_total_seconds", f"{loop['total_seconds']:.3f}", "s", naive)
        ratio = f"{core / loop['seconds']:.2f}"
        _line("grid_core_vs_numba_loop", ratio, "x", "grid_core s / loop s (goal <= 2)")
        ratio = f"{(core - grid['prep_seconds']) / loop['seconds']:.2f}"
        _line("grid_core_without_prep_vs_numba_loop", ratio, "x", "both given prepared filters")
        ratio = f"{grid['seconds'] / loop['seconds']:.2f}"
        _line("grid_vs_numba_loop", ratio, "x", "grid s (with random baseline) / loop s")


ENGINES = ("numba_loop", "vectorbt", "backtesting", "iterrows")
_SETUPS: dict[str, Callable[[argparse.Namespace, dict], str]] = {
    "numba_loop": lambda a, o: "hand-written loop over 96 combos x bars, filters prepared apart",
    "vectorbt": lambda a, o: "one Portfolio.from_signals call over 96 columns, with signal prep",
    "backtesting": lambda a, o: (
        f"{o['combos_run']} runs of FractionalBacktest"
        + ("" if o["combos_run"] == 96 else ", scaled to 96")
    ),
    "iterrows": lambda a, o: (
        f"1 combo over {o['bars_run']} bars took {o['one_seconds']:.1f} s, scaled to 96 x {a.bars}"
    ),
}


if __name__ == "__main__":
    main()
