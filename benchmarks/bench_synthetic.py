"""Synthetic generator benchmark: bars per second of `generate_range`.

Run: ``uv run python benchmarks/bench_synthetic.py`` (``--symbols``, ``--start``, ``--end``,
``--repeat``). Prints one line per figure: ``name value unit (params)``.

- cold: the first year of a symbol never seen in this process (its daily path over the
  whole calendar is built and cached: the cost a fresh ingest pays once per symbol).
- warm: the best of ``--repeat`` runs of the same range once the path is cached.
- one_day: `generate_bars` for a single session (what a per-partition asset calls).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from stock_assets.core import calendar
from stock_assets.core.synthetic import generate_bars, generate_range


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="SPY,QQQ,AAPL,VIXY,ZZTOP")
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    calendar.bounds_ns()  # the calendar's own load is not the generator's cost
    params = f"{len(symbols)} symbols, {start}..{end}"

    began = time.perf_counter()  # a seed not used before: nothing cached yet
    rows = sum(len(generate_range(symbol, start, end, seed=987654)) for symbol in symbols)
    cold = time.perf_counter() - began
    print(f"synthetic_cold {rows / cold:,.0f} bars/s ({params}, {rows} bars, {cold:.3f} s)")

    best = float("inf")
    for _ in range(args.repeat):
        began = time.perf_counter()
        for symbol in symbols:
            generate_range(symbol, start, end, seed=987654)
        best = min(best, time.perf_counter() - began)
    print(f"synthetic_warm {rows / best:,.0f} bars/s ({params}, best of {args.repeat})")

    day = calendar.sessions(start, end)[-1]
    began = time.perf_counter()
    for _ in range(20):
        generate_bars(symbols[0], day, seed=987654)
    per_day = (time.perf_counter() - began) / 20
    print(f"synthetic_one_day {per_day * 1e3:.2f} ms ({symbols[0]} {day}, mean of 20)")


if __name__ == "__main__":
    main()
