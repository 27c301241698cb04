"""The research views (leaderboard, model tree, hall of fame, feature preview): their
metadata holds exactly the catalog's and MLflow's rows, and they refresh on their own."""

from __future__ import annotations

import datetime as dt
import json
import math

import dagster as dg
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.folds import FoldConfig
from stock_assets.core.tables import SIM_RUNS
from stock_assets.pipelines.features import build_features, build_regimes
from stock_assets.pipelines.ingest import ingest_and_derive
from stock_assets.pipelines.models import train
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.storage.warehouse import Warehouse

DAYS = calendar.sessions(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
SMALL = {"thresholds": [0.0, 0.001], "zscore": [False], "volnorm": [False],
         "regimes": ["", "regime_gmm=0"], "fill_delays": [0, 4]}  # fmt: skip
RESOURCES = {"warehouse": WarehouseResource(), "mlflow": MlflowResource()}
PNG_MARKDOWN = "](data:image/png;base64,iVBORw0KGgo"  # an inline PNG's signature


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A home with SPY, QQQ, VIXY bars, SPY features (fold_5_2), a ridge model and its
    lightgbm child in one group, the SPY simulations asset materialized on a small grid."""
    from stock_assets.core.training import ModelSpec
    from stock_assets.definitions import defs

    home = tmp_path_factory.mktemp("research") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOCK_ASSETS_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        # mlflow.set_tracking_uri (in ModelRegistry.log) exports MLFLOW_TRACKING_URI: set
        # then delete it, so the patch removes what training leaves behind
        patch.setenv("MLFLOW_TRACKING_URI", "unset")
        patch.delenv("MLFLOW_TRACKING_URI")
        warehouse = Warehouse(home)
        ingest_and_derive(
            warehouse, [SyntheticProvider()], {s: DAYS for s in ("SPY", "QQQ", "VIXY")}
        )
        build_regimes(warehouse, DAYS)
        build_features(warehouse, "SPY", DAYS, [FoldConfig(train_days=5, test_days=2)])
        registry = MlflowResource().open()
        ridge = ModelSpec(algorithm="ridge_regression", fold="fold_5_2")
        (parent,) = train(warehouse, registry, "SPY", ridge, group_id="SPY-group-1")
        train(warehouse, registry, "SPY", ModelSpec(algorithm="lightgbm_regressor", fold="fold_5_2",
              exclude=("rsi_14",)), parent=parent.model_id, group_id="SPY-group-1")  # fmt: skip
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("symbols", ["SPY"])
            assert dg.materialize(
                [defs.get_assets_def("simulations")], partition_key="SPY", instance=instance,
                resources=RESOURCES, run_config={"ops": {"simulations": {"config": SMALL}}},
            ).success  # fmt: skip
            yield home, warehouse, registry, defs, instance


def materialize(lab, name: str, partition: str | None = "SPY", config: dict | None = None):
    _, _, _, defs, instance = lab
    run_config = {"ops": {name: {"config": config}}} if config else None
    result = dg.materialize(
        [defs.get_assets_def(name)], partition_key=partition, instance=instance,
        resources=RESOURCES, run_config=run_config,
    )  # fmt: skip
    assert result.success
    return result.asset_materializations_for_node(name)[0].metadata


def shown(value):
    """What a table cell shows for a value read from the catalog."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def records(value: dg.TableMetadataValue) -> list[dict]:
    return [dict(record.data) for record in value.records]


def expected(frame: pd.DataFrame) -> list[dict]:
    return [{k: shown(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def test_leaderboard_shows_the_catalogs_rows_and_the_best_rows_equity_curve(lab):
    home, warehouse, registry, _, _ = lab
    metadata = materialize(lab, "leaderboard", config={"by": "sqn", "limit": 12})
    board = warehouse.catalog.leaderboard("sqn", "SPY", 12)
    assert len(board) == 12 and metadata["rows"].value == 12
    table = metadata["leaderboard"].value
    assert [c.name for c in table.schema.columns] == list(SIM_RUNS.column_names)
    assert records(table) == expected(board)
    assert {"excess_vs_buy_hold", "excess_vs_random", "threshold", "fill_delay"} <= set(
        table.records[0].data
    )
    best = board[~board["model_id"].isin(["baseline:buy_and_hold", "baseline:random"])].iloc[0]
    assert metadata["best_run_id"].value == best["run_id"]
    assert metadata["best_model_id"].value == best["model_id"]
    # the plotted curve is that row simulated again: same data, same figure
    assert metadata["best_replayed_total_return"].value == pytest.approx(
        best["total_return"], abs=1e-12
    )
    assert metadata["best_total_return"].value == best["total_return"]
    assert metadata["best_equity"].value.startswith("![equity" + PNG_MARKDOWN)
    if best["mlflow_run_id"]:
        assert metadata["best_mlflow"].value == registry.run_url("SPY", best["mlflow_run_id"])


def test_model_tree_shows_parents_children_groups_links_and_shap(lab):
    _, _, registry, _, _ = lab
    metadata = materialize(lab, "model_tree")
    parent, child = registry.models("SPY")
    assert child.parent == parent.model_id
    assert metadata["models"].value == 2 and metadata["groups"].value == 1
    rows = records(metadata["model_table"].value)
    shape = [(r["model_id"], r["depth"], r["parent"], r["children"], r["group_id"]) for r in rows]
    assert shape == [
        (parent.model_id, 0, None, child.model_id, "SPY-group-1"),
        (child.model_id, 1, parent.model_id, "", "SPY-group-1"),
    ]  # fmt: skip
    for row, model in zip(rows, (parent, child), strict=True):
        assert row["mlflow_run_id"] == model.run_id
        assert row["mlflow_url"] == registry.run_url("SPY", model.run_id)
        assert row["algorithm"] == model.tags["algorithm"]
        assert row["oos_hit_rate"] == model.metrics["oos_hit_rate"]
    lines = metadata["tree"].value.splitlines()
    assert lines[0].startswith(f"- [{parent.model_id}]({rows[0]['mlflow_url']}) close/1m hit rate")
    assert lines[1].startswith(f"  - [{child.model_id}]({rows[1]['mlflow_url']}) close/1m")
    assert all(line.endswith("[group SPY-group-1]") for line in lines)
    shap = [key for key in metadata if key.endswith("/shap")]
    assert shap, "a SHAP summary plot inline"
    assert all(metadata[key].value.startswith("![shap" + PNG_MARKDOWN) for key in shap)


def test_hall_of_fame_shows_promoted_models_with_lineage_depth_and_evolution_runs(lab):
    _, warehouse, registry, _, _ = lab
    parent, child = registry.models("SPY")
    now = pd.Timestamp("2024-03-01 12:00", tz="UTC")
    common = {"evolution_id": "evo-1", "symbol": "SPY", "grid_id": "g", "combo": 0,
              "simulation_config": "{}", "features": "[]", "params": "{}",
              "promoted_at": now, "trades": 300, "profit_factor": 2.5}  # fmt: skip
    warehouse.catalog.upsert("promoted_models", pd.DataFrame([
        {**common, "model_id": parent.model_id, "generation": 0, "sqn": 3.1,
         "deflated_sharpe": 0.96, "trials": 12, "lineage": json.dumps([parent.model_id]),
         "mlflow_run_id": parent.run_id},
        {**common, "model_id": child.model_id, "generation": 2, "sqn": 4.2,
         "deflated_sharpe": 0.99, "trials": 36,
         "lineage": json.dumps([child.model_id, "SPY-x", parent.model_id]),
         "mlflow_run_id": child.run_id, "registered_version": "1"},
    ]))  # fmt: skip
    warehouse.catalog.upsert("evolution_runs", pd.DataFrame([
        {"evolution_id": "evo-1", "symbol": "SPY", "status": "promoted", "max_generations": 4,
         "current_generation": 2, "best_model_id": child.model_id, "best_sqn": 4.2,
         "promoted_model_id": child.model_id, "trials": 36, "config": "{}",
         "created_at": now, "updated_at": now},
    ]))  # fmt: skip
    metadata = materialize(lab, "hall_of_fame", partition=None)
    assert metadata["promoted"].value == 2 and metadata["evolutions"].value == 1
    fame = records(metadata["hall_of_fame"].value)
    assert [(r["model_id"], r["sqn"], r["deflated_sharpe"], r["trials"], r["lineage_depth"])
            for r in fame] == [(child.model_id, 4.2, 0.99, 36, 2),
                               (parent.model_id, 3.1, 0.96, 12, 0)]  # fmt: skip
    stored = warehouse.catalog.read("SELECT * FROM promoted_models ORDER BY sqn DESC")
    for row, want in zip(fame, expected(stored), strict=True):
        assert {k: v for k, v in row.items() if k != "lineage_depth"} == {
            k: want[k] for k in row if k != "lineage_depth"
        }
    (run,) = records(metadata["evolution_runs"].value)
    assert run["evolution_id"] == "evo-1" and run["promoted_model_id"] == child.model_id
    assert run["created_at"] == now.isoformat() and run["current_generation"] == 2
    assert metadata[f"{child.model_id}/mlflow"].value == registry.run_url("SPY", child.run_id)


def test_feature_preview_shows_the_newest_feature_rows(lab):
    _, warehouse, _, _, _ = lab
    metadata = materialize(lab, "feature_preview", config={"rows": 5})
    newest = warehouse.latest_features("SPY", 5)
    assert metadata["rows"].value == 5 and metadata["days"].value == len(DAYS)
    assert metadata["first_day"].value == "2024-02-01"
    assert metadata["last_day"].value == "2024-02-29"
    table = metadata["preview"].value
    assert [c.name for c in table.schema.columns] == list(newest.columns)
    assert records(table) == expected(newest)
    assert records(table)[-1]["ts"] == "2024-02-29T20:59:00+00:00"  # the session's last minute


def test_views_refresh_when_their_sources_change():
    """Eager views are requested once their symbol's upstream is materialized; the hall
    of fame at each cron tick."""
    from stock_assets.assets.research import research_automation_sensor
    from stock_assets.definitions import defs

    assert research_automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    start = dt.datetime(2024, 3, 4, 15, 1, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY", "QQQ"])
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                  evaluation_time=start)  # fmt: skip
        assert first.total_requested == 0
        for key, partition in [("simulations", "SPY"), ("models", "QQQ"),
                               ("features", dg.MultiPartitionKey({"date": "2024-03-01",
                                                                  "symbol": "QQQ"}))]:  # fmt: skip
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        later = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor,
            evaluation_time=start + dt.timedelta(minutes=5),
        )  # fmt: skip
        requested = {
            name: later.get_requested_partitions(dg.AssetKey(name))
            for name in ("leaderboard", "model_tree", "feature_preview")
        }
        assert requested == {"leaderboard": {"SPY"}, "model_tree": {"QQQ"},
                             "feature_preview": {"QQQ"}}  # fmt: skip
        assert later.total_requested == 3
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=later.cursor,
            evaluation_time=start + dt.timedelta(minutes=15),
        )  # fmt: skip
        assert tick.get_num_requested(dg.AssetKey("hall_of_fame")) == 1
