"""Research views in the Dagster UI: the leaderboard, the model tree, the hall of fame and
the feature preview, each an asset whose metadata is the view (tables, markdown, plots).

They read the warehouse and MLflow and write nothing else, so materializing one is cheap
and safe at any time. How they stay current (declarative automation, evaluated by
`research_automation_sensor`, which ships running):

- `leaderboard`, `model_tree`, `feature_preview` (per symbol): `eager`, so a new
  materialization of `simulations`, `models` or any day of `features` of a symbol
  refreshes that symbol's view once the upstream run is done. Runs that write `sim_runs`
  or MLflow without materializing those assets (`grid_search_job`, `evolution_job`) are
  picked up at the next upstream materialization, or by materializing the view by hand.
- `hall_of_fame`: the evolution job is an op job (no asset to depend on), so the view is
  refreshed on a cron (`on_cron`, every 15 minutes); materialize it by hand after an
  evolution to see it at once.
"""

import datetime as dt
import json
import math
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from stock_assets.assets.partitions import symbols_partitions
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource

if TYPE_CHECKING:
    import pandas as pd

    from stock_assets.storage.models import LoggedModel, ModelRegistry
    from stock_assets.storage.warehouse import Warehouse

GROUP = "research"
HALL_OF_FAME_CRON = "*/15 * * * *"
COMPARISON_BASELINES = ("baseline:buy_and_hold", "baseline:random")  # rows, not predictors
MODEL_TREE_METRICS = ["oos_hit_rate", "baseline_hit_rate", "oos_rmse", "baseline_rmse",
                      "oos_accuracy", "baseline_accuracy", "sim_best_sqn"]  # fmt: skip
SHAP_SHOWN = 5  # the newest models' SHAP plots inline (each is ~50 kB of metadata)
PROMOTED_COLUMNS = ["model_id", "symbol", "evolution_id", "generation", "sqn", "profit_factor",
                    "trades", "weekly_consistency", "sharpe", "total_return",
                    "excess_vs_buy_hold", "excess_vs_random", "deflated_sharpe", "trials",
                    "lineage_depth", "threshold", "regime", "registered_model",
                    "registered_version", "mlflow_run_id", "promoted_at"]  # fmt: skip
EVOLUTION_COLUMNS = ["evolution_id", "symbol", "status", "stop_reason", "current_generation",
                     "max_generations", "best_model_id", "best_sqn", "promoted_model_id",
                     "trials", "created_at", "updated_at"]  # fmt: skip

# eager, but a symbol's view must not wait for every trading day of its features to exist
EAGER_ALLOW_MISSING = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("eager_allow_missing")
)


# --- turning frames into what the UI shows ---------------------------------------------


