"""The evolution job end to end (CLI -> Dagster -> MLflow -> catalog) on generated features:
a planted signal is promoted, noise is not, lineage, reuse, resume after a kill, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stock_assets.cli import main
from stock_assets.storage.models import ModelRegistry, default_tracking_uri
from stock_assets.storage.warehouse import Warehouse
from tests.core.test_training import minute_frame

N_DAYS = 40
FAST = ["--algorithm", "ridge_regression", "--fold", "fold_2_1", "--shap-rows", "0"]


def planted_features(strength: float, seed: int) -> pd.DataFrame:
    """40 sessions of minutes whose next return is `strength` x 1e-3 x z_t plus N(0, 1e-3)
    noise, z an AR(1) (keep 0.9) shown as rsi_14 = 50 + 15 z; every other feature noise.
    strength 0: a pure random walk."""
    rng = np.random.default_rng(seed)
    n = N_DAYS * 390
    shocks, z = rng.normal(size=n), np.zeros(n)
    for i in range(1, n):
        z[i] = 0.9 * z[i - 1] + np.sqrt(1 - 0.81) * shocks[i]
    r = np.concatenate(([0.0], strength * 1e-3 * z[:-1] + rng.normal(0, 1e-3, n - 1)))
    frame = minute_frame(N_DAYS, 2, 1, returns=r, seed=seed + 1)
    frame["rsi_14"] = 50 + 15 * z
    return frame


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A home with planted-signal features for SPY and pure noise for NOISE and KILL."""
    root = tmp_path_factory.mktemp("evolution") / "home"
    warehouse = Warehouse(root)
    for symbol, strength, seed in (("SPY", 0.25, 0), ("NOISE", 0.0, 10), ("KILL", 0.0, 20)):
        frame = planted_features(strength, seed)
        days = sorted({ts.date() for ts in frame["ts"].dt.tz_convert("America/New_York")})
        warehouse.store_features(symbol, frame, days)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOCK_ASSETS_HOME", str(root))
        patch.setenv("DAGSTER_HOME", str(root / "dagster"))
        patch.setenv("STOCK_ASSETS_LOG_LEVEL", "WARNING")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("STOCK_ASSETS_DAGSTER_URL", raising=False)
        yield root


def registry(root: Path) -> ModelRegistry:
    return ModelRegistry(default_tracking_uri(root), artifact_root=root / "mlflow" / "artifacts")


def read(root: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    return Warehouse(root).catalog.read(sql, params)


def evolve(*args: str) -> tuple[int, str]:
    """Run `stock-assets evolve`, return (exit code, evolution id)."""
    code = main(["evolve", *args])
    found = read(
        Path(os.environ["STOCK_ASSETS_HOME"]),
        "SELECT evolution_id FROM evolution_runs ORDER BY created_at DESC LIMIT 1",
    )
    return code, (found["evolution_id"].iloc[0] if len(found) else "")


@pytest.fixture(scope="module")
def planted_run(lab):
    code, evolution_id = evolve(
        "SPY",
        *FAST,
        "--generations",
        "3",
        "--candidates",
        "2",
        "--sqn",
        "3:1000",
        "--profit-factor",
        "2:100",
    )
    assert code == 0
    return evolution_id


@pytest.fixture(scope="module")
def noise_run(lab):
    code, evolution_id = evolve("NOISE", *FAST, "--generations", "3", "--candidates", "2")
    assert code == 0
    return evolution_id


def test_a_planted_signal_is_promoted_registered_and_downloadable(lab, planted_run):
    import mlflow

    (run,) = read(
        lab, "SELECT * FROM evolution_runs WHERE evolution_id = ?", [planted_run]
    ).to_dict(orient="records")
    assert run["status"] == "PROMOTED" and run["stop_reason"] == "promoted"
    (promoted,) = read(lab, "SELECT * FROM promoted_models").to_dict(orient="records")
    assert promoted["evolution_id"] == planted_run
    assert "rsi_14" in json.loads(promoted["features"])
    assert 3 <= promoted["sqn"] <= 1000 and 2 <= promoted["profit_factor"] <= 100
    assert 200 <= promoted["trades"] <= 10_000 and promoted["weekly_consistency"] < 0.5
    assert promoted["deflated_sharpe"] >= 0.95 and promoted["excess_vs_buy_hold"] > 0
    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [planted_run])
    assert promoted["trials"] == len(log) * 4 * 3  # every candidate x every combination
    assert log["generation"].max() == promoted["generation"] < 2  # later generations skipped
    # MLflow: the registered version under the champion alias is the promoted model's run
    models = registry(lab)
    version = models.client.get_model_version_by_alias("stock-assets-SPY", "champion")
    assert version.run_id == promoted["mlflow_run_id"]
    assert json.loads(version.tags["simulation_config"])["grid_id"] == promoted["grid_id"]
    assert json.loads(version.tags["lineage"])[0] == promoted["model_id"]
    mlflow.set_tracking_uri(models.tracking_uri)
    loaded = mlflow.pyfunc.load_model("models:/stock-assets-SPY@champion")
    frame = Warehouse(lab).read_features("SPY").tail(5)
    assert len(loaded.predict(frame[json.loads(promoted["features"])])) == 5
    # the step's simulations are stored, with their MLflow run
    sims = read(lab, "SELECT * FROM sim_runs WHERE grid_id = ?", [promoted["grid_id"]])
    assert (sims["mlflow_run_id"] == promoted["mlflow_run_id"]).all()


