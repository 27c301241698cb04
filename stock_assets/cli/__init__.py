"""The `stock-assets` command: what a person types.

Exit codes: 0 done, 1 a requested symbol failed, 2 a usage error (one line on stderr);
an internal error is a traceback, never exit 2. Work runs through Dagster on the instance
in DAGSTER_HOME, so every run shows in the UI (`stock-assets dev`): in this process by
default, or submitted to the webserver at STOCK_ASSETS_DAGSTER_URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from stock_assets.cli.api import add_api_parser
from stock_assets.cli.bars import (
    cmd_backfill,
    cmd_bars,
    cmd_dev,
    cmd_gaps,
    cmd_ingest,
    cmd_symbols,
)
from stock_assets.cli.common import EXIT_FAILED, EXIT_USAGE, repair_command
from stock_assets.cli.evolution import add_evolution_commands
from stock_assets.cli.logs import add_logs_parser
from stock_assets.cli.models import cmd_mlflow, cmd_models, cmd_train, cmd_train_group
from stock_assets.cli.ops import add_status_parser
from stock_assets.cli.research import (
    DEMO_DAYS,
    cmd_demo,
    cmd_features,
    cmd_leaderboard,
    cmd_simulate,
)
from stock_assets.cli.worker import add_worker_parser
from stock_assets.core.errors import UsageError
from stock_assets.core.intervals import INTERVALS


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
    ingest_p.add_argument(
        "--csv-tz", help="time zone of naive csv timestamps (default America/New_York), e.g. UTC"
    )
    ingest_p.add_argument("--refetch", action="store_true", help="ask again for complete days")

    bars = add("bars", cmd_bars, "Print the latest stored bars of a symbol.")
    bars.add_argument("symbol", metavar="SYMBOL")
    bars.add_argument("--interval", default="1m", choices=list(INTERVALS))
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

    train = add("train", cmd_train, "Train a model on a symbol's features (tracked in MLflow).")
    train.add_argument("symbol", metavar="SYMBOL")
    train.add_argument(
        "--algorithm", required=True, help="e.g. xgboost_regressor, ridge_regression"
    )
    add_model_options(train)
    group = add(
        "train-group", cmd_train_group, "Train the 4-model group: next 1m open and close, "
        "next day's high and low.",
    )  # fmt: skip
    group.add_argument("symbol", metavar="SYMBOL")
    group.add_argument("--algorithm", default="lightgbm_regressor")
    add_model_options(group)
    listing = add("models", cmd_models, "List (as a tree), show or delete trained models.")
    listing.add_argument("action", choices=["list", "show", "delete"])
    listing.add_argument("target", nargs="?", metavar="SYMBOL|MODEL_ID")
    listing.add_argument("--all", action="store_true", help="delete: every model")
    listing.add_argument("--yes", action="count", default=0, help="delete --all: twice to confirm")
    listing.add_argument("--format", default="table", choices=["table", "json"])
    mlflow = add(
        "mlflow", cmd_mlflow, "Start the MLflow UI on the project's store (127.0.0.1:5000)."
    )
    mlflow.add_argument("--host", default="127.0.0.1")
    mlflow.add_argument("--port", type=int, default=5000)

    add_evolution_commands(add)

    demo = add("demo", cmd_demo, "Ingest SPY, QQQ, AAPL, VIXY (synthetic) for recent days.")
    demo.add_argument("--days", type=int, default=DEMO_DAYS)

    dev = add("dev", cmd_dev, "Start the Dagster UI and daemon (default 127.0.0.1:3000).")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    add_api_parser(add)
    add_status_parser(add)
    add_logs_parser(add)
    add_worker_parser(add)
    return parser


def add_model_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--target", default="close", choices=["close", "open", "high", "low"])
    sub.add_argument("--transform", default="log_return",
                     choices=["log_return", "pct_change", "price"])  # fmt: skip
    sub.add_argument("--horizon", type=int, default=1, help="bars ahead (default 1)")
    sub.add_argument("--timeframe", default="1m", help="1m 5m 15m 30m 1h 4h 8h 1d")
    sub.add_argument("--context", help="up to 3 context symbols, e.g. SPY,QQQ")
    sub.add_argument("--fold", default="fold_30_5")
    sub.add_argument("--evaluation", default="walk_forward", choices=["walk_forward", "folds"])
    sub.add_argument("--parent", help="inherit this model's features")
    sub.add_argument("--features", help="whitelist, comma-separated")
    sub.add_argument("--exclude", help="blacklist, comma-separated")
    sub.add_argument("--auto-select", action="store_true",
                     help="also train a child on the top 2 features per category")  # fmt: skip
    sub.add_argument("--force", action="store_true", help="train again a spec already trained")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["STOCK_ASSETS_LOG_LEVEL"] = "INFO"
    os.environ.setdefault("STOCK_ASSETS_LOG_LEVEL", "WARNING")
    from stock_assets.storage.lake import CorruptPartition

    try:
        return args.handler(args)
    except UsageError as error:  # InvalidSymbol, InvalidDate, InvalidSpec, bad options
        print(f"stock-assets: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CorruptPartition as error:
        print(f"stock-assets: {error}; repair: {repair_command(error)}", file=sys.stderr)
        return EXIT_FAILED
