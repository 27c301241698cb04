"""Training benchmark: fit, walk forward and explain each algorithm on a year of minutes.

Run: ``uv run python benchmarks/bench_training.py`` (``--sessions``, ``--algorithms``).
Prints one line per figure: ``name value unit (params)``.

Data: the synthetic provider's SPY over ``--sessions`` sessions (252: about 98,000 1-minute
rows), ``compute_features`` with QQQ and VIXY context, QQQ's own features joined as a context
ticker (about 65 model columns), fold_30_5 labels. Each algorithm runs in its own process
(its peak RSS is its own, data and imports included), with the project's defaults
(``--n-jobs``, default -1: all cores):

- fit: ``fit_pipeline`` on every usable train row (boosters include their early stopping)
- walk_forward: ``train_model(explain=False)``: one refit per test episode, plus the final fit
- explain: SHAP, permutation importance and coefficients on 2,000 test rows, and the PNG
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stock_assets.core import calendar, synthetic
from stock_assets.core.features import compute_features
from stock_assets.core.folds import label_folds

FOLD = "fold_30_5"


def feature_frames(sessions: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(SPY features with fold_30_5, QQQ features) over the last ``sessions`` of 2024."""
    days = calendar.sessions(dt.date(2023, 1, 3), dt.date(2024, 12, 31))[-sessions:]
    bars = {
        s: synthetic.generate_range(s, days[0], days[-1], seed=0).assign(is_filled=False)
        for s in ("SPY", "QQQ", "VIXY")
    }
    spy = compute_features(bars["SPY"], qqq=bars["QQQ"], vixy=bars["VIXY"])
    qqq = compute_features(bars["QQQ"], vixy=bars["VIXY"])
    spy[FOLD] = label_folds(spy["ts"], 30, 5).to_numpy()
    return spy, qqq


def run_worker(algorithm: str, data: Path, params: str, n_jobs: int) -> None:
    """One algorithm: print fit, walk_forward and explain seconds and the peak RSS. A
    positive n_jobs caps BLAS/OpenMP threads here too, as ``train_model`` does."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_jobs if n_jobs > 0 else None):
        _measure(algorithm, data, params, n_jobs)


def _measure(algorithm: str, data: Path, params: str, n_jobs: int) -> None:
    from stock_assets.core.datasets import build_dataset
    from stock_assets.core.importance import explain
    from stock_assets.core.training import ModelSpec, fit_pipeline, train_model

    spy, qqq = pd.read_parquet(data / "spy.parquet"), pd.read_parquet(data / "qqq.parquet")
    spec = ModelSpec(algorithm=algorithm, fold=FOLD, context=("QQQ",), n_jobs=n_jobs)
    dataset = build_dataset(spy, spec.dataset_spec(), {"QQQ": qqq})
    rows = np.flatnonzero(dataset.train_rows)
    columns = list(dataset.X.columns)
    started = time.perf_counter()
    pipe, _ = fit_pipeline(dataset.X.iloc[rows], dataset.y.iloc[rows], spec, columns)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    model = train_model(spy, spec, {"QQQ": qqq}, explain=False)
    walk_s = time.perf_counter() - started
    started = time.perf_counter()
    explain(pipe, dataset, columns, spec.kind, spec.seed, spec.shap_rows)
    explain_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shape = f"{len(rows)}x{len(columns)}"
    print(f"fit_{algorithm} {fit_s:.2f} s (train rows x features {shape}, {params})")
    print(f"walk_forward_{algorithm} {walk_s:.2f} s ({model.metrics['fits']} refits + final, "
          f"{len(dataset.X)} rows, {FOLD}, {params})")  # fmt: skip
    print(f"explain_{algorithm} {explain_s:.2f} s (SHAP + permutation x3 on 2000 rows + PNG)")
    print(f"peak_rss_{algorithm} {peak_mb:.0f} MB (own process: data, imports, all three)")
    print(f"oos_hit_rate_{algorithm} {model.metrics['oos_hit_rate']:.4f} ratio (synthetic data)")


def main() -> None:
    from stock_assets.core.training import ALGORITHMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--algorithms", nargs="*", default=list(ALGORITHMS))
    parser.add_argument("--n-jobs", type=int, default=-1, help="ModelSpec.n_jobs (-1: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.data, args.params, args.n_jobs)
        return
    started = time.perf_counter()
    spy, qqq = feature_frames(args.sessions)
    print(f"build_features {time.perf_counter() - started:.2f} s "
          f"({len(spy)} rows SPY + QQQ, {args.sessions} sessions)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        spy.to_parquet(data / "spy.parquet")
        qqq.to_parquet(data / "qqq.parquet")
        params = f"{len(spy)} rows, {os.cpu_count()} cores, n_jobs={args.n_jobs}"
        for algorithm in args.algorithms:
            command = [sys.executable, __file__, "--worker", algorithm, "--data", str(data),
                       "--params", params, "--n-jobs", str(args.n_jobs)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            sys.stdout.write(done.stdout)
            if done.returncode:
                print(f"failed_{algorithm} {done.returncode} exit ({done.stderr.strip()[-300:]})")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
