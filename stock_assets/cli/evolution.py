"""Commands over the evolution: evolve, runs, runs show, promoted, lineage."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import uuid

from stock_assets.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    echo,
    emit,
    floats,
    launch,
    open_warehouse,
)
from stock_assets.cli.models import _names, registry
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

RUN_COLUMNS = [
    "evolution_id",
    "symbol",
    "status",
    "stop_reason",
    "current_generation",
    "max_generations",
    "best_model_id",
    "best_sqn",
    "promoted_model_id",
    "trials",
    "updated_at",
]
PROMOTED_COLUMNS = [
    "model_id",
    "symbol",
    "sqn",
    "profit_factor",
    "trades",
    "weekly_consistency",
    "deflated_sharpe",
    "trials",
    "threshold",
    "regime",
    "generation",
    "evolution_id",
    "registered_model",
    "registered_version",
    "promoted_at",
]


def _range(text: str | None, name: str) -> dict[str, float]:
    """`3:5` -> {name_min: 3, name_max: 5}; `3:` or `:5` sets one bound."""
    if not text:
        return {}
    low, sep, high = text.partition(":")
    if not sep:
        raise UsageError(f"--{name.replace('_', '-')} {text!r}: MIN:MAX, e.g. 3:5")
    out = {}
    for bound, value in (("min", low), ("max", high)):
        if value.strip():
            out[f"{name}_{bound}"] = floats(value)[0]
    return out


def evolution_config(args: argparse.Namespace) -> dict:
    """The EvolutionSpec fields from the command's options (checked by the run's first
    step and, for what needs no data, here)."""
    from stock_assets.pipelines.specs import EvolutionSpec

    if not args.symbol:
        raise UsageError("evolve needs a SYMBOL (or --resume EVOLUTION_ID)")
    config: dict = {"symbol": normalize_symbol(args.symbol)}
    if args.context:
        config["context"] = normalize_symbols(_names(args.context))
    if args.algorithm:
        config["algorithms"] = _names(args.algorithm)
    for name in (
        "target",
        "transform",
        "horizon",
        "timeframe",
        "fold",
        "refit_every",
        "sampler",
        "seed",
        "parent",
    ):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if args.generations is not None:
        config["max_generations"] = args.generations
    if args.candidates is not None:
        config["candidates"] = args.candidates
    if args.seed_features:
        config["seed_features"] = _names(args.seed_features)
    if args.thresholds:
        config["thresholds"] = floats(args.thresholds)
    if args.regime:
        config["regime_configs"] = ["" if r == "none" else r for r in args.regime]
    if args.fill_delay:
        config["fill_delays"] = [int(v) for v in floats(args.fill_delay)]
    for name in ("sqn", "profit_factor", "trades"):
        config |= _range(getattr(args, name), name)
    if "trades_min" in config or "trades_max" in config:
        config |= {k: int(v) for k, v in config.items() if k.startswith("trades_")}
    if args.weekly_consistency is not None:
        config["weekly_consistency_max"] = args.weekly_consistency
    if args.dsr is not None:
        config["dsr_min"] = args.dsr
    if args.no_crossover:
        config["crossover"] = False
    if args.shap_rows is not None:
        config["shap_rows"] = args.shap_rows
    try:
        EvolutionSpec(**config).check()
    except ValueError as error:  # pydantic: a value of the wrong type
        raise UsageError(str(error).splitlines()[0]) from None
    return config


def cmd_evolve(args: argparse.Namespace) -> int:
    from stock_assets.jobs import launcher as launches

    warehouse = open_warehouse()
    if args.resume:
        stored = warehouse.catalog.read(
            "SELECT config FROM evolution_runs WHERE evolution_id = ?", [args.resume]
        )
        if stored.empty:
            raise UsageError(f"evolution {args.resume!r}: no such evolution (stock-assets runs)")
        config = {**json.loads(stored["config"].iloc[0]), "evolution_id": args.resume}
    else:
        config = evolution_config(args)
        for name in (config["symbol"], *config.get("context", [])):
            if not warehouse.feature_days(name):
                role = "symbol" if name == config["symbol"] else "context symbol"
                raise UsageError(
                    f"{role} {name} has no features: stock-assets features build {name} --start D"
                )
        config["evolution_id"] = str(uuid.uuid4())
    parent_sqn = None
    if config.get("parent"):
        from stock_assets.pipelines.evolution import parent_record

        parent = registry().get(config["parent"])  # an unknown parent fails here
        parent_sqn = parent_record(warehouse, parent)[0]
    evolution_id = config["evolution_id"]
    echo(
        f"evolution {evolution_id}: {config['symbol']}, up to "
        f"{config.get('max_generations', 4)} generations"
    )
    done = threading.Event()
    since = dt.datetime.now(dt.UTC)
    watcher = threading.Thread(
        target=_progress, args=(warehouse, evolution_id, since, done), daemon=True
    )
    watcher.start()
    try:
        outcome = launch(launches.evolve(config, parent_sqn))
    finally:
        done.set()
        watcher.join()
    if not outcome.success:
        print(
            f"stock-assets: evolution {evolution_id} failed: {outcome.failure_reason()} "
            f"(resume: stock-assets evolve --resume {evolution_id})",
            file=sys.stderr,
        )
        return EXIT_USAGE if outcome.failed_on_usage() else EXIT_FAILED
    return _show_run(warehouse, evolution_id, "table")


def _progress(warehouse, evolution_id: str, since, done: threading.Event) -> None:
    """Print each generation as this run records it (the run may be in another process)."""
    shown = -1
    while True:
        finished = done.wait(1.0)
        try:
            rows = warehouse.catalog.read(
                "SELECT generation, count(*) AS n, count(*) FILTER (WHERE reused) AS reused, "
                "max(sqn) AS sqn FROM evolution_log WHERE evolution_id = ? AND created_at >= ? "
                "GROUP BY generation ORDER BY generation",
                [evolution_id, since],
            )
        except Exception:  # a mirror being replaced: try again on the next tick
            rows = None
        for row in [] if rows is None else rows.itertuples():
            if row.generation > shown:
                print(
                    f"  generation {row.generation + 1}: {row.n} candidates "
                    f"({row.reused} reused), best SQN {row.sqn:.3g}",
                    file=sys.stderr,
                )
                shown = row.generation
        if finished:
            return


def _show_run(warehouse, evolution_id: str, fmt: str) -> int:
    from stock_assets.pipelines.lineage import generation_summary

    run = warehouse.catalog.read(
        "SELECT * FROM evolution_runs WHERE evolution_id = ?", [evolution_id]
    )
    if run.empty:
        raise UsageError(f"evolution {evolution_id!r}: no such evolution (stock-assets runs)")
    top = generation_summary(warehouse, evolution_id)
    if fmt == "json":
        record = run.iloc[0].to_dict()
        record["config"] = json.loads(record["config"])
        record["generations"] = json.loads(top.to_json(orient="records"))
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        return EXIT_OK
    row = run.iloc[0]
    echo(
        f"evolution {evolution_id} ({row['symbol']}): {row['status']}, stopped by "
        f"{row['stop_reason'] or '-'} after generation {int(row['current_generation']) + 1} "
        f"of {row['max_generations']}, {row['trials']} trials"
    )
    echo(f"reason: {row['reason']}")
    echo("top 3 per generation (figures: out-of-sample simulations on the fold's test rows):")
    emit(top, "table")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    warehouse = open_warehouse()
    if args.action == "show":
        if not args.evolution_id:
            raise UsageError("runs show needs an evolution id (stock-assets runs)")
        return _show_run(warehouse, args.evolution_id, args.format)
    sql, params = f"SELECT {', '.join(RUN_COLUMNS)} FROM evolution_runs", []
    if args.status:
        sql += " WHERE status = ?"
        params.append(args.status.upper())
    rows = warehouse.catalog.read(sql + " ORDER BY updated_at DESC LIMIT ?", [*params, args.limit])
    emit(rows, args.format)
    return EXIT_OK


def cmd_promoted(args: argparse.Namespace) -> int:
    sql, params = f"SELECT {', '.join(PROMOTED_COLUMNS)} FROM promoted_models", []
    if args.symbol:
        sql += " WHERE symbol = ?"
        params.append(normalize_symbol(args.symbol))
    rows = open_warehouse().catalog.read(sql + " ORDER BY sqn DESC LIMIT ?", [*params, args.limit])
    emit(rows, args.format)
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace) -> int:
    from stock_assets.pipelines.lineage import lineage

    steps = lineage(open_warehouse(), args.model_id, registry())
    if args.format == "json":
        sys.stdout.write(json.dumps(steps, default=str) + "\n")
        return EXIT_OK
    for depth, step in enumerate(steps):
        where = (
            f"generation {step['generation'] + 1} of {step['evolution_id'][:8]}, "
            f"{step['origin']}, {step['features']} features, SQN {step['sqn']:.3g}"
            if step["evolution_id"]
            else "trained outside an evolution"
        )
        echo(f"{'  ' * depth}{'<- ' if depth else ''}{step['model_id']}  ({where})")
        if step["pruned"]:
            names = ", ".join(sorted(step["pruned"]))
            echo(f"{'  ' * depth}   pruned from its parent ({len(step['pruned'])}): {names}")
    return EXIT_OK if steps else EXIT_FAILED


def add_evolution_commands(add) -> None:
    evolve = add(
        "evolve",
        cmd_evolve,
        "Evolve models for a symbol (a Dagster run): train, "
        "simulate, promote the robust, prune and repeat.",
    )
    evolve.add_argument("symbol", metavar="SYMBOL", nargs="?")
    evolve.add_argument("--context", help="up to 3 context symbols, e.g. SPY,QQQ")
    evolve.add_argument("--algorithm", help="comma-separated (default xgboost_regressor)")
    evolve.add_argument("--generations", type=int, help="at most (default 4, up to 10)")
    evolve.add_argument("--candidates", type=int, help="per generation (default 5)")
    evolve.add_argument("--sampler", choices=["random", "tpe", "nsga2"])
    evolve.add_argument("--parent", help="start from this model's features and parameters")
    evolve.add_argument("--seed-features", help="generation 0's features, comma-separated")
    evolve.add_argument("--target", choices=["close", "open", "high", "low"])
    evolve.add_argument("--transform", choices=["log_return", "pct_change", "price"])
    evolve.add_argument("--horizon", type=int)
    evolve.add_argument("--timeframe")
    evolve.add_argument("--fold", help="fold column (default fold_30_5)")
    evolve.add_argument("--refit-every", type=int, help="test episodes per walk-forward fit")
    evolve.add_argument("--thresholds", help="comma-separated (default 0,0.0001,0.0003,0.0005)")
    evolve.add_argument(
        "--regime",
        action="append",
        help="whitelist per grid chunk, e.g. regime_gmm=0 (repeatable; none: no gating)",
    )
    evolve.add_argument("--fill-delay", help="bars, comma-separated (default 4)")
    evolve.add_argument("--sqn", help="MIN:MAX (default 3:5)")
    evolve.add_argument("--profit-factor", help="MIN:MAX (default 2:4)")
    evolve.add_argument("--trades", help="MIN:MAX (default 200:10000)")
    evolve.add_argument("--weekly-consistency", type=float, help="below this (default 0.5)")
    evolve.add_argument("--dsr", type=float, help="deflated Sharpe probability (default 0.95)")
    evolve.add_argument("--no-crossover", action="store_true")
    evolve.add_argument("--shap-rows", type=int, help="rows SHAP explains per candidate")
    evolve.add_argument("--seed", type=int)
    evolve.add_argument(
        "--resume",
        metavar="EVOLUTION_ID",
        help="resume a stopped evolution (its rows rewritten, models reused)",
    )

    runs = add("runs", cmd_runs, "Evolution runs (runs [--status S] | runs show EVOLUTION_ID).")
    runs.add_argument("action", nargs="?", default="list", choices=["list", "show"])
    runs.add_argument("evolution_id", nargs="?", metavar="EVOLUTION_ID")
    runs.add_argument("--status", help="RUNNING, COMPLETED or PROMOTED")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--format", default="table", choices=["table", "csv", "json"])

    promoted = add("promoted", cmd_promoted, "Promoted models, best SQN first.")
    promoted.add_argument("--symbol")
    promoted.add_argument("--limit", type=int, default=50)
    promoted.add_argument("--format", default="table", choices=["table", "csv", "json"])

    lineage = add("lineage", cmd_lineage, "A model's ancestry back to its seed.")
    lineage.add_argument("model_id", metavar="MODEL_ID")
    lineage.add_argument("--format", default="table", choices=["table", "json"])
