"""Commands over bars: symbols, ingest, bars, gaps, backfill, dev."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from stock_assets import settings
from stock_assets.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    dagster_instance,
    echo,
    emit,
    failure_reason,
    open_warehouse,
    run_job,
    trading_days,
)
from stock_assets.core.symbols import normalize_symbol, normalize_symbols


def cmd_symbols(args: argparse.Namespace) -> int:
    instance = dagster_instance()
    if args.action == "list":
        for symbol in sorted(instance.get_dynamic_partitions("symbols")):
            echo(symbol)
        return EXIT_OK
    symbols = normalize_symbols(args.symbols)
    known = set(instance.get_dynamic_partitions("symbols"))
    if args.action == "add":
        new = [s for s in symbols if s not in known]
        if new:
            instance.add_dynamic_partitions("symbols", new)
        echo(f"added {', '.join(new) or 'nothing new'}")
    else:
        for symbol in symbols:
            if symbol in known:
                instance.delete_dynamic_partition("symbols", symbol)
        echo(f"removed {', '.join(s for s in symbols if s in known) or 'nothing'} "
               "(stored bars stay in the lake)")  # fmt: skip
    return EXIT_OK


def ingest(symbols: list[str], days: list[dt.date], providers: str | None,
           refetch: bool = False) -> int:  # fmt: skip
    """Materialize bars_1m and derived_bars for symbols x days, one run per symbol."""
    from rich.progress import Progress

    from stock_assets.assets.partitions import range_tags

    instance = dagster_instance()
    known = set(instance.get_dynamic_partitions("symbols"))
    if new := [s for s in symbols if s not in known]:
        instance.add_dynamic_partitions("symbols", new)
    ops = {"bars_1m": {"config": {"providers": providers, "refetch": refetch}}}
    runs = {}
    with Progress(transient=True) as progress:
        task = progress.add_task(f"ingesting {len(days)} day(s)", total=len(symbols))
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: {len(days)} day(s)")
            result = run_job("ingest_job", ops=ops, tags=range_tags(symbol, days[0], days[-1]))
            runs[symbol] = (result.run_id, None if result.success else failure_reason(result))
            progress.advance(task)
    return _summarize(symbols, days, runs)


def _summarize(symbols: list[str], days: list[dt.date], runs: dict[str, tuple]) -> int:
    import pandas as pd

    status = open_warehouse().catalog.ingest_status()
    status = status[status["date"].between(pd.Timestamp(days[0]), pd.Timestamp(days[-1]))]
    failed = []
    echo(f"{'symbol':8} {'days':>5} {'ok':>4} {'partial':>7} {'empty':>5} {'failed':>6} "
           f"{'rows':>9} {'missing':>7}  run")  # fmt: skip
    for symbol in symbols:
        mine = status[status["symbol"] == symbol]
        counts = mine["status"].value_counts()
        echo(
            f"{symbol:8} {len(days):>5} {counts.get('ok', 0):>4} {counts.get('partial', 0):>7} "
            f"{counts.get('empty', 0):>5} {counts.get('failed', 0):>6} "
            f"{int(mine['rows'].sum()):>9} {int(mine['missing_minutes'].sum()):>7}  "
            f"{runs[symbol][0][:8]}"
        )
        if len(mine) and (mine["status"] == "failed").all():
            failed.append(symbol)
            echo(f"  {symbol} failed: {mine['message'].iloc[0]}")
        elif runs[symbol][1]:
            failed.append(symbol)
            echo(f"  {symbol} failed: {runs[symbol][1]}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from stock_assets.resources.market_data import parse_provider_order

    symbols = normalize_symbols(args.symbols)
    days = trading_days(args.start, args.end)
    if args.provider:
        parse_provider_order(args.provider)
    if args.csv and not os.path.exists(args.csv):
        raise UsageError(f"--csv {args.csv}: no such file or folder")
    if args.csv:
        os.environ["STOCK_ASSETS_CSV_PATH"] = os.path.abspath(args.csv)
        os.environ["STOCK_ASSETS_CSV_LABEL"] = args.csv_label
    return ingest(symbols, days, args.provider, refetch=args.refetch)


def cmd_bars(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    from stock_assets.storage.lake import Lake, latest_bars

    table = latest_bars(Lake(settings.home() / "lake"), symbol, args.interval, args.limit)
    if table is None:
        print(f"no {args.interval} bars stored for {symbol}", file=sys.stderr)
        return EXIT_FAILED
    emit(table, args.format, first={"symbol": symbol})
    return EXIT_OK


def cmd_gaps(args: argparse.Namespace) -> int:
    import pandas as pd

    from stock_assets.core import bars as core_bars
    from stock_assets.core import calendar

    symbol = normalize_symbol(args.symbol)
    warehouse = open_warehouse()
    stored_days = warehouse.lake.days("bars_1m", symbol)
    if not stored_days:
        print(f"no bars stored for {symbol}", file=sys.stderr)
        return EXIT_FAILED
    first, last = calendar.parse_range(args.start or stored_days[0], args.end or stored_days[-1])
    days = calendar.sessions(first, last)
    bars = warehouse.read_bars(symbol, days)
    missing = core_bars.missing_by_day(bars, days)
    filled = pd.Series(bars["is_filled"].to_numpy()).groupby(core_bars.bar_days(bars["ts"])).sum()
    rows = [
        {"date": day.isoformat(), "missing_minutes": missing[day],
         "filled_minutes": int(filled.get(day, 0)), "stored": day in set(stored_days)}
        for day in days
        if missing[day] or filled.get(day, 0) or day not in set(stored_days)
    ]  # fmt: skip
    emit(pd.DataFrame(rows), args.format)
    total = sum(missing.values())
    echo(f"{symbol}: {len(days)} sessions, {total} missing minutes, "
           f"{int(filled.sum())} filled minutes")  # fmt: skip
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    from stock_assets.core import calendar

    symbol = normalize_symbol(args.symbol)
    if args.start or args.end:
        calendar.parse_range(args.start or calendar.FIRST_DAY, args.end or calendar.last_day())
    config = {"symbols": [symbol], "max_iterations": args.max_iterations,
              "start": args.start, "end": args.end}  # fmt: skip
    result = run_job("gap_fill_job", ops={"fill_gaps_op": {"config": config}})
    if not result.success:
        print(f"backfill of {symbol} failed (run {result.run_id})", file=sys.stderr)
        return EXIT_FAILED
    changed = len(result.asset_materializations_for_node("fill_gaps_op")) // 2
    echo(f"{symbol}: {changed} partition(s) filled (run {result.run_id[:8]})")
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    settings.use_dagster_home()
    command = [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port),
               "-m", "stock_assets.definitions"]  # fmt: skip
    os.execv(command[0], command)
    return EXIT_OK  # not reached
