"""Simulation benchmark: one prediction series, a 96-combination grid, five engines, two
datasets.

Run: ``uv run python benchmarks/bench_simulation.py`` (``--datasets base,heavy``, ``--bars``,
``--repeat``, ``--bt-combos``, ``--bt-repeat``, ``--iterrows-bars``, ``--skip
vectorbt,backtesting,iterrows,compile``). Prints one line per figure: ``name value unit
(params)``, each name prefixed by its dataset.

Data, grid and shared preparation: `sim_data` (``base``: median ~440 closed trades per
combination; ``heavy``: median ~7,300, up to ~24,000). The numba loop is here, the other
engines in `sim_engines`.

Method. Every engine is timed as the median of --repeat runs after one warm-up run, and
every engine's timed run includes the same preparation made by the same code
(`sim_data.prepare`: our z-score and volatility-scale kernels, regime and bot masks, fill
prices, calendar); `prep_seconds` is that preparation alone. The grid and the numba loop,
whose ratio is the goal, are timed in one process, taking turns over 2 x --repeat rounds
(they are quick), so that the load of a shared machine weighs on both alike. Every
engine's memory is the absolute peak RSS of a process of its own that ran it once
(interpreter, imports, data and work; numba caches warm): vectorbt keeps results from run
to run, so a process that ran it repeatedly would overstate it.
- grid: `simulate_grid` with the random baseline (8 draws), and without it (`grid_core`:
  what the numba loop computes too); plus the numba compile, once, cold.
- numba_loop: the strategy as a plainly hand-written numba loop over combinations and bars
  that computes what grid_core reports: final equity, fills, fees, drawdown, exposure, the
  closed trades' net returns and their metrics, daily Sharpe and Sortino, weekly
  consistency (`metrics.summary`, the definitions), buy-and-hold and the hit rate; every
  metric is compared with the grid's.
- vectorbt: `Portfolio.from_signals`, all 96 combinations in one call (signals shifted by
  the delay, executed at the fill price, fractional sizes), with its trade statistics
  (closed trades, win rate, profit factor, expectancy, SQN), max drawdown and Sharpe.
- backtesting: backtesting.py's `FractionalBacktest` (its statistics come with every run),
  --bt-combos combinations spread over the grid, scaled to 96; the median of --bt-repeat
  runs after a one-combination warm-up (a minute or more each).
- iterrows: a pandas `iterrows` loop like the original service's, one combination over
  --iterrows-bars bars, scaled to 96 combinations of the full series (at most 3 runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numba as nb
import numpy as np
from sim_data import CASH, DATASETS, DELAY, FEE, combo_table, grid_spec, make_data, prepare
from sim_engines import run_backtesting, run_iterrows, run_vectorbt

from stock_assets.core import metrics
from stock_assets.core import simulation as sim

LOOP_METRICS = (
    "final_equity", "trades", "fills", "fees_paid", "max_drawdown", "exposure", "sharpe",
    "sortino", "win_rate", "profit_factor", "sqn", "sqn_100", "expectancy", "weekly_consistency",
)  # fmt: skip


# --- the hand-written numba loop -----------------------------------------------------


@nb.njit(cache=True)
def _numba_loop(pred, close, fill_px, outlier, scale, regime_ok, bot_ok, combos, day_end, bar_week):
    """One row of LOOP_METRICS per combination. Every order fills DELAY bars later at a
    positive price with fractional shares and none is left pending at the end (the data's
    quiet tail), so the loop need not handle cancelled buys or fills past the end."""
    n, k = close.shape[0], combos.shape[0]
    out = np.empty((k, 14))
    orders = np.zeros(n, dtype=np.int8)
    returns = np.empty(n // 2 + 1)
    eod = np.empty(day_end.shape[0])
    weeks = np.zeros(bar_week[n - 1] + 1)
    for c in range(k):
        threshold, use_z, use_vol = combos[c, 0], combos[c, 1] > 0, combos[c, 2] > 0
        regime, use_bot = int(combos[c, 3]), combos[c, 4] > 0
        cash, shares, long = CASH, 0.0, False
        entry, trades, fills, fees = 0.0, 0, 0, 0.0
        peak, max_dd, exposed, day = CASH, 0.0, 0, 0
        weeks[:] = 0.0
        for j in range(n):
            if j >= DELAY and orders[j - DELAY] != 0:
                price = fill_px[j]
                if orders[j - DELAY] > 0:
                    shares = (cash - FEE) / price
                    cash = cash - shares * price - FEE
                    entry = shares * price + FEE
                else:
                    returns[trades] = (shares * price - FEE) / entry - 1.0
                    weeks[bar_week[j]] += 1.0
                    trades += 1
                    cash = cash + shares * price - FEE
                    shares = 0.0
                fills += 1
                fees += FEE
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
            equity = cash + shares * close[j]
            peak = max(peak, equity)
            max_dd = max(max_dd, 1.0 - equity / peak)
            exposed += shares > 0.0
            if j == day_end[day]:
                eod[day] = equity
                day += 1
        summary = metrics.summary(eod, CASH, returns[:trades], weeks)
        out[c, 0], out[c, 1], out[c, 2] = cash + shares * close[n - 1], trades, fills
        out[c, 3], out[c, 4], out[c, 5] = fees, max_dd, exposed / n
        for m in range(8):
            out[c, 6 + m] = summary[m]
    return out


def _loop_outputs(data: tuple, shared: dict, combos: np.ndarray) -> dict:
    """Every combination's LOOP_METRICS, buy-and-hold's return and the hit rate."""
    bars, pred, _, _ = data
    close = bars["close"].to_numpy()
    arrays = tuple(shared[k] for k in ("fill_px", "outlier", "scale", "regime_ok", "bot_ok"))
    calendar = (shared["day_end"], shared["bar_week"])
    table = _numba_loop(pred, close, *arrays, combos, *calendar)
    always = np.ones_like(pred)  # buy at the first bar, never sell: no filter (row 0, regime none)
    held = _numba_loop(always, close, *arrays, np.zeros((1, 5)), *calendar)[0, 0]
    hits = metrics.direction_hits(pred, metrics.next_bar_moves(close), "regressor")
    return {
        "table": table,
        "buy_hold_return": held / CASH - 1.0,
        "hit_rate": metrics.hit_rate(hits),
    }


# --- engines -------------------------------------------------------------------------


def run_pair(data: tuple, repeat: int) -> dict:
    """grid, grid_core, the numba loop (with and without the preparation) and the
    preparation alone, taking turns: the medians of `repeat` rounds after a warm-up round."""
    bars, pred, regimes, proba = data
    grids = {name: grid_spec(draws) for name, draws in (("grid", 8), ("grid_core", 0))}
    combos = combo_table(grids["grid"])
    shared = prepare(*data)
    runs: dict[str, Callable[[], object]] = {
        **{
            name: lambda grid=grid: sim.simulate_grid(
                bars, pred, grid, regimes=regimes, bot_proba=proba
            )
            for name, grid in grids.items()
        },
        "loop": lambda: _loop_outputs(data, prepare(*data), combos),
        "loop_kernel": lambda: _loop_outputs(data, shared, combos),
        "prep": lambda: prepare(*data),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    results = {name: run() for name, run in runs.items()}
    for _ in range(repeat):
        for name, run in runs.items():
            began = time.perf_counter()
            results[name] = run()
            seconds[name].append(time.perf_counter() - began)
    table, loop = results["grid_core"].table(), results["loop"]  # type: ignore[union-attr]
    return {
        **{f"{name}_seconds": float(np.median(times)) for name, times in seconds.items()},
        "table": {m: table[m].tolist() for m in LOOP_METRICS},
        "extras": [float(table["buy_hold_return"][0]), float(table["hit_rate"][0])],
        "loop_table": loop["table"].T.tolist(),
        "loop_extras": [loop["buy_hold_return"], loop["hit_rate"]],
    }


def run_grid_once(data: tuple) -> dict:
    bars, pred, regimes, proba = data
    sim.simulate_grid(bars, pred, grid_spec(), regimes=regimes, bot_proba=proba)
    return {}


def run_loop_once(data: tuple) -> dict:
    _loop_outputs(data, prepare(*data), combo_table(grid_spec()))
    return {}


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


# --- driver --------------------------------------------------------------------------


def child(engine: str, args: argparse.Namespace) -> None:
    """Run one engine and print its figures as JSON; with --memory, once and untimed."""
    data = make_data(args.bars, args.datasets)
    repeat, bt_repeat = (0, 0) if args.memory else (args.repeat, args.bt_repeat)
    runners: dict[str, Callable[[], dict]] = {
        "pair": lambda: run_pair(data, 2 * args.repeat),
        "grid": lambda: run_grid_once(data),
        "numba_loop": lambda: run_loop_once(data),
        "compile": lambda: run_compile(data),
        "vectorbt": lambda: run_vectorbt(data, repeat),
        "backtesting": lambda: run_backtesting(data, args.bt_combos, bt_repeat),
        "iterrows": lambda: run_iterrows(data, args.iterrows_bars, min(repeat, 3)),
    }
    out = runners[engine]()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def spawn(
    engine: str,
    dataset: str,
    args: argparse.Namespace,
    env: dict | None = None,
    memory: bool = False,
) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--datasets", dataset,
               *(["--memory"] if memory else []),
               "--bars", str(args.bars), "--repeat", str(args.repeat),
               "--bt-combos", str(args.bt_combos), "--bt-repeat", str(args.bt_repeat),
               "--iterrows-bars", str(args.iterrows_bars)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"{dataset}.{engine}_error 1 flag ({done.stderr.strip().splitlines()[-1:]})")
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bt-combos", type=int, default=8)
    parser.add_argument("--bt-repeat", type=int, default=3)
    parser.add_argument("--iterrows-bars", type=int, default=20_000)
    parser.add_argument("--skip", default="")
    parser.add_argument("--child", default="")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    skip = set(filter(None, args.skip.split(",")))
    if "compile" not in skip:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            cold = spawn("compile", args.datasets.split(",")[0], args, env=env)
        if cold:
            _line("grid_numba_compile", f"{cold['seconds']:.2f}", "s", "first call, empty cache")
    for dataset in args.datasets.split(","):
        report(dataset, args, skip)


def _line(name: str, value: str, unit: str, params: str) -> None:
    print(f"{name} {value} {unit} ({params})", flush=True)


def _max_rel_diff(ours: object, theirs: object) -> float:
    """Largest relative difference; equal NaNs and equal infinities count as 0."""
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b) / np.maximum(np.abs(a), 1e-300))
    return float(np.max(diff, initial=0.0))


def report(dataset: str, args: argparse.Namespace, skip: set[str]) -> None:
    setup = f"{dataset}, {args.bars} bars, 96 combos, delay {DELAY} midpoint, ${FEE}/fill"
    median = f"median of {2 * args.repeat} after a warm-up"
    pair = spawn("pair", dataset, args)
    if not pair:
        return

    def line(name: str, *rest: str) -> None:
        _line(f"{dataset}.{name}", *rest)

    trades = np.array(pair["table"]["trades"])
    line("trades_median", f"{np.median(trades):.0f}", "trades", "closed, per combination")
    line("trades_max", f"{trades.max()}", "trades", "closed, per combination")
    core, loop, prep = (pair[f"{k}_seconds"] for k in ("grid_core", "loop", "prep"))
    line("grid_seconds", f"{pair['grid_seconds']:.3f}", "s", f"{setup}, random baseline, {median}")
    line("grid_core_seconds", f"{core:.3f}", "s", f"{setup}, no random baseline, {median}")
    line("numba_loop_seconds", f"{loop:.3f}", "s", f"prep + loop, {median}, turns with grid")
    kernel = pair["loop_kernel_seconds"]
    line("numba_loop_kernel_seconds", f"{kernel:.3f}", "s", f"loop given the prep, {median}")
    line("prep_seconds", f"{prep:.3f}", "s", f"filters, fill prices, calendar, {median}")
    ours = np.array([pair["table"][m] for m in LOOP_METRICS])
    diff = max(
        _max_rel_diff(ours, pair["loop_table"]), _max_rel_diff(pair["extras"], pair["loop_extras"])
    )
    every = f"all {len(LOOP_METRICS) + 2} metrics x 96 combos vs grid_core"
    line("numba_loop_max_rel_diff", f"{diff:.1e}", "ratio", every)
    line("grid_core_vs_numba_loop", f"{core / loop:.2f}", "x", "grid_core s / loop s, goal <= 2")
    ratio = f"{(core - prep) / kernel:.2f}"
    line("grid_core_vs_numba_loop_no_prep", ratio, "x", "(grid_core s - prep s) / loop kernel s")
    ratio = f"{pair['grid_seconds'] / loop:.2f}"
    line("grid_vs_numba_loop", ratio, "x", "grid s (with random baseline) / loop s")
    for engine in ("grid", "numba_loop", "vectorbt", "backtesting", "iterrows"):
        if engine in skip:
            continue
        out = spawn(engine, dataset, args) if engine in _SETUPS else {}
        if out:
            line(f"{engine}_seconds", f"{out['seconds']:.3f}", "s", _SETUPS[engine](args, out))
            ratio = f"{out['seconds'] / core:.1f}"
            line(f"{engine}_vs_grid_core", ratio, "x", f"{engine} s / grid_core s")
            for name, value, unit, what in _AGREEMENT[engine](pair["table"], out):
                line(f"{engine}_{name}", value, unit, what)
        once = spawn(engine, dataset, args, memory=True)
        if once:
            what = "absolute peak RSS of a process that ran it once"
            line(f"{engine}_peak_memory", f"{once['peak_mb']:.0f}", "MB", what)


def _vectorbt_agreement(table: dict, out: dict) -> list[tuple[str, str, str, str]]:
    stats = out["stats"]
    trades = int(np.sum(np.array(stats["trades"]) != np.array(table["trades"])))
    return [
        ("max_rel_diff", f"{_max_rel_diff(table['final_equity'], stats['final_equity']):.1e}",
         "ratio", "final equity vs grid, 96 combos"),
        ("trade_count_mismatches", str(trades), "combos", "closed trades vs grid"),
        ("win_rate_max_rel_diff", f"{_max_rel_diff(table['win_rate'], stats['win_rate']):.1e}",
         "ratio", "vs grid"),
        ("max_drawdown_max_rel_diff",
         f"{_max_rel_diff(table['max_drawdown'], stats['max_drawdown']):.1e}", "ratio", "vs grid"),
    ]  # fmt: skip


def _backtesting_agreement(table: dict, out: dict) -> list[tuple[str, str, str, str]]:
    results = {int(c): v for c, v in out["results"].items()}
    finals = [table["final_equity"][c] for c in results]
    closed = [table["trades"][c] for c in results]
    diff = _max_rel_diff(finals, [v[0] for v in results.values()])
    trades = int(np.sum(np.array(closed) != np.array([v[1] for v in results.values()])))
    what = f"{len(results)} combos"
    return [
        ("max_rel_diff", f"{diff:.1e}", "ratio", f"final equity vs grid, {what}"),
        ("trade_count_mismatches", str(trades), "combos", f"closed trades vs grid, {what}"),
    ]


def _iterrows_agreement(table: dict, out: dict) -> list[tuple[str, str, str, str]]:
    if out["bars_run"] < out["bars"]:
        return []
    diff = f"{_max_rel_diff(table['final_equity'][-1], out['final']):.1e}"
    return [("max_rel_diff", diff, "ratio", "final equity vs grid, 1 combo")]


_AGREEMENT = {
    "vectorbt": _vectorbt_agreement,
    "backtesting": _backtesting_agreement,
    "iterrows": _iterrows_agreement,
}
_SETUPS: dict[str, Callable[[argparse.Namespace, dict], str]] = {
    "vectorbt": lambda a, o: (
        f"prep + signals + one from_signals over 96 columns + stats, "
        f"median of {a.repeat} after a warm-up"
    ),
    "backtesting": lambda a, o: (
        f"prep + {o['combos_run']} runs of FractionalBacktest"
        + ("" if o["combos_run"] == 96 else " scaled to 96")
        + f", median of {a.bt_repeat} after a warm-up"
    ),
    "iterrows": lambda a, o: (
        f"1 combo over {o['bars_run']} bars took {o['one_seconds']:.2f} s, scaled to 96 x bars"
    ),
}


if __name__ == "__main__":
    main()
