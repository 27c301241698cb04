"""The `stock-assets` command: what a person types.

Exit codes: 0 done, 1 a requested symbol failed, 2 a usage error (one line on stderr).
Ingestion runs through Dagster on the instance in DAGSTER_HOME, so every run shows in
the UI (`stock-assets dev`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from stock_assets import settings
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

if TYPE_CHECKING:  # heavy imports happen inside the commands that need them
    import pandas as pd
    import pyarrow as pa

DEMO_SYMBOLS = ["SPY", "QQQ", "AAPL", "VIXY"]
DEMO_DAYS = 30
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A request that cannot be carried out as typed."""


def _print(text: str = "") -> None:
    print(text, flush=True)


def _instance():
    """The Dagster instance under DAGSTER_HOME (one per home in this process)."""
    return _instance_at(str(settings.use_dagster_home()))


@lru_cache(maxsize=4)
def _instance_at(home: str):
    import dagster as dg

    return dg.DagsterInstance.from_config(home)


def _run(job: str, *, tags: dict[str, str] | None = None, ops: dict | None = None):
    """Execute a job of the definitions in this process, on the instance under
    DAGSTER_HOME, so its run shows in the UI (with its full log); the console stays quiet
    and the command reports the outcome."""
    from stock_assets.definitions import defs

    config: dict = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if ops:
        config["ops"] = ops
    return defs.resolve_job_def(job).execute_in_process(
        run_config=config, instance=_instance(), tags=tags or {}, raise_on_error=False
    )


def _warehouse():
    from stock_assets.resources.warehouse import WarehouseResource

    return WarehouseResource(home=str(settings.home()))


def _days(start: str | None, end: str | None, default_days: int | None = None) -> list[dt.date]:
    import pandas as pd

    from stock_assets.assets.partitions import FIRST_DAY
    from stock_assets.core import calendar

    today = pd.Timestamp.now(calendar.EXCHANGE_TZ).date()
    if start is None and default_days:
        last = calendar.last_session_on_or_before(today)
        return [*calendar.previous_sessions(last, default_days - 1), last]
    if start is None:
        raise UsageError("--start is required (YYYY-MM-DD)")
    first, last = calendar.parse_range(start, end or today.isoformat())
    if last > today:
        raise UsageError(f"end {last} is in the future (today is {today})")
    if first < FIRST_DAY:
        raise UsageError(f"start {first} is before the first partition day {FIRST_DAY}")
    days = calendar.sessions(first, last)
    if not days:
        raise UsageError(f"no XNYS session between {first} and {last}")
    return days


# --- symbols -------------------------------------------------------------------------


def cmd_symbols(args: argparse.Namespace) -> int:
    instance = _instance()
    if args.action == "list":
        for symbol in sorted(instance.get_dynamic_partitions("symbols")):
            _print(symbol)
        return EXIT_OK
    symbols = normalize_symbols(args.symbols)
    known = set(instance.get_dynamic_partitions("symbols"))
    if args.action == "add":
        new = [s for s in symbols if s not in known]
        if new:
            instance.add_dynamic_partitions("symbols", new)
        _print(f"added {', '.join(new) or 'nothing new'}")
    else:
        for symbol in symbols:
            if symbol in known:
                instance.delete_dynamic_partition("symbols", symbol)
        _print(f"removed {', '.join(s for s in symbols if s in known) or 'nothing'} "
               "(stored bars stay in the lake)")  # fmt: skip
    return EXIT_OK


# --- ingest --------------------------------------------------------------------------


def ingest(symbols: list[str], days: list[dt.date], providers: str | None,
           refetch: bool = False) -> int:  # fmt: skip
    """Materialize bars_1m and derived_bars for symbols x days, one run per symbol."""
    from rich.progress import Progress

    from stock_assets.assets.partitions import range_tags

    instance = _instance()
    known = set(instance.get_dynamic_partitions("symbols"))
    if new := [s for s in symbols if s not in known]:
        instance.add_dynamic_partitions("symbols", new)
    ops = {"bars_1m": {"config": {"providers": providers, "refetch": refetch}}}
    runs = {}
    with Progress(transient=True) as progress:
        task = progress.add_task(f"ingesting {len(days)} day(s)", total=len(symbols))
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: {len(days)} day(s)")
            result = _run("ingest_job", ops=ops, tags=range_tags(symbol, days[0], days[-1]))
            runs[symbol] = (result.run_id, None if result.success else _failure(result))
            progress.advance(task)
    return _summarize(symbols, days, runs)