def cell(value: object) -> str | int | float | bool | None:
    """A value a table record can hold: NaN, NaT and NULL empty, times as ISO text."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    return None if text in ("NaT", "<NA>", "nan") else text


def _column_type(kind: object) -> str:
    name = str(kind).lower()
    if name in ("bool", "boolean"):
        return "bool"
    if "int" in name:
        return "int"
    if "float" in name or "double" in name:
        return "float"
    return "string"


def frame_table(frame: "pd.DataFrame") -> dg.MetadataValue:
    """A frame as a table in the UI: every column, one record per row."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(str(c), _column_type(t)) for c, t in frame.dtypes.items()]
    )
    records = [
        dg.TableRecord({str(k): cell(v) for k, v in row.items()})
        for row in frame.to_dict(orient="records")
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


# --- leaderboard -------------------------------------------------------------------------


class LeaderboardConfig(dg.Config):
    by: str = Field(default="sqn", description="The metric that ranks the rows (best first).")
    limit: int = Field(default=20, description="How many rows of the symbol are shown.")


def replay_best(store: "Warehouse", registry: "ModelRegistry", board: "pd.DataFrame") -> dict:
    """The equity curve of the best row whose model can be simulated again: its model's
    predictions over the symbol's stored features, through that row's parameters only.
    {} when every row is a comparison baseline."""
    from stock_assets.core.sim_results import plot_equity
    from stock_assets.pipelines.models import TrainedModels
    from stock_assets.pipelines.simulations import load_features, run_grid
    from stock_assets.pipelines.specs import GridSpec

    candidates = board[~board["model_id"].isin(COMPARISON_BASELINES)]
    if candidates.empty:
        return {}
    best = candidates.iloc[0]
    frame = load_features(store, best["symbol"])
    fold = "fold_30_5"
    counts = {"all": len(frame)} | (
        {s: int((frame[fold] == s).sum()) for s in ("test", "train")} if fold in frame else {}
    )
    split = next((s for s, n in counts.items() if n == best["bars"]), "all")
    regime = (
        f"{best['regime_column']}={best['regime_allowed']}" if cell(best["regime_column"]) else ""
    )
    spec = GridSpec(
        models=[best["model_id"]], thresholds=[best["threshold"]], zscore=[bool(best["zscore"])],
        volnorm=[bool(best["volnorm"])], regimes=[regime], bot=[bool(best["bot"])],
        fill_delays=[int(best["fill_delay"])], fee_per_trade=best["fee_per_trade"],
        fee_bps=best["fee_bps"], fractional=bool(best["fractional"]), split=split, fold=fold,
    )  # fmt: skip
    predictor = TrainedModels(registry).predictor(best["symbol"], best["model_id"])
    result = run_grid(frame, best["symbol"], predictor, spec).result
    title = f"{best['symbol']} {best['model_id']}: the leaderboard's best ({best['run_id']})"
    png = plot_equity(result.ts, result.equity(0).to_numpy(),
                      result.buy_hold_equity(0).to_numpy(), title=title)  # fmt: skip
    replayed = float(result.table()["total_return"].iloc[0])
    return {"row": best, "png": png, "total_return": replayed, "split": split}


@dg.asset(
    partitions_def=symbols_partitions,
    deps=["simulations"],
    group_name=GROUP,
    kinds={"duckdb"},
    automation_condition=dg.AutomationCondition.eager(),
)
def leaderboard(
    context: dg.AssetExecutionContext,
    config: LeaderboardConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """The symbol's best simulations from `sim_runs` (every parameter and metric a column,
    excess over buy-and-hold and random included) and the best row's equity curve.

    Partitioned by symbol; refreshed automatically after each `simulations` materialization.
    """
    from stock_assets.assets.reporting import png_markdown
    from stock_assets.core.symbols import check_symbol_key

    symbol = check_symbol_key(context.partition_key)
    store, registry = warehouse.open(), mlflow.open()
    board = store.catalog.leaderboard(config.by, symbol, config.limit)
    metadata: dict[str, dg.MetadataValue] = {
        "rows": dg.MetadataValue.int(len(board)),
        "ranked_by": dg.MetadataValue.text(config.by),
        "leaderboard": frame_table(board),
    }
    best = replay_best(store, registry, board) if len(board) else {}
    if best:
        row = best["row"]
        metadata |= {
            "best_run_id": dg.MetadataValue.text(row["run_id"]),
            "best_model_id": dg.MetadataValue.text(row["model_id"]),
            "best_total_return": dg.MetadataValue.float(float(row["total_return"])),
            "best_replayed_total_return": dg.MetadataValue.float(best["total_return"]),
            "best_equity": png_markdown("equity", best["png"]),
        }
        if cell(row["mlflow_run_id"]):
            url = registry.run_url(symbol, row["mlflow_run_id"])
            metadata["best_mlflow"] = dg.MetadataValue.url(url)
    context.log.info(f"{symbol}: {len(board)} leaderboard row(s) by {config.by}")
    return dg.MaterializeResult(metadata=metadata)


# --- model tree --------------------------------------------------------------------------


def tree_order(found: "list[LoggedModel]") -> "list[tuple[LoggedModel, int]]":
    """Models with their depth, each under its parent (a parent not in the list: a root)."""
    known = {m.model_id for m in found}
    children: dict[str | None, list[LoggedModel]] = {}
    for model in found:
        children.setdefault(model.parent if model.parent in known else None, []).append(model)
    ordered: list[tuple[LoggedModel, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for model in children.get(parent, []):
            ordered.append((model, depth))
            walk(model.model_id, depth + 1)

    walk(None, 0)
    return ordered


def model_tree_rows(registry: "ModelRegistry", symbol: str) -> list[dict]:
    """One row per model of the symbol in tree order: lineage, group, figures, MLflow link."""
    found = registry.models(symbol)
    rows = []
    for model, depth in tree_order(found):
        tags = model.tags
        rows.append(
            {"model_id": model.model_id, "depth": depth, "parent": model.parent,
             "children": ",".join(m.model_id for m in found if m.parent == model.model_id),
             "group_id": tags.get("group_id"), "algorithm": tags.get("algorithm"),
             "target": tags.get("target"), "timeframe": tags.get("timeframe"),
             "evaluation": tags.get("evaluation"), "generation": tags.get("generation"),
             "evolution_id": tags.get("evolution_id"),
             **{k: model.metrics.get(k) for k in MODEL_TREE_METRICS},
             "mlflow_run_id": model.run_id, "mlflow_url": registry.run_url(symbol, model.run_id)}
        )  # fmt: skip
    return rows


def tree_markdown(rows: list[dict]) -> str:
    """The tree as nested bullets, each model a link to its MLflow run."""
    lines = []
    for row in rows:
        hit = row["oos_hit_rate"]
        figure = f" hit rate {hit:.4f} (baseline {row['baseline_hit_rate']:.4f})" if hit else ""
        group = f" [group {row['group_id']}]" if row["group_id"] else ""
        lines.append(f"{'  ' * row['depth']}- [{row['model_id']}]({row['mlflow_url']}) "
                     f"{row['target']}/{row['timeframe']}{figure}{group}")  # fmt: skip
    return "\n".join(lines) or "No models yet (stock-assets train SYMBOL --algorithm A)."


@dg.asset(
    partitions_def=symbols_partitions,
    deps=["models"],
    group_name=GROUP,
    kinds={"mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
)
def model_tree(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """The symbol's models in MLflow as a tree of parents, children and groups, with their
    out-of-sample figures, MLflow links and SHAP summaries.

    Partitioned by symbol; refreshed automatically after each `models` materialization.
    """
    import pandas as pd

    from stock_assets.assets.reporting import png_markdown
    from stock_assets.core.symbols import check_symbol_key

    symbol = check_symbol_key(context.partition_key)
    registry = mlflow.open()
    rows = model_tree_rows(registry, symbol)
    metadata: dict[str, dg.MetadataValue] = {
        "models": dg.MetadataValue.int(len(rows)),
        "groups": dg.MetadataValue.int(len({r["group_id"] for r in rows if r["group_id"]})),
        "tree": dg.MetadataValue.md(tree_markdown(rows)),
        "model_table": frame_table(pd.DataFrame(rows, columns=model_tree_columns())),
    }
    for row in rows[::-1][:SHAP_SHOWN]:
        png = registry.shap_png(row["mlflow_run_id"])
        if png:
            metadata[f"{row['model_id']}/shap"] = png_markdown("shap", png)
    return dg.MaterializeResult(metadata=metadata)


def model_tree_columns() -> list[str]:
    return ["model_id", "depth", "parent", "children", "group_id", "algorithm", "target",
            "timeframe", "evaluation", "generation", "evolution_id", *MODEL_TREE_METRICS,
            "mlflow_run_id", "mlflow_url"]  # fmt: skip


# --- hall of fame ------------------------------------------------------------------------


def hall_of_fame_frames(store: "Warehouse") -> "tuple[pd.DataFrame, pd.DataFrame]":
    """Promoted models best SQN first, with their lineage depth (ancestors back to the
    seed: 0 for a seed); evolution runs newest first."""
    promoted = store.catalog.read(
        "SELECT * FROM promoted_models ORDER BY sqn DESC NULLS LAST, promoted_at DESC, model_id"
    )
    promoted["lineage_depth"] = [len(json.loads(chain)) - 1 for chain in promoted["lineage"]]
    runs = store.catalog.read("SELECT * FROM evolution_runs ORDER BY created_at DESC, evolution_id")
    return promoted[PROMOTED_COLUMNS], runs[EVOLUTION_COLUMNS]


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "mlflow"},
    automation_condition=dg.AutomationCondition.on_cron(HALL_OF_FAME_CRON),
)
def hall_of_fame(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The promoted models of every evolution (Deflated Sharpe, trials, lineage depth, the
    registered version) and the evolution runs that searched for them.

    Not partitioned; `evolution_job` is an op job, so this view refreshes every 15 minutes.
    """
    store, registry = warehouse.open(), mlflow.open()
    promoted, runs = hall_of_fame_frames(store)
    metadata: dict[str, dg.MetadataValue] = {
        "promoted": dg.MetadataValue.int(len(promoted)),
        "evolutions": dg.MetadataValue.int(len(runs)),
        "hall_of_fame": frame_table(promoted),
        "evolution_runs": frame_table(runs),
    }
    for row in promoted.head(SHAP_SHOWN).itertuples():
        metadata[f"{row.model_id}/mlflow"] = dg.MetadataValue.url(
            registry.run_url(row.symbol, row.mlflow_run_id)
        )
    return dg.MaterializeResult(metadata=metadata)


# --- feature preview ---------------------------------------------------------------------


class FeaturePreviewConfig(dg.Config):
    rows: int = Field(default=10, description="How many of the newest feature rows are shown.")


@dg.asset(
    partitions_def=symbols_partitions,
    deps=[
        dg.AssetDep(
            "features",
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                partition_dimension_name="symbol"
            ),
        )
    ],
    group_name=GROUP,
    kinds={"parquet"},
    automation_condition=EAGER_ALLOW_MISSING,
)
def feature_preview(
    context: dg.AssetExecutionContext, config: FeaturePreviewConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The newest rows of the symbol's feature table, every column, as the feature viewer
    shows them.

    Partitioned by symbol; refreshed automatically after any day of its features is built.
    """
    from stock_assets.assets.reporting import column_schema
    from stock_assets.core.symbols import check_symbol_key

    symbol = check_symbol_key(context.partition_key)
    store = warehouse.open()
    newest = store.latest_features(symbol, config.rows)
    if newest is None:
        raise dg.Failure(f"no features stored for {symbol}: stock-assets features build {symbol}")
    days = store.feature_days(symbol)
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(len(newest)),
            "days": dg.MetadataValue.int(len(days)),
            "first_day": dg.MetadataValue.text(days[0].isoformat()),
            "last_day": dg.MetadataValue.text(days[-1].isoformat()),
            "preview": frame_table(newest),
            "dagster/column_schema": column_schema(newest),
        }
    )


research_automation_sensor = dg.AutomationConditionSensorDefinition(
    "research_automation_sensor",
    target=dg.AssetSelection.groups(GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps the research views current: evaluates their automation conditions "
    "(eager after simulations, models and features; the hall of fame every 15 minutes).",
)

RESEARCH_ASSETS = [leaderboard, model_tree, hall_of_fame, feature_preview]
