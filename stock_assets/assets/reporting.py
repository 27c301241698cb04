"""What assets and ops show in the Dagster UI: metadata built from pipeline results."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

    from stock_assets.pipelines.simulations import GridRun

TOP_COLUMNS = ["combo", "threshold", "zscore", "volnorm", "regime_column", "regime_allowed",
               "fill_delay", "trades", "total_return", "excess_vs_buy_hold", "sqn"]  # fmt: skip


def partition_metadata(
    partitions: int, totals: dict[str, object], **shown: object
) -> dict[str, object]:
    """Metadata of a materialization. Dagster repeats a ranged run's metadata on every
    partition it materialized (dagster#18123), so there the `totals` are named `run_*`
    (the run's, beside `run_partitions`); a one-partition run shows them plainly. `shown`
    (previews, schemas, per-partition tables) keep their names."""
    values = {
        name: dg.MetadataValue.int(v) if isinstance(v, int) else v for name, v in totals.items()
    }
    if partitions != 1:
        values = {"run_partitions": dg.MetadataValue.int(partitions)} | {
            f"run_{name}": value for name, value in values.items()
        }
    return values | shown


def png_markdown(name: str, png: bytes) -> dg.MetadataValue:
    """A PNG shown inline in the UI."""
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})")


def column_schema(frame: pd.DataFrame) -> dg.MetadataValue:
    """The columns of a frame and their types, as a table schema."""
    return dg.MetadataValue.table_schema(
        dg.TableSchema(
            columns=[dg.TableColumn(str(name), str(kind)) for name, kind in frame.dtypes.items()]
        )
    )


def grid_metadata(run: GridRun, home: Path) -> dict[str, dg.MetadataValue]:
    """A grid run: the plots inline and as files, the top combinations."""
    paths = run.save_plots(home)
    rows = run.model_rows
    top = rows.sort_values("sqn", ascending=False).head(5)
    out: dict[str, dg.MetadataValue] = {
        "grid_id": dg.MetadataValue.text(run.grid_id),
        "combinations": dg.MetadataValue.int(len(rows)),
        "top_by_sqn": dg.MetadataValue.md(top[TOP_COLUMNS].to_markdown(index=False)),
    }
    for name, png in run.plots.items():
        out[f"{name}_plot"] = png_markdown(name, png)
        out[f"{name}_png"] = dg.MetadataValue.path(str(paths[name]))
    return out


KEY_METRICS = ["oos_hit_rate", "baseline_hit_rate", "oos_rmse", "baseline_rmse",
               "oos_price_rmse_usd", "baseline_price_rmse_usd", "oos_accuracy",
               "baseline_accuracy", "oos_roc_auc"]  # fmt: skip


def models_metadata(records: list) -> dict[str, dg.MetadataValue]:
    """One row per model with its MLflow link, out-of-sample metrics beside the naive
    baseline's; the SHAP summary plots inline."""
    import pandas as pd

    rows = []
    for record in records:
        summary = record.summary()
        row = {"model": f"[{record.model_id}]({record.url})", "algorithm": summary["algorithm"],
               "target": summary["target"], "reused": summary["reused"]}  # fmt: skip
        row.update({k: round(summary[k], 6) for k in KEY_METRICS if k in summary})
        rows.append(row)
    out: dict[str, dg.MetadataValue] = {
        "models": dg.MetadataValue.int(len(records)),
        "model_ids": dg.MetadataValue.json([r.model_id for r in records]),
        "trained": dg.MetadataValue.int(sum(not r.reused for r in records)),
        "recognized": dg.MetadataValue.int(sum(r.reused for r in records)),
        "summary": dg.MetadataValue.md(
            "All figures out of sample (walk-forward unless the model says `folds`), beside "
            "the naive baseline (zero return, majority class).\n\n"
            + pd.DataFrame(rows).to_markdown(index=False)
        ),
    }
    for record in records:
        if record.trained is not None and record.trained.shap_png:
            out[f"{record.model_id}/shap"] = png_markdown("shap", record.trained.shap_png)
        out[f"{record.model_id}/mlflow"] = dg.MetadataValue.url(record.url)
    return out


EVOLUTION_COLUMNS = ["candidate", "child_model_id", "origin", "algorithm", "reused", "sqn",
                     "profit_factor", "trades", "max_drawdown", "weekly_consistency",
                     "deflated_sharpe", "pareto", "promoted", "reason"]  # fmt: skip


def evolution_metadata(selection, home: Path) -> dict[str, dg.MetadataValue]:
    """A generation: its candidates judged (figures from out-of-sample simulations on the
    fold's test rows), reuse and trial counts, why it stops, the leader's equity curve."""
    frame = selection.candidates
    out: dict[str, dg.MetadataValue] = {
        "generation": dg.MetadataValue.int(selection.generation + 1),
        "candidates": dg.MetadataValue.md(
            "Out of sample: each candidate's best simulation of its walk-forward predictions "
            "on the fold's test rows. `pareto`: not dominated on SQN x profit factor x "
            "drawdown.\n\n" + frame[EVOLUTION_COLUMNS].to_markdown(index=False)
        ),
        "trained": dg.MetadataValue.int(int((~frame["reused"]).sum())),
        "reused_models": dg.MetadataValue.int(selection.reused),
        "trials_so_far": dg.MetadataValue.int(selection.trials),
        "stop_reason": dg.MetadataValue.text(selection.stop_reason or "continue"),
        "reason": dg.MetadataValue.text(selection.reason),
    }
    if selection.promoted:
        out["promoted_model"] = dg.MetadataValue.text(selection.promoted["model_id"])
    for name, png in selection.plots.items():
        out[f"leader_{name}"] = png_markdown(name, png)
    return out
