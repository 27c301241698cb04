"""Commands over research: features, simulate, leaderboard, and the demo of everything."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from stock_assets import settings
from stock_assets.cli.bars import ingest
from stock_assets.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    echo,
    emit,
    failure_reason,
    floats,
    open_warehouse,
    run_job,
    trading_days,
)
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

if TYPE_CHECKING:
    from stock_assets.simulate import GridSpec

DEMO_SYMBOLS = ["SPY", "QQQ", "AAPL", "VIXY"]
DEMO_DAYS = 30


def build_features(symbols: list[str], days: list[dt.date]) -> int:
    """Materialize market_regimes for the days, then features for each symbol."""
    from rich.progress import Progress

    from stock_assets.assets.partitions import range_tags

    failed = []
    with Progress(transient=True) as progress:
        task = progress.add_task("market regimes", total=len(symbols) + 1)
        regimes = run_job("regimes_job", tags={
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat(),
        })  # fmt: skip
        if not regimes.success:
            failed.append("market_regimes")
            echo(f"market_regimes FAILED: {failure_reason(regimes)}")
        progress.advance(task)
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: features for {len(days)} day(s)")
            result = run_job("features_job", tags=range_tags(symbol, days[0], days[-1]))
            # a ranged run repeats the run's metadata on every partition's materialization
            materializations = result.asset_materializations_for_node("features")
            rows = materializations[0].metadata["rows"].value if materializations else 0
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            echo(f"{symbol:8} {'ok' if result.success else 'FAILED':6} {rows:>9} rows  "
                   f"checks: {', '.join(f'{k}={v}' for k, v in checks.items())}")  # fmt: skip
            if not result.success:
                echo(f"  {symbol} failed: {failure_reason(result)}")
            if not result.success or not all(checks.values()):
                failed.append(symbol)
            progress.advance(task)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_features(args: argparse.Namespace) -> int:
    from stock_assets.assets.features import fold_labels
    from stock_assets.core.folds import FoldConfig

    fold = FoldConfig.parse(args.fold) if args.fold else None
    warehouse = open_warehouse()
    if args.target == "build":
        return build_features(normalize_symbols(args.symbols), trading_days(args.start, args.end))
    if args.target == "options":
        rows = warehouse.catalog.query("SELECT * FROM feature_folds ORDER BY fold_config, symbol")
        if fold:
            rows = rows[rows["fold_config"] == fold.key]
        emit(rows, args.format)
        return EXIT_OK
    from stock_assets.storage.lake import to_frame

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
    emit(frame.reset_index(drop=True), args.format)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from stock_assets.simulate import GridSpec

    symbol = normalize_symbol(args.symbol)
    spec = GridSpec(
        models=[args.model] if args.model else GridSpec().models,
        thresholds=floats(args.thresholds),
        zscore=[False, True] if args.zscore else [False],
        volnorm=[False, True] if args.volnorm else [False],
        regimes=[""] + list(args.regime or []),
        bot=[False, True] if args.bot else [False],
        fill_delays=[int(delay) for delay in floats(args.fill_delay)],
        fee_per_trade=args.fee,
        fee_bps=args.fee_bps,
        fractional=args.fractional,
        split="test" if args.bot else args.split,
    )
    return simulate(symbol, spec, args.by, args.limit)


def simulate(symbol: str, spec: GridSpec, by: str = "sqn", limit: int = 10) -> int:
    """Run grid_search_job for one symbol and grid; print the symbol's leaderboard."""
    spec.build()  # a bad grid fails here, with its message, before any run
    config = {"symbols": [symbol], **spec.model_dump()}
    result = run_job("grid_search_job", ops={"plan_grid_search": {"config": config}})
    if not result.success:
        print(
            f"stock-assets: simulation of {symbol} failed: {failure_reason(result)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    echo(f"run {result.run_id[:8]}: grid of {len(spec.build().combinations())} "
           f"combination(s) x {len(spec.models)} model(s) for {symbol}")  # fmt: skip
    board = open_warehouse().catalog.leaderboard(by, symbol, limit)
    emit(board[LEADERBOARD_COLUMNS], "table")
    echo(f"plots: {settings.home() / 'plots'}")
    return EXIT_OK


LEADERBOARD_COLUMNS = ["model_id", "threshold", "zscore", "volnorm", "regime_column",
                       "regime_allowed", "bot", "fill_delay", "trades", "total_return",
                       "excess_vs_buy_hold", "excess_vs_random", "sharpe", "max_drawdown",
                       "win_rate", "profit_factor", "sqn"]  # fmt: skip


def cmd_leaderboard(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol) if args.symbol else None
    board = open_warehouse().catalog.leaderboard(args.by, symbol, args.limit)
    if board.empty:
        print("no simulations stored (stock-assets simulate SYMBOL)", file=sys.stderr)
        return EXIT_FAILED
    columns = ["symbol", *LEADERBOARD_COLUMNS] if args.format == "table" else list(board.columns)
    emit(board[columns], args.format)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    days = trading_days(None, None, default_days=args.days)
    echo(f"stock-assets demo: {', '.join(DEMO_SYMBOLS)} for {len(days)} trading days "
           f"{days[0]} .. {days[-1]} from the synthetic provider")  # fmt: skip
    code = ingest(DEMO_SYMBOLS, days, "synthetic")
    echo("\nfeatures and market regimes:")
    code = max(code, build_features(DEMO_SYMBOLS, days))
    echo("\nsimulations (96-combination grid per baseline model, with baselines):")
    from stock_assets.simulate import GridSpec

    code = max(code, simulate("SPY", GridSpec(), limit=5))
    home = settings.home()
    echo()
    echo(f"Lake:     {home / 'lake'}")
    echo(f"Catalog:  {home / 'warehouse.duckdb'} (views bars, bars_5m .. bars_1d, features, "
           "market_regimes; tables ingest_status, feature_metadata, sim_runs)")  # fmt: skip
    echo(f"Plots:    {home / 'plots'}")
    echo(f"Dagster:  {settings.dagster_home()} (the runs above are in its history)")
    echo("Next:     uv run stock-assets bars SPY --limit 5")
    echo("          uv run stock-assets leaderboard --by sharpe")
    echo("          make dev   # then open http://127.0.0.1:3000")
    return code
