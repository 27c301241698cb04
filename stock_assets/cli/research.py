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
    floats,
    launch,
    open_warehouse,
    trading_days,
)
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

if TYPE_CHECKING:
    from stock_assets.pipelines.specs import GridSpec

DEMO_SYMBOLS = ["SPY", "QQQ", "AAPL", "VIXY"]
DEMO_DAYS = 45  # always holds a fold_30_5 test episode with train sessions before it


def build_features(symbols: list[str], days: list[dt.date]) -> int:
    """Materialize market_regimes for the days, then features for each symbol."""
    from rich.progress import Progress

    from stock_assets.jobs import launcher as launches

    failed = []
    with Progress(transient=True) as progress:
        task = progress.add_task("market regimes", total=len(symbols) + 1)
        regimes = launch(launches.regimes(days[0], days[-1]))
        if not regimes.success:
            failed.append("market_regimes")
            echo(f"market_regimes FAILED: {regimes.failure_reason()}")
        progress.advance(task)
        for symbol in symbols:
            progress.update(task, description=f"{symbol}: features for {len(days)} day(s)")
            outcome = launch(launches.features(symbol, days[0], days[-1]))
            # a ranged run repeats the run's metadata on every partition's materialization
            materializations = outcome.materializations("features")
            metadata = materializations[0].metadata if materializations else {}
            rows = metadata.get("rows") or metadata.get("run_rows")
            checks = outcome.checks()
            echo(f"{symbol:8} {'ok' if outcome.success else 'FAILED':6} "
                 f"{rows.value if rows else 0:>9} rows  "
                 f"checks: {', '.join(f'{k}={v}' for k, v in checks.items())}")  # fmt: skip
            if not outcome.success:
                echo(f"  {symbol} failed: {outcome.failure_reason()}")
            if not outcome.success or not all(checks.values()):
                failed.append(symbol)
            progress.advance(task)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_features(args: argparse.Namespace) -> int:
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import fold_labels

    fold = FoldConfig.parse(args.fold) if args.fold else None
    warehouse = open_warehouse()
    if args.target == "build":
        return build_features(normalize_symbols(args.symbols), trading_days(args.start, args.end))
    if args.target == "options":
        rows = warehouse.catalog.feature_folds()
        if fold:
            rows = rows[rows["fold_config"] == fold.key]
        emit(rows, args.format)
        return EXIT_OK
    symbol = normalize_symbol(args.target)
    if args.tail < 1:
        raise UsageError("--tail must be at least 1")
    frame = warehouse.latest_features(symbol, args.tail)
    if frame is None:
        print(f"no features stored for {symbol} (stock-assets features build {symbol} "
              "--start D)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
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
    from stock_assets.pipelines.specs import GridSpec

    symbol = normalize_symbol(args.symbol)
    spec = GridSpec(
        models=[args.model] if args.model else [],
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
    from stock_assets.jobs import launcher as launches
    from stock_assets.pipelines.models import BaselineModels

    grid = spec.build()  # a bad grid fails here, with its message, before any run
    outcome = launch(launches.grid_search([symbol], spec))
    if not outcome.success:
        print(f"stock-assets: simulation of {symbol} failed: {outcome.failure_reason()}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    models = spec.models or BaselineModels().model_ids(symbol)
    echo(f"run {outcome.run_id[:8]}: grid of {len(grid.combinations())} "
         f"combination(s) x {len(models)} model(s) for {symbol}")  # fmt: skip
    return print_leaderboard(symbol, by, limit)


def print_leaderboard(symbol: str, by: str, limit: int) -> int:
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


def materialize_simulations(symbol: str, by: str = "sqn", limit: int = 10) -> int:
    """Materialize the `simulations` asset of a symbol (the default grid over every
    current model); print its leaderboard."""
    from stock_assets.jobs import launcher as launches

    outcome = launch(launches.simulations(symbol))
    if not outcome.success:
        print(f"stock-assets: simulations of {symbol} failed: {outcome.failure_reason()}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    echo(f"run {outcome.run_id[:8]}: simulations of {symbol} materialized")
    return print_leaderboard(symbol, by, limit)


def cmd_demo(args: argparse.Namespace) -> int:
    days = trading_days(None, None, default_days=args.days)
    echo(f"stock-assets demo: {', '.join(DEMO_SYMBOLS)} for {len(days)} trading days "
           f"{days[0]} .. {days[-1]} from the synthetic provider")  # fmt: skip
    code = ingest(DEMO_SYMBOLS, days, "synthetic")
    echo("\nfeatures and market regimes:")
    code = max(code, build_features(DEMO_SYMBOLS, days))
    echo("\nmodels for SPY (ridge, lightgbm, logistic; walk-forward, out of sample):")
    from stock_assets.cli.models import train_models
    from stock_assets.pipelines.specs import DEFAULT_MODEL_CONFIGS

    code = max(code, train_models("SPY", DEFAULT_MODEL_CONFIGS))
    echo("\nsimulations (96-combination grid per model and baseline, on out-of-sample "
         "predictions only):")  # fmt: skip
    code = max(code, materialize_simulations("SPY", limit=5))
    home = settings.home()
    echo()
    echo(f"Lake:     {home / 'lake'}")
    echo(f"Catalog:  {home / 'warehouse.duckdb'} (views bars, bars_5m .. bars_1d, features, "
           "market_regimes; tables ingest_status, feature_metadata, sim_runs)")  # fmt: skip
    echo(f"Plots:    {home / 'plots'}")
    echo(f"MLflow:   {home / 'mlflow'} (uv run stock-assets mlflow: compare the models)")
    echo(f"Dagster:  {settings.dagster_home()} (the runs above are in its history)")
    echo("Next:     uv run stock-assets bars SPY --limit 5")
    echo("          uv run stock-assets leaderboard --by sharpe")
    echo("          make dev   # then open http://127.0.0.1:3000")
    return code
