"""The one place run requests are built: what each builder asks of Dagster."""

from __future__ import annotations

import datetime as dt

from stock_assets.jobs import launcher as launches
from stock_assets.pipelines.specs import GridSpec

MAR_4, MAR_8 = dt.date(2024, 3, 4), dt.date(2024, 3, 8)


def test_an_ingest_of_a_range_is_one_run_over_the_symbols_days():
    launch = launches.ingest("SPY", MAR_4, MAR_8, providers="csv", csv_path="/x.csv")
    assert launch.job.name == "ingest_job"
    assert launch.tags == {
        "dagster/asset_partition_range_start": "2024-03-04|SPY",
        "dagster/asset_partition_range_end": "2024-03-08|SPY",
    }
    assert launch.partition_key is None
    assert launch.run_config == {
        "ops": {"bars": {"config": {"providers": "csv", "csv_path": "/x.csv"}}}
    }


def test_one_day_is_a_partition_run_and_becomes_a_run_request():
    launch = launches.ingest("SPY", MAR_4, refetch=True)
    assert launch.partition_key == "2024-03-04|SPY" and launch.tags == {}
    request = launch.run_request(run_key="k1", reason="3 missing")
    assert (request.job_name, request.run_key, request.partition_key) == (
        "ingest_job", "k1", "2024-03-04|SPY",
    )  # fmt: skip
    assert request.tags == {"reason": "3 missing"}
    assert request.run_config == {"ops": {"bars": {"config": {"refetch": True}}}}


def test_other_builders():
    assert launches.regimes(MAR_4, MAR_8).tags == {
        "dagster/asset_partition_range_start": "2024-03-04",
        "dagster/asset_partition_range_end": "2024-03-08",
    }
    assert launches.features("QQQ", MAR_4, MAR_8).job.name == "features_job"
    simulations = launches.simulations("SPY")
    assert (simulations.job.name, simulations.partition_key) == ("simulations_job", "SPY")
    grid = launches.grid_search(["SPY"], GridSpec(thresholds=[0.0]))
    config = grid.run_config["ops"]["plan_grid_search"]["config"]
    assert config["symbols"] == ["SPY"] and config["thresholds"] == [0.0]
    fill = launches.gap_fill("SPY", None, "2024-03-08", 5)
    assert fill.run_config == {"ops": {"fill_gaps_op": {"config": {
        "symbols": ["SPY"], "max_iterations": 5, "start": None, "end": "2024-03-08"}}}}  # fmt: skip


def test_the_environment_chooses_the_launcher(monkeypatch):
    import dagster as dg

    with dg.instance_for_test() as instance:
        monkeypatch.delenv("STOCK_ASSETS_DAGSTER_URL", raising=False)
        assert isinstance(launches.launcher(instance), launches.InProcessLauncher)
        monkeypatch.setenv("STOCK_ASSETS_DAGSTER_URL", "http://127.0.0.1:3999")
        remote = launches.launcher(instance)
        assert isinstance(remote, launches.RemoteLauncher)
        assert (remote.host, remote.port) == ("127.0.0.1", 3999)