def test_noise_is_not_promoted_and_the_reason_names_the_failed_test(lab, noise_run):
    (run,) = read(lab, "SELECT * FROM evolution_runs WHERE evolution_id = ?", [noise_run]).to_dict(
        orient="records"
    )
    assert run["status"] == "COMPLETED" and run["promoted_model_id"] is None
    assert run["stop_reason"] == "max_generations"
    assert "not promoted: criteria:" in run["reason"] or "deflated sharpe" in run["reason"]
    assert read(lab, "SELECT * FROM promoted_models WHERE symbol = 'NOISE'").empty
    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [noise_run])
    assert sorted(log["generation"].unique()) == [0, 1, 2] and len(log) == 6
    assert all(r.startswith(("criteria:", "baselines:", "deflated sharpe:")) for r in log["reason"])


def test_the_lineage_of_three_generations_is_complete_everywhere(lab, noise_run, capsys):
    log = read(
        lab,
        "SELECT * FROM evolution_log WHERE evolution_id = ? ORDER BY generation, candidate",
        [noise_run],
    )
    last = log[log["generation"] == 2].iloc[0]
    chain = [last["child_model_id"]]
    for generation in (2, 1):
        row = log[(log["generation"] == generation) & (log["child_model_id"] == chain[-1])].iloc[0]
        pruned = json.loads(row["pruned_features"])
        assert pruned and set(pruned).isdisjoint(json.loads(row["remaining_features"]))
        assert row["parent_model_id"] in set(
            log.loc[log["generation"] == generation - 1, "child_model_id"]
        )
        chain.append(row["parent_model_id"])
    assert log.loc[log["generation"] == 0, "parent_model_id"].isna().all()
    # MLflow: each child's parent tag, all nested under the evolution's run
    models = registry(lab)
    (evolution_run,) = read(
        lab, "SELECT mlflow_run_id FROM evolution_runs WHERE evolution_id = ?", [noise_run]
    )["mlflow_run_id"]
    for child, parent in zip(chain, [*chain[1:], None], strict=True):
        tags = models.client.get_run(models.get(child).run_id).data.tags
        assert (tags["parent"] or None) == parent and tags["evolution_id"] == noise_run
        assert tags["mlflow.parentRunId"] == evolution_run
    # the CLI
    assert main(["lineage", chain[0]]) == 0
    out = capsys.readouterr().out
    assert all(model_id in out for model_id in chain)
    assert out.count("pruned from its parent") == 2
    assert main(["lineage", chain[0], "--format", "json"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert [s["model_id"] for s in steps] == chain and [s["generation"] for s in steps] == [2, 1, 0]


def test_a_resumed_evolution_trains_nothing_and_duplicates_no_row(lab, noise_run, capsys):
    tables = ("evolution_log", "evolution_runs", "model_fingerprints", "sim_runs")
    before = {t: len(read(lab, f"SELECT * FROM {t}")) for t in tables}
    models_before = len(registry(lab).models("NOISE"))
    assert main(["evolve", "--resume", noise_run]) == 0
    assert {t: len(read(lab, f"SELECT * FROM {t}")) for t in tables} == before
    assert len(registry(lab).models("NOISE")) == models_before
    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [noise_run])
    assert log["reused"].all()  # every generation returned to known configurations
    assert "(2 reused)" in capsys.readouterr().err  # the progress lines say so


def test_killing_the_run_mid_generation_then_resuming_loses_and_doubles_nothing(lab):
    command = [
        sys.executable,
        "-m",
        "stock_assets.cli",
        "evolve",
        "KILL",
        *FAST,
        "--generations",
        "2",
        "--candidates",
        "3",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    evolution_id = process.stdout.readline().split()[1].rstrip(":")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once the first candidate's model is recorded
        fingerprints = read(lab, "SELECT * FROM model_fingerprints WHERE symbol = 'KILL'")
        if len(fingerprints) >= 1:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [evolution_id]).empty
    assert main(["evolve", "--resume", evolution_id]) == 0
    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [evolution_id])
    assert len(log) == 6 and not log.duplicated(["generation", "candidate"]).any()
    assert log.loc[log["generation"] == 0, "reused"].any()  # the one trained before the kill
    finished = registry(lab).models("KILL")
    fingerprints = [m.tags["fingerprint"] for m in finished]
    assert len(fingerprints) == len(set(fingerprints))  # no model trained twice
    sims = read(lab, "SELECT grid_id, combo FROM sim_runs WHERE symbol = 'KILL'")
    assert not sims.duplicated().any()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["SPY", "--sqn", "5:3"], "sqn_min 5.0 > sqn_max 3.0"),
        (["SPY", "--generations", "0"], "max_generations 0"),
        (["SPY", "--candidates", "0"], "candidates 0"),
        (["SPY", "--sampler", "grid"], None),  # argparse refuses it
        (["SPY", "--parent", "SPY-xgboost_regressor-00000000"], "no such model"),
        (["NOFEAT"], "symbol NOFEAT has no features"),
        (["SPY", "--context", "QQQ"], "context symbol QQQ has no features"),
        (["SPY", "--regime", "regime_gmm=9"], "regime_gmm has codes"),
        (["--resume", "nope"], "no such evolution"),
    ],
)
def test_bad_input_fails_before_any_work(lab, args, message, capsys):
    runs_before = len(read(lab, "SELECT * FROM evolution_runs"))
    try:
        code = main(["evolve", *args])
    except SystemExit as exit:  # argparse
        code = exit.code
    assert code == 2
    if message:
        assert message in capsys.readouterr().err
    assert len(read(lab, "SELECT * FROM evolution_runs")) == runs_before