def _failure(result) -> str:
    """The error message of a failed run's first failed step."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    if failure is None or failure.step_failure_data.error is None:
        return f"run {result.run_id} failed (see the Dagster UI)"
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause  # Dagster wraps the user's exception
    line = error.message.strip().splitlines()[-1]
    kind, _, text = line.partition(": ")
    return text if text and " " not in kind else line  # drop "package.module.Error: "


def _summarize(symbols: list[str], days: list[dt.date], runs: dict[str, tuple]) -> int:
    import pandas as pd

    status = _warehouse().catalog.ingest_status()
    status = status[status["date"].between(pd.Timestamp(days[0]), pd.Timestamp(days[-1]))]
    failed = []
    _print(f"{'symbol':8} {'days':>5} {'ok':>4} {'partial':>7} {'empty':>5} {'failed':>6} "
           f"{'rows':>9} {'missing':>7}  run")  # fmt: skip
    for symbol in symbols:
        mine = status[status["symbol"] == symbol]
        counts = mine["status"].value_counts()
        _print(
            f"{symbol:8} {len(days):>5} {counts.get('ok', 0):>4} {counts.get('partial', 0):>7} "
            f"{counts.get('empty', 0):>5} {counts.get('failed', 0):>6} "
            f"{int(mine['rows'].sum()):>9} {int(mine['missing_minutes'].sum()):>7}  "
            f"{runs[symbol][0][:8]}"
        )
        if len(mine) and (mine["status"] == "failed").all():
            failed.append(symbol)
            _print(f"  {symbol} failed: {mine['message'].iloc[0]}")
        elif runs[symbol][1]:
            failed.append(symbol)
            _print(f"  {symbol} failed: {runs[symbol][1]}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from stock_assets.resources.market_data import parse_provider_order

    symbols = normalize_symbols(args.symbols)
    days = _days(args.start, args.end)
    if args.provider:
        parse_provider_order(args.provider)
    if args.csv and not os.path.exists(args.csv):
        raise UsageError(f"--csv {args.csv}: no such file or folder")
    if args.csv:
        os.environ["STOCK_ASSETS_CSV_PATH"] = os.path.abspath(args.csv)
        os.environ["STOCK_ASSETS_CSV_LABEL"] = args.csv_label
    return ingest(symbols, days, args.provider, refetch=args.refetch)


def cmd_demo(args: argparse.Namespace) -> int:
    days = _days(None, None, default_days=args.days)
    _print(f"stock-assets demo: {', '.join(DEMO_SYMBOLS)} for {len(days)} trading days "
           f"{days[0]} .. {days[-1]} from the synthetic provider")  # fmt: skip
    code = ingest(DEMO_SYMBOLS, days, "synthetic")
    _print("\nfeatures and market regimes:")
    code = max(code, build_features(DEMO_SYMBOLS, days))
    _print("\nsimulations (96-combination grid per baseline model, with baselines):")
    code = max(code, cmd_simulate(build_parser().parse_args(
        ["simulate", "SPY", "--thresholds", "0,0.0005,0.001,0.002", "--zscore", "--volnorm",
         "--regime", "regime_gmm=0", "--regime", "regime_vix=0,1", "--fill-delay", "0,4",
         "--limit", "5"])))  # fmt: skip
    home = settings.home()
    _print()
    _print(f"Lake:     {home / 'lake'}")
    _print(f"Catalog:  {home / 'warehouse.duckdb'} (views bars, bars_5m .. bars_1d, features, "
           "market_regimes; tables ingest_status, feature_metadata, sim_runs)")  # fmt: skip
    _print(f"Plots:    {home / 'plots'}")
    _print(f"Dagster:  {settings.dagster_home()} (the runs above are in its history)")
    _print("Next:     uv run stock-assets bars SPY --limit 5")
    _print("          uv run stock-assets leaderboard --by sharpe")
    _print("          make dev   # then open http://127.0.0.1:3000")
    return code


# --- reading ---------------------------------------------------------------------------


def _emit(data: pa.Table | pd.DataFrame, fmt: str, first: dict[str, str] | None = None) -> None:
    """Print rows as an aligned table, CSV or JSON records, with constant leading columns
    `first`. Arrow tables print without importing pandas (a fast `bars`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = pc.cast(table.column(i), pa.timestamp("s", tz="UTC"), safe=False)
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S+00:00")
            table = table.set_column(i, field.name, text)
    names = [*(first or {}), *table.column_names]
    rows = [{**(first or {}), **row} for row in table.to_pylist()]
    if fmt == "json":
        records = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        sys.stdout.write(json.dumps(records, default=_text, allow_nan=False) + "\n")
        return
    cells = [[_text(row[name], short=fmt == "table") for name in names] for row in rows]
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([names, *cells])
        return
    if not cells:
        _print("(no rows)")
        return
    widths = [max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(names)]
    for row in [names, *cells]:
        _print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _text(value: object, short: bool = False) -> str:
    """A cell: full precision, or with `short` floats rounded to 6 decimals for reading."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        if short and math.isfinite(value) and abs(value) >= 1e-3:
            value = round(value, 6)
        return repr(value) if not short or abs(value) >= 1e-3 or value == 0 else f"{value:.6g}"
    return str(value)


def _json_value(value: object) -> object:
    """JSON has no NaN or infinity: NaN becomes null, infinities the strings inf/-inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def cmd_bars(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    from stock_assets.resources.lake import Lake, latest_bars

    table = latest_bars(Lake(settings.home() / "lake"), symbol, args.interval, args.limit)
    if table is None:
        print(f"no {args.interval} bars stored for {symbol}", file=sys.stderr)
        return EXIT_FAILED
    _emit(table, args.format, first={"symbol": symbol})
    return EXIT_OK


def cmd_gaps(args: argparse.Namespace) -> int:
    import pandas as pd

    from stock_assets.core import bars as core_bars
    from stock_assets.core import calendar

    symbol = normalize_symbol(args.symbol)
    warehouse = _warehouse()
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
    _emit(pd.DataFrame(rows), args.format)
    total = sum(missing.values())
    _print(f"{symbol}: {len(days)} sessions, {total} missing minutes, "
           f"{int(filled.sum())} filled minutes")  # fmt: skip
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    from stock_assets.core import calendar

    symbol = normalize_symbol(args.symbol)
    if args.start or args.end:
        calendar.parse_range(args.start or calendar.FIRST_DAY, args.end or calendar.last_day())
    config = {"symbols": [symbol], "max_iterations": args.max_iterations,
              "start": args.start, "end": args.end}  # fmt: skip
    result = _run("gap_fill_job", ops={"fill_gaps_op": {"config": config}})
    if not result.success:
        print(f"backfill of {symbol} failed (run {result.run_id})", file=sys.stderr)
        return EXIT_FAILED
    changed = len(result.asset_materializations_for_node("fill_gaps_op")) // 2
    _print(f"{symbol}: {changed} partition(s) filled (run {result.run_id[:8]})")
    return EXIT_OK


# --- features ------------------------------------------------------------------------


def build_features(symbols: list[str], days: list[dt.date]) -> int:
    """Materialize market_regimes for the days, then features for each symbol."""
    from rich.progress import Progress

    from stock_assets.assets.partitions import range_tags

    failed = []
    with Progress(transient=True) as progress:
        task = progress.add_task("market regimes", total=len(symbols) + 1)
        regimes = _run("regimes_job", tags={
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat(),
        })  # fmt: skip
        if not regimes.success:
            failed.append("market_regimes")
        progress.advance(task)
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: features for {len(days)} day(s)")
            result = _run("features_job", tags=range_tags(symbol, days[0], days[-1]))
            # a ranged run repeats the run's metadata on every partition's materialization
            materializations = result.asset_materializations_for_node("features")
            rows = materializations[0].metadata["rows"].value if materializations else 0
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            _print(f"{symbol:8} {'ok' if result.success else 'FAILED':6} {rows:>9} rows  "
                   f"checks: {', '.join(f'{k}={v}' for k, v in checks.items())}")  # fmt: skip
            if not result.success or not all(checks.values()):
                failed.append(symbol)
            progress.advance(task)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_features(args: argparse.Namespace) -> int:
    from stock_assets.assets.features import fold_labels
    from stock_assets.core.folds import FoldConfig

    fold = FoldConfig.parse(args.fold) if args.fold else None
    warehouse = _warehouse()
    if args.target == "build":
        return build_features(normalize_symbols(args.symbols), _days(args.start, args.end))
    if args.target == "options":
        rows = warehouse.catalog.query("SELECT * FROM feature_folds ORDER BY fold_config, symbol")
        if fold:
            rows = rows[rows["fold_config"] == fold.key]
        _emit(rows, args.format)
        return EXIT_OK
    from stock_assets.resources.lake import to_frame

    symbol = normalize_symbol(args.target)
    if args.tail < 1:
        raise UsageError("--tail must be at least 1")
    table = warehouse.lake.latest("features", symbol, args.tail)
    if table is None:
        print(f"no features stored for {symbol} (stock-assets features build {symbol} "
              "--start D)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    frame = to_frame(table)
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in frame]
        if unknown:
            raise UsageError(f"unknown feature column(s) {', '.join(unknown)}")
        frame = frame[["ts", *[c for c in wanted if c != "ts"]]]
    if fold:
        frame = frame.assign(fold_split=fold_labels(frame["ts"], fold))
    frame.insert(0, "symbol", symbol)
    _emit(frame.reset_index(drop=True), args.format)
    return EXIT_OK


# --- simulations -------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise UsageError(f"{text!r}: comma-separated numbers, e.g. 0,0.001") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from stock_assets.simulate import GridSpec

    symbol = normalize_symbol(args.symbol)
    spec = GridSpec(
        models=[args.model] if args.model else GridSpec().models,
        thresholds=_floats(args.thresholds),
        zscore=[False, True] if args.zscore else [False],
        volnorm=[False, True] if args.volnorm else [False],
        regimes=[""] + list(args.regime or []),
        bot=[False, True] if args.bot else [False],
        fill_delays=[int(delay) for delay in _floats(args.fill_delay)],
        fee_per_trade=args.fee,
        fee_bps=args.fee_bps,
        fractional=args.fractional,
        split="test" if args.bot else args.split,
    )
    spec.build()  # a bad grid fails here, with its message, before any run
    config = {"symbols": [symbol], **spec.model_dump()}
    result = _run("grid_search_job", ops={"plan_grid_search": {"config": config}})
    if not result.success:
        print(f"stock-assets: simulation of {symbol} failed: {_failure(result)}", file=sys.stderr)
        return EXIT_FAILED
    _print(f"run {result.run_id[:8]}: grid of {len(spec.build().combinations())} "
           f"combination(s) x {len(spec.models)} model(s) for {symbol}")  # fmt: skip
    board = _warehouse().catalog.leaderboard(args.by, symbol, args.limit)
    _emit(board[LEADERBOARD_COLUMNS], "table")
    _print(f"plots: {settings.home() / 'plots'}")
    return EXIT_OK


LEADERBOARD_COLUMNS = ["model_id", "threshold", "zscore", "volnorm", "regime_column",
                       "regime_allowed", "bot", "fill_delay", "trades", "total_return",
                       "excess_vs_buy_hold", "excess_vs_random", "sharpe", "max_drawdown",
                       "win_rate", "profit_factor", "sqn"]  # fmt: skip


def cmd_leaderboard(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol) if args.symbol else None
    board = _warehouse().catalog.leaderboard(args.by, symbol, args.limit)
    if board.empty:
        print("no simulations stored (stock-assets simulate SYMBOL)", file=sys.stderr)
        return EXIT_FAILED
    columns = ["symbol", *LEADERBOARD_COLUMNS] if args.format == "table" else list(board.columns)
    _emit(board[columns], args.format)
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    settings.use_dagster_home()
    command = [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port),
               "-m", "stock_assets.definitions"]  # fmt: skip
    os.execv(command[0], command)
    return EXIT_OK  # not reached


# --- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stock-assets",
        description="Local warehouse of US 1-minute stock bars, as Dagster assets.",
        epilog="Data lives under STOCK_ASSETS_HOME (default ./data); Dagster under DAGSTER_HOME.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="JSON logs at INFO on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    symbols = add("symbols", cmd_symbols, "Add, list or remove symbols (Dagster partitions).")
    symbols.add_argument("action", choices=["add", "list", "remove"])
    symbols.add_argument("symbols", nargs="*", metavar="SYMBOL")

    ingest_p = add("ingest", cmd_ingest, "Fetch 1-minute bars through Dagster for a date range.")
    ingest_p.add_argument("symbols", nargs="+", metavar="SYMBOL")
    ingest_p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    ingest_p.add_argument("--end", help="last day, YYYY-MM-DD (default: today)")
    ingest_p.add_argument(
        "--provider", help="provider order, e.g. alpaca,yahoo or synthetic or csv"
    )
    ingest_p.add_argument("--csv", help="file or folder for the csv provider")
    ingest_p.add_argument(
        "--csv-label", default="start", choices=["start", "end"],
        help="csv rows are labelled by the bar's start (default) or end minute",
    )  # fmt: skip
    ingest_p.add_argument("--refetch", action="store_true", help="ask again for complete days")

    bars = add("bars", cmd_bars, "Print the latest stored bars of a symbol.")
    bars.add_argument("symbol", metavar="SYMBOL")
    bars.add_argument("--interval", default="1m", choices=["1m", "5m", "15m", "30m", "1h", "1d"])
    bars.add_argument("--limit", type=int, default=20)
    bars.add_argument("--format", default="table", choices=["table", "csv", "json"])

    gaps = add("gaps", cmd_gaps, "List days with missing or filled session minutes.")
    gaps.add_argument("symbol", metavar="SYMBOL")
    gaps.add_argument("--start")
    gaps.add_argument("--end")
    gaps.add_argument("--format", default="table", choices=["table", "csv", "json"])

    backfill = add("backfill", cmd_backfill, "Fill missing minutes from neighbours (flagged).")
    backfill.add_argument("symbol", metavar="SYMBOL")
    backfill.add_argument("--max-iterations", type=int, default=10)
    backfill.add_argument("--start")
    backfill.add_argument("--end")

    feats = add(
        "features",
        cmd_features,
        "Show a symbol's features, list fold options, or build features "
        "(features SYMBOL | features options | features build SYMBOL...).",
    )
    feats.add_argument("target", metavar="SYMBOL|options|build")
    feats.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols to build")
    feats.add_argument("--columns", help="comma-separated columns to show")
    feats.add_argument("--tail", type=int, default=20, help="newest N rows (default 20)")
    feats.add_argument(
        "--fold", help='fold configuration, e.g. \'{"train_days": 30, "test_days": 5}\''
    )
    feats.add_argument("--start", help="build: first day")
    feats.add_argument("--end", help="build: last day")
    feats.add_argument("--format", default="table", choices=["table", "csv", "json"])

    sim = add("simulate", cmd_simulate, "Backtest a model's predictions over a parameter grid.")
    sim.add_argument("symbol", metavar="SYMBOL")
    sim.add_argument("--model", help="model id (default: every baseline model)")
    sim.add_argument("--thresholds", default="0", help="comma-separated, log-return units")
    sim.add_argument(
        "--fill-delay", default="0", help="bars, comma-separated; k > 0 fills at the midpoint"
    )
    sim.add_argument("--fee", type=float, default=0.02, help="dollars per fill (default 0.02)")
    sim.add_argument("--fee-bps", type=float, default=0.0, help="basis points per fill")
    sim.add_argument(
        "--regime", action="append", help="whitelist, e.g. regime_gmm=0,1 (repeatable)"
    )
    sim.add_argument("--bot", action="store_true", help="also gate entries by the bot (test split)")
    sim.add_argument("--zscore", action="store_true", help="also with the z-score outlier filter")
    sim.add_argument("--volnorm", action="store_true", help="also with volatility normalization")
    sim.add_argument("--fractional", action="store_true", help="fractional shares")
    sim.add_argument("--split", default="all", choices=["all", "train", "test"])
    sim.add_argument("--by", default="sqn", help="metric to rank by (default sqn)")
    sim.add_argument("--limit", type=int, default=10)

    board = add("leaderboard", cmd_leaderboard, "Stored simulations, best first.")
    board.add_argument("symbol", nargs="?", metavar="SYMBOL")
    board.add_argument("--by", default="sqn", help="metric to rank by (default sqn)")
    board.add_argument("--limit", type=int, default=20)
    board.add_argument("--format", default="table", choices=["table", "csv", "json"])

    demo = add("demo", cmd_demo, "Ingest SPY, QQQ, AAPL, VIXY (synthetic) for recent days.")
    demo.add_argument("--days", type=int, default=DEMO_DAYS)

    dev = add("dev", cmd_dev, "Start the Dagster UI and daemon (default 127.0.0.1:3000).")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["STOCK_ASSETS_LOG_LEVEL"] = "INFO"
    os.environ.setdefault("STOCK_ASSETS_LOG_LEVEL", "WARNING")
    try:
        return args.handler(args)
    except ValueError as error:  # InvalidSymbol, InvalidDate, UsageError and bad options
        print(f"stock-assets: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
