"""Commands over models: train, train-group, models list|show|delete, mlflow."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid

from stock_assets import settings
from stock_assets.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    echo,
    emit,
    launch,
    open_warehouse,
)
from stock_assets.core.symbols import normalize_symbol, normalize_symbols

SHOWN_METRICS = ["oos_hit_rate", "baseline_hit_rate", "oos_rmse", "baseline_rmse",
                 "oos_price_rmse_usd", "baseline_price_rmse_usd", "oos_accuracy",
                 "baseline_accuracy", "oos_roc_auc", "sim_best_sqn"]  # fmt: skip


def registry():
    from stock_assets.resources.mlflow import MlflowResource

    return MlflowResource(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", "")).open()


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def model_config(args: argparse.Namespace, **overrides: object) -> dict:
    """One `models` asset model entry from the command's options, checked before launch."""
    config = {
        "algorithm": args.algorithm, "target": args.target, "transform": args.transform,
        "horizon": args.horizon, "timeframe": args.timeframe, "fold": args.fold,
        "evaluation": args.evaluation, "context": normalize_symbols(_names(args.context))
        if args.context else [], "parent": args.parent or "",
        "features": _names(args.features), "exclude": _names(args.exclude),
        "auto_select": args.auto_select, **overrides,
    }  # fmt: skip
    from stock_assets.pipelines.specs import ModelEntry

    ModelEntry(**config).spec()  # an unknown algorithm, target, horizon... fails here
    return config


def check_inputs(symbol: str, context: list[str], parent: str | None) -> None:
    warehouse = open_warehouse()
    for name in (symbol, *context):
        if not warehouse.feature_days(name):
            role = "symbol" if name == symbol else "context symbol"
            raise UsageError(
                f"{role} {name} has no features: stock-assets features build {name} --start D"
            )
    if parent:
        registry().get(parent)


def train_models(symbol: str, configs: list[dict], force: bool = False) -> int:
    """Materialize the `models` asset of a symbol for these specs; print each model."""
    from stock_assets.jobs import launcher as launches

    check_inputs(symbol, configs[0].get("context", []), configs[0].get("parent") or None)
    outcome = launch(launches.models(symbol, configs, force=force))
    if not outcome.success:
        print(f"stock-assets: training {symbol} failed: {outcome.failure_reason()}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE if outcome.failed_on_usage() else EXIT_FAILED
    models = registry()
    metadata = outcome.materializations("models")[0].metadata
    ids = metadata["model_ids"].value
    rows = [_row(models.get(model_id)) for model_id in ids]
    recognized = metadata["recognized"].value
    echo(f"run {outcome.run_id[:8]}: {len(rows)} model(s) for {symbol} ({recognized} recognized "
         "by fingerprint, not trained again); every figure out of sample")  # fmt: skip
    emit(_frame(rows), "table")
    echo(f"MLflow:   {models.tracking_uri} (stock-assets mlflow, then compare the runs)")
    return EXIT_OK


def _row(model) -> dict:
    row = {"model_id": model.model_id, "mlflow_run_id": model.run_id,
           "algorithm": model.tags.get("algorithm"), "target": model.tags.get("target"),
           "evaluation": model.tags.get("evaluation")}  # fmt: skip
    row.update({k: model.metrics.get(k) for k in SHOWN_METRICS if k in model.metrics})
    return row


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def cmd_train(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    return train_models(symbol, [model_config(args)], force=args.force)


def cmd_train_group(args: argparse.Namespace) -> int:
    from stock_assets.core.training import GROUP_MODELS

    symbol = normalize_symbol(args.symbol)
    group = f"{symbol}-group-{uuid.uuid4().hex[:8]}"
    configs = [
        model_config(
            args,
            target=target,
            timeframe=timeframe,
            horizon=1,
            transform="log_return",
            group_id=group,
        )  # fmt: skip
        for target, timeframe in GROUP_MODELS
    ]
    echo(f"group {group}: next 1m open, next 1m close, next day's high and low")
    return train_models(symbol, configs, force=args.force)


def cmd_models(args: argparse.Namespace) -> int:
    models = registry()
    if args.action == "list":
        symbol = normalize_symbol(args.target) if args.target else None
        found = models.models(symbol)
        if not found:
            print("no models (stock-assets train SYMBOL --algorithm ...)", file=sys.stderr)
            return EXIT_FAILED
        if args.format == "json":
            emit(_frame([{**_row(m), "parent": m.parent, "group_id": m.tags.get("group_id")}
                         for m in found]), "json")  # fmt: skip
            return EXIT_OK
        for line in model_tree(found):
            echo(line)
        return EXIT_OK
    if args.action == "show":
        if not args.target:
            raise UsageError("models show needs a model id")
        model = models.get(args.target)
        details = {"model_id": model.model_id, "mlflow_run_id": model.run_id,
                   "url": models.run_url(model.symbol, model.run_id), "tags": model.tags,
                   "params": model.params, "metrics": model.metrics,
                   "top_features": models.top_features(model, 10)}  # fmt: skip
        if args.format == "json":
            sys.stdout.write(json.dumps(details, default=str) + "\n")
        else:
            for key, value in details.items():
                shown = (
                    json.dumps(value, default=str, indent=1)
                    if isinstance(value, dict | list)
                    else value
                )
                echo(f"{key}: {shown}")
        return EXIT_OK
    return _delete(models, args)


def _delete(models, args: argparse.Namespace) -> int:
    if args.all:
        found = models.models()
        if args.yes < 2:
            if not sys.stdin.isatty():
                raise UsageError(
                    "models delete --all removes every model: confirm with --yes --yes"
                )
            for question in ("Delete every model", "Really, every model of every symbol"):
                if input(f"{question} ({len(found)})? [y/N] ").strip().lower() != "y":
                    echo("nothing deleted")
                    return EXIT_OK
        for model in found:
            models.delete(model.model_id)
        echo(f"deleted {len(found)} model(s)")
        return EXIT_OK
    if not args.target:
        raise UsageError("models delete needs a model id (or --all)")
    models.delete(args.target)
    echo(f"deleted {args.target}")
    return EXIT_OK


def model_tree(found: list) -> list[str]:
    """Models as a tree: each under its parent, groups named on their members."""
    children: dict[str | None, list] = {}
    known = {m.model_id for m in found}
    for model in found:
        children.setdefault(model.parent if model.parent in known else None, []).append(model)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for model in children.get(parent, []):
            metrics = model.metrics
            figure = (f"oos_hit_rate {metrics['oos_hit_rate']:.4f} vs baseline "
                      f"{metrics.get('baseline_hit_rate', float('nan')):.4f}"
                      if "oos_hit_rate" in metrics else "")  # fmt: skip
            group = f"  [group {model.tags['group_id']}]" if model.tags.get("group_id") else ""
            lines.append(f"{'  ' * depth}{model.model_id}  {model.tags.get('target')}/"
                         f"{model.tags.get('timeframe')}  {figure}{group}")  # fmt: skip
            walk(model.model_id, depth + 1)

    walk(None, 0)
    return lines


def cmd_mlflow(args: argparse.Namespace) -> int:
    """The MLflow UI on the project's tracking store."""
    models = registry()
    models.client  # creates the SQLite store when it is new  # noqa: B018
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", models.tracking_uri,
               "--host", args.host, "--port", str(args.port), "--workers", "1"]  # fmt: skip
    echo(f"MLflow UI on http://{args.host}:{args.port} ({models.tracking_uri})")
    os.environ.setdefault("STOCK_ASSETS_HOME", str(settings.home()))
    os.execv(command[0], command)
    return EXIT_OK  # not reached
