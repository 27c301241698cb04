from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from stock_assets.cli import main
from stock_assets.core import calendar
from stock_assets.core.errors import UsageError
from stock_assets.core.predictors import Baseline
from stock_assets.jobs.launcher import symbol_days_tags as range_tags
from stock_assets.pipelines.simulations import SimulationError, load_features, run_grid
from stock_assets.pipelines.specs import GridSpec, parse_regime
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.storage.warehouse import Warehouse

DAYS = calendar.sessions(dt.date(2024, 2, 26), dt.date(2024, 3, 15))
SMALL = {"thresholds": [0.0, 0.001], "zscore": [False], "volnorm": [False, True],
         "regimes": ["", "regime_gmm=0"], "fill_delays": [0, 4]}  # fmt: skip


@pytest.fixture
def with_features(home):
    """SPY, QQQ, VIXY bars and SPY features for DAYS on a test instance."""
    from stock_assets.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["QQQ", "SPY", "VIXY"])
        for symbol in ("QQQ", "SPY", "VIXY"):
            assert (
                defs.resolve_job_def("ingest_job")
                .execute_in_process(instance=instance, tags=range_tags(symbol, DAYS[0], DAYS[-1]))
                .success
            )
        day_range = {"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                     "dagster/asset_partition_range_end": DAYS[-1].isoformat()}  # fmt: skip
        assert (
            defs.resolve_job_def("regimes_job")
            .execute_in_process(instance=instance, tags=day_range)
            .success
        )
        assert (
            defs.resolve_job_def("features_job")
            .execute_in_process(instance=instance, tags=range_tags("SPY", DAYS[0], DAYS[-1]))
            .success
        )
        yield defs, instance


def sim_runs(home):
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        return con.execute("SELECT * FROM sim_runs ORDER BY run_id").df()


def test_simulations_asset_stores_every_combination_with_baselines(home, with_features):
    defs, instance = with_features
    config = {"ops": {"simulations": {"config": SMALL}}}
    result = dg.materialize(
        [defs.get_assets_def("simulations")], partition_key="SPY", instance=instance,
        resources={"warehouse": WarehouseResource(), "mlflow": MlflowResource()},
        run_config=config,
    )  # fmt: skip
    assert result.success
    rows = sim_runs(home)
    models = rows.groupby("model_id").size().to_dict()
    assert models["baseline:momentum_5"] == models["baseline:reversal_5"] == 2 * 2 * 2 * 2
    assert {"baseline:buy_and_hold", "baseline:random"} <= set(models)
    assert set(rows["symbol"]) == {"SPY"}
    model_rows = rows[rows["model_id"] == "baseline:momentum_5"]
    assert (
        model_rows["excess_vs_buy_hold"]
        == model_rows["total_return"] - model_rows["buy_hold_return"]
    ).all()
    metadata = result.asset_materializations_for_node("simulations")[0].metadata
    assert metadata["momentum_5/equity_plot"].value.startswith("![equity](data:image/png;base64,")
    png = metadata["momentum_5/equity_png"].value
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same grid over the same data replaces its rows
    assert dg.materialize(
        [defs.get_assets_def("simulations")], partition_key="SPY", instance=instance,
        resources={"warehouse": WarehouseResource(), "mlflow": MlflowResource()},
        run_config=config,
    ).success  # fmt: skip
    again = sim_runs(home)
    assert len(again) == len(rows)
    assert sorted(again["run_id"]) == sorted(rows["run_id"])


def test_grid_search_job_fans_out_symbols_and_models(home, with_features):
    defs, instance = with_features
    config = {"ops": {"plan_grid_search": {"config": {"symbols": ["spy"], **SMALL}}}}
    result = defs.resolve_job_def("grid_search_job").execute_in_process(
        run_config=config, instance=instance
    )
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert {
        "simulate_pair[SPY_baseline_momentum_5]",
        "simulate_pair[SPY_baseline_reversal_5]",
    } <= steps
    assert sim_runs(home)["grid_id"].nunique() == 2 * 3  # 2 models, each with 2 baselines


def test_bot_grid_runs_out_of_sample_only(home, with_features):
    frame = load_features(Warehouse(home), "SPY")
    spec = GridSpec(models=["baseline:momentum_5"], thresholds=[0.0], zscore=[False],
                    volnorm=[False], regimes=[""], bot=[False, True], fill_delays=[0],
                    fold="fold_30_5")  # fmt: skip
    with pytest.raises(SimulationError, match="split=test"):
        run_grid(frame, "SPY", Baseline("baseline:momentum_5"), spec)
    frame["fold_2_1"] = ["train" if d.day % 3 else "test" for d in frame["ts"]]
    spec = spec.model_copy(update={"split": "test", "fold": "fold_2_1"})
    run = run_grid(frame, "SPY", Baseline("baseline:momentum_5"), spec)
    test_rows = int((frame["fold_2_1"] == "test").sum())
    assert set(run.rows["bars"]) == {test_rows}
    assert sorted(run.rows.loc[run.rows["model_id"] == "baseline:momentum_5", "bot"]) == [
        False,
        True,
    ]


def test_regime_filters_are_parsed_and_checked():
    assert parse_regime("regime_gmm=1,0").allowed == (0, 1)
    assert parse_regime("") is None
    for bad in ["regime_gmm", "nope=1", "regime_vix=7", "regime_gmm=a"]:
        with pytest.raises(UsageError, match="regime filter"):
            parse_regime(bad)


def test_simulate_and_leaderboard_cli(home, with_features, capsys):
    code = main(["simulate", "spy", "--model", "baseline:momentum_5", "--thresholds", "0,0.0005",
                 "--fill-delay", "4", "--regime", "regime_gmm=0"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "grid of 4 combination(s) x 1 model(s) for SPY" in out
    assert main(["leaderboard", "SPY", "--by", "sharpe", "--limit", "3", "--format", "json"]) == 0
    strict = {"parse_constant": lambda name: pytest.fail(f"invalid JSON constant {name}")}
    board = json.loads(capsys.readouterr().out, **strict)
    assert len(board) == 3
    sharpes = [row["sharpe"] for row in board]
    assert sharpes == sorted(sharpes, reverse=True)
    assert main(["leaderboard", "--by", "not_a_metric"]) == 2
    assert main(["simulate", "SPY", "--thresholds", "abc"]) == 2
    assert main(["simulate", "SPY", "--regime", "regime_gmm=9"]) == 2
    assert main(["simulate", "NOPE"]) == 1
    assert "no features stored for NOPE" in capsys.readouterr().err


def test_the_demo_materializes_the_simulations_asset(home, with_features, capsys):
    """The demo backtests through the `simulations` asset, so the UI shows it materialized."""
    import dagster as dg

    from stock_assets.cli.common import dagster_instance
    from stock_assets.cli.research import materialize_simulations

    assert materialize_simulations("SPY", limit=3) == 0
    assert "simulations of SPY materialized" in capsys.readouterr().out
    materialized = dagster_instance().get_materialized_partitions(dg.AssetKey("simulations"))
    assert materialized == {"SPY"}
    models = set(sim_runs(home)["model_id"])
    assert {"baseline:momentum_5", "baseline:reversal_5", "baseline:buy_and_hold"} <= models
