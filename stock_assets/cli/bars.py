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
    launch,
    open_warehouse,
    trading_days,
)
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

MAX_FILL_ITERATIONS = 1000  # the gap-fill job's own limit


def cmd_symbols(args: argparse.Namespace) -> int:
    from stock_assets.core.symbols import InvalidSymbol, check_symbol_key

    instance = dagster_instance()
    known = sorted(instance.get_dynamic_partitions("symbols"))
    if args.action == "list":
        for key in known:
            try:
                echo(check_symbol_key(key))
            except InvalidSymbol as error:
                echo(f"{key}  (invalid: {error}; stock-assets symbols remove {key!r})")
        return EXIT_OK
    if args.action == "add":
        symbols = normalize_symbols(args.symbols)
        new = [s for s in symbols if s not in known]
        if new:
            instance.add_dynamic_partitions("symbols", new)
        echo(f"added {', '.join(new) or 'nothing new'}")
        return EXIT_OK
    if not args.symbols:
        raise UsageError("symbols remove needs at least one symbol")
    # a key stored as typed (an invalid one added in the UI) is removed as typed
    keys = [raw if raw in known else normalize_symbol(raw) for raw in args.symbols]
    removed = [key for key in dict.fromkeys(keys) if key in known]
    for key in removed:
        instance.delete_dynamic_partition("symbols", key)
    echo(f"removed {', '.join(removed) or 'nothing'} (stored bars stay in the lake)")
    return EXIT_OK


def ingest(symbols: list[str], days: list[dt.date], providers: str | None,
           refetch: bool = False, csv: dict[str, str] | None = None) -> int:  # fmt: skip
    """Materialize bars_1m and derived_bars for symbols x days, one run per symbol."""
    from rich.progress import Progress

    from stock_assets.jobs import launcher as launches

    instance = dagster_instance()
    known = set(instance.get_dynamic_partitions("symbols"))
    if new := [s for s in symbols if s not in known]:
        instance.add_dynamic_partitions("symbols", new)
    runs = {}
    with Progress(transient=True) as progress:
        task = progress.add_task(f"ingesting {len(days)} day(s)", total=len(symbols))
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: {len(days)} day(s)")
            request = launches.ingest(symbol, days[0], days[-1], providers=providers,
                                      refetch=refetch, **(csv or {}))  # fmt: skip
            outcome = launch(request)
            error = None if outcome.success else outcome.failure_reason()
            runs[symbol] = (outcome.run_id, error, _dropped(outcome).get(symbol, {}))
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
        # bars of minutes not yet over ("future", the synthetic source makes whole days)
        # are not bad input: not reported here
        if dropped := {k: v for k, v in runs[symbol][2].items() if k != "future"}:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(dropped.items()))
            echo(f"  {symbol}: {sum(dropped.values())} row(s) left out ({reasons})")
    return EXIT_FAILED if failed else EXIT_OK


def _dropped(outcome) -> dict[str, dict[str, int]]:
    """Rows left out per symbol and reason, from the run's bars_1m metadata."""
    for materialization in outcome.materializations("bars_1m")[:1]:
        metadata = materialization.metadata
        value = metadata.get("dropped") or metadata.get("run_dropped")
        return value.value if value is not None else {}
    return {}


def cmd_ingest(args: argparse.Namespace) -> int:
    symbols = normalize_symbols(args.symbols)
    days = trading_days(args.start, args.end)
    if args.provider:
        from stock_assets.core.ingest import parse_provider_order

        parse_provider_order(args.provider, has_alpaca_keys=True)
    csv = None
    if args.csv:
        if not os.path.exists(args.csv):
            raise UsageError(f"--csv {args.csv}: no such file or folder")
        csv = {"csv_path": os.path.abspath(args.csv), "csv_label": args.csv_label,
               "csv_timezone": _timezone(args.csv_tz)}  # fmt: skip
    return ingest(symbols, days, args.provider, refetch=args.refetch, csv=csv)


def _timezone(name: str | None) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--csv-tz {name!r}: an IANA time zone such as UTC") from None
    return name


def cmd_bars(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    from stock_assets.storage.lake import Lake  # not the Warehouse: no pandas, a fast start

    table = Lake(settings.home() / "lake").latest_bars(symbol, args.interval, args.limit)
    if table is None:
        print(f"no {args.interval} bars stored for {symbol}", file=sys.stderr)
        return EXIT_FAILED
    emit(table, args.format, first={"symbol": symbol})
    return EXIT_OK


def cmd_gaps(args: argparse.Namespace) -> int:
    import pandas as pd

    from stock_assets.core import calendar
    from stock_assets.pipelines.gaps import gap_report

    symbol = normalize_symbol(args.symbol)
    warehouse = open_warehouse()
    stored_days = warehouse.bar_days(symbol)
    if not stored_days:
        print(f"no bars stored for {symbol}", file=sys.stderr)
        return EXIT_FAILED
    first, last = calendar.parse_range(args.start or stored_days[0], args.end or stored_days[-1])
    days = calendar.sessions(first, last)
    rows, missing, filled = gap_report(warehouse, symbol, days)
    emit(pd.DataFrame(rows), args.format)
    echo(f"{symbol}: {len(days)} sessions, {missing} missing minutes, {filled} filled minutes")
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    from stock_assets.core import calendar
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(args.symbol)
    if not 1 <= args.max_iterations <= MAX_FILL_ITERATIONS:
        raise UsageError(
            f"--max-iterations {args.max_iterations}: a whole number 1..{MAX_FILL_ITERATIONS}"
        )
    if args.start or args.end:
        calendar.parse_range(args.start or calendar.FIRST_DAY, args.end or calendar.last_day())
    outcome = launch(launches.gap_fill(symbol, args.start, args.end, args.max_iterations))
    if not outcome.success:
        print(f"backfill of {symbol} failed (run {outcome.run_id}): {outcome.failure_reason()}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    changed = len(outcome.materializations("bars_1m"))
    echo(f"{symbol}: {changed} partition(s) filled (run {outcome.run_id[:8]})")
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    settings.use_dagster_home()
    command = [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port),
               "-m", "stock_assets.definitions"]  # fmt: skip
    os.execv(command[0], command)
    return EXIT_OK  # not reached