def test_the_launchpad_config_is_checked_by_the_first_step(lab):
    """A run launched with a bad config (as from the Dagster launchpad) fails on its first
    step with the same message, before any training."""
    from stock_assets.cli.common import dagster_instance
    from stock_assets.jobs import launcher as launches
    from stock_assets.jobs.launcher import InProcessLauncher

    outcome = InProcessLauncher(dagster_instance()).launch(
        launches.evolve({"symbol": "SPY", "profit_factor_min": 5, "profit_factor_max": 1})
    )
    assert not outcome.success and outcome.failed_on_usage()
    assert "profit_factor_min 5.0 > profit_factor_max 1.0" in outcome.failure_reason()
    steps = outcome.events(__import__("dagster").DagsterEventType.STEP_START)
    assert [e.step_key for e in steps] == ["start_evolution"]


def test_runs_and_promoted_commands(lab, planted_run, noise_run, capsys):
    assert main(["runs", "--format", "json"]) == 0
    runs = {r["evolution_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert runs[planted_run]["status"] == "PROMOTED" and runs[noise_run]["status"] == "COMPLETED"
    assert main(["runs", "--status", "promoted", "--format", "json"]) == 0
    assert [r["evolution_id"] for r in json.loads(capsys.readouterr().out)] == [planted_run]
    assert main(["runs", "show", noise_run, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [g["generation"] for g in shown["generations"]] == [0, 0, 1, 1, 2, 2]
    assert main(["runs", "show", noise_run]) == 0
    assert "top 3 per generation" in capsys.readouterr().out
    assert main(["promoted", "--symbol", "SPY", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["evolution_id"] == planted_run and row["registered_version"] == "1"


def test_the_samplers_run_and_nsga2_reports_its_pareto_front(lab):
    code, evolution_id = evolve(
        "NOISE",
        *FAST,
        "--generations",
        "2",
        "--candidates",
        "3",
        "--sampler",
        "nsga2",
        "--seed",
        "7",
    )
    assert code == 0
    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [evolution_id])
    assert log["pareto"].any() and len(log) == 6
    params = [json.loads(p)["alpha"] for p in log["params"]]
    assert set(params) <= {0.01, 0.1, 1.0, 10.0, 100.0, 1000.0}


def test_an_evolution_from_a_parent_counts_its_lineage_trials_and_runs_by_its_sqn(lab, noise_run):
    from stock_assets.cli.common import dagster_instance

    log = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?", [noise_run])
    parent = log[log["generation"] == 2].sort_values("sqn", ascending=False).iloc[0]
    code, evolution_id = evolve(
        "NOISE", "--parent", parent["child_model_id"], *FAST, "--generations", "1",
        "--candidates", "1",
    )  # fmt: skip
    assert code == 0
    (row,) = read(lab, "SELECT * FROM evolution_log WHERE evolution_id = ?",
                  [evolution_id]).to_dict(orient="records")  # fmt: skip
    assert row["origin"] == "elite" and row["reused"]  # the parent itself: nothing trained
    assert row["child_model_id"] == parent["child_model_id"]
    assert row["trials"] == parent["trials"] + 12
    assert row["parent_sqn"] == pytest.approx(parent["sqn"])
    (run,) = dagster_instance().get_runs(
        dg_filter(tags={"kind": "evolution"}), limit=1
    )  # the newest evolution run
    assert run.tags["dagster/priority"] == str(round(10 * parent["sqn"]))


def dg_filter(**fields):
    import dagster as dg

    return dg.RunsFilter(**fields)


def test_the_api_serves_evolutions_generations_and_the_hall_of_fame(lab, planted_run, noise_run):
    from fastapi.testclient import TestClient

    from stock_assets.api.app import create_app

    client = TestClient(create_app(token=""))
    (promoted,) = client.get("/promoted", params={"symbol": "spy"}).json()["rows"]
    assert promoted["evolution_id"] == planted_run and "rsi_14" in promoted["features"]
    detail = client.get(f"/promoted/{promoted['model_id']}").json()
    assert detail["promoted"]["simulation_config"]["split"] == "test"
    assert detail["lineage"][0]["model_id"] == promoted["model_id"]
    assert client.get("/promoted/SPY-ridge_regression-00000000").status_code == 404
    shown = client.get(f"/runs/{noise_run}/generations").json()
    assert shown["evolution"]["stop_reason"] == "max_generations"
    assert [g["generation"] for g in shown["generations"]] == [0, 0, 1, 1, 2, 2]
    assert isinstance(shown["generations"][2]["pruned_features"], dict)
    assert client.get("/runs/not-a-uuid/generations").status_code == 422
    ids = {r["evolution_id"] for r in client.get("/evolutions").json()["rows"]}
    assert {planted_run, noise_run} <= ids
    bad = client.post("/evolve", json={"symbol": "SPY", "sqn_min": 5, "sqn_max": 3})
    assert bad.status_code == 422 and "sqn_min 5.0 > sqn_max 3.0" in bad.json()["error"]
    assert client.post("/evolve", json={"symbol": "NOFEAT"}).status_code == 404
    started = client.post("/evolve", json={
        "symbol": "NOISE", "algorithms": ["ridge_regression"], "fold": "fold_2_1",
        "max_generations": 1, "candidates": 1, "shap_rows": 0,
    })  # fmt: skip
    assert started.status_code == 202 and started.json()["status"] == "SUCCESS"
    evolution_id = started.json()["outputs"]["evolution_id"]
    run = client.get(f"/runs/{started.json()['run_id']}").json()
    assert run["job"] == "evolution_job" and run["evolution"]["evolution_id"] == evolution_id
    assert client.get(f"/runs/{evolution_id}/generations").json()["evolution"]["status"] == (
        "COMPLETED"
    )
