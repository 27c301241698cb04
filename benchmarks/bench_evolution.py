"""Evolution benchmark: the evolution job over a year of one symbol's minutes.

Run: ``uv run python benchmarks/bench_evolution.py`` (``--sessions``, ``--generations``,
``--candidates``, ``--algorithm``, ``--refit-every``, ``--shap-rows``).
Prints one line per figure: ``name value unit (params)``.

Data: the synthetic provider's SPY over ``--sessions`` sessions (252: about 98,000 rows),
``compute_features`` with QQQ and VIXY context and the market regimes, fold_30_5 labels,
stored in a fresh home's lake. The evolution job (default 4 generations x 5 candidates x
12 simulations: 4 thresholds x 3 regime whitelists x the realistic fill) then runs in its
own process on a fresh Dagster instance (SQLite), in process, as `stock-assets evolve`
runs it. Its peak RSS is that process's (imports, data, every step). Dagster's own
overhead is the run's wall time minus the time its steps spent in our code (the sum of
the step durations the event log records, the executor being sequential), reported apart.
The data is noise, so nothing is promoted and every generation runs unless pruning stops
the evolution first (the stop reason is printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLD = "fold_30_5"


def store_year(home: Path, sessions: int) -> int:
    """SPY features over the last `sessions` of 2024 in the home's lake; their row count."""
    from stock_assets.core import calendar, synthetic
    from stock_assets.core.features import compute_features
    from stock_assets.core.folds import label_folds
    from stock_assets.core.regimes import compute_regimes
    from stock_assets.storage.warehouse import Warehouse

    days = calendar.sessions(dt.date(2023, 1, 3), dt.date(2024, 12, 31))[-sessions:]
    bars = {
        s: synthetic.generate_range(s, days[0], days[-1], seed=0).assign(is_filled=False)
        for s in ("SPY", "QQQ", "VIXY")
    }
    regimes = compute_regimes(bars["QQQ"], bars["VIXY"])
    spy = compute_features(bars["SPY"], qqq=bars["QQQ"], vixy=bars["VIXY"], regimes=regimes)
    spy[FOLD] = label_folds(spy["ts"], 30, 5).to_numpy()
    Warehouse(home).store_features("SPY", spy, days)
    return len(spy)


def run_worker(config: dict) -> None:
    """Launch the evolution job in this process and print its figures."""
    import dagster as dg

    from stock_assets.jobs import launcher as launches
    from stock_assets.jobs.launcher import InProcessLauncher

    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    outcome = InProcessLauncher(instance).launch(launches.evolve(config))
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not outcome.success:
        print(f"failed {outcome.failure_reason()}")
        return
    starts, busy, kinds = {}, 0.0, {}
    for record in instance.all_logs(outcome.run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS,
                                  dg.DagsterEventType.STEP_FAILURE):  # fmt: skip
            seconds = record.timestamp - starts[event.step_key]
            busy += seconds
            kind = event.step_key.split(".")[-1].split("[")[0]
            kinds[kind] = kinds.get(kind, 0.0) + seconds
    from stock_assets.storage.warehouse import Warehouse

    catalog = Warehouse(os.environ["STOCK_ASSETS_HOME"]).catalog
    run = catalog.read("SELECT * FROM evolution_runs").iloc[0]
    log = catalog.read("SELECT * FROM evolution_log")
    shape = (f"{log['generation'].nunique()} generations x {config['candidates']} candidates "
             f"x {len(config['thresholds']) * len(config['regime_configs'])} simulations, "
             f"{config['algorithms'][0]}, refit_every {config['refit_every']}")  # fmt: skip
    print(f"evolution_wall {wall:.1f} s ({shape})")
    print(f"evolution_steps {busy:.1f} s (time in our code, summed over steps)")
    print(f"dagster_overhead {wall - busy:.1f} s ({100 * (wall - busy) / wall:.1f}% of wall)")
    for kind, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"steps_{kind} {seconds:.1f} s")
    print(f"peak_rss {peak_mb:.0f} MB (the run's process)")
    print(f"models_trained {int((~log['reused']).sum())} count (reused {int(log['reused'].sum())})")
    print(f"stop_reason {run['stop_reason']} ({run['reason'][:160]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--algorithm", default="xgboost_regressor")
    parser.add_argument("--refit-every", type=int, default=1)
    parser.add_argument("--shap-rows", type=int, default=1000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(json.loads(args.worker))
        return
    config = {
        "symbol": "SPY", "algorithms": [args.algorithm], "max_generations": args.generations,
        "candidates": args.candidates, "refit_every": args.refit_every,
        "shap_rows": args.shap_rows, "thresholds": [0.0, 0.0001, 0.0003, 0.0005],
        "regime_configs": ["", "regime_gmm=0", "regime_vix=0,1"], "fold": FOLD,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        rows = store_year(home, args.sessions)
        print(f"build_features {time.perf_counter() - started:.1f} s ({rows} rows, "
              f"{args.sessions} sessions, {os.cpu_count()} cores)")  # fmt: skip
        env = {**os.environ, "STOCK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
               "STOCK_ASSETS_LOG_LEVEL": "WARNING"}  # fmt: skip
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--worker", json.dumps(config)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        sys.stdout.write(done.stdout)
        if done.returncode:
            print(f"failed {done.returncode} exit ({done.stderr.strip()[-500:]})")


if __name__ == "__main__":
    main()
