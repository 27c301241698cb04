"""docker-compose.yml for real, on podman (the stack: tests/deploy/conftest.py): every
service healthy, workers scaled to two, the demo's pipeline submitted to the webserver
over GraphQL with its steps on the worker containers, a worker killed mid-step, the
catalog in PostgreSQL, the models in the MLflow server, the API in front, and no secret
of the .env anywhere but in the containers' environment.

Marked `container`: plain `pytest` deselects it; `pytest -m container` runs it (stage 2
of .ci/run).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

pytestmark = [pytest.mark.container, pytest.mark.timeout(1500)]
SERVICES = {"postgres", "rabbitmq", "code", "webserver", "daemon", "worker", "mlflow", "api"}
SYMBOLS = ("SPY", "QQQ", "VIXY")  # QQQ and VIXY: the market regimes every symbol's features read
TRAIN_DAYS = 7  # sessions before the fold_30_5 test block: the walk-forward fit's rows


def host(node: str) -> str:
    """The hostname of a Celery node name (name@hostname)."""
    return node.rpartition("@")[2]


def session_window() -> list[dt.date]:
    """TRAIN_DAYS sessions, then a whole fold_30_5 test block (the default folds of the
    features and the models): the fewest days a walk-forward model trains on."""
    import pandas as pd

    from stock_assets.core import calendar
    from stock_assets.pipelines.features import DEFAULT_FOLD, fold_labels

    days = calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 6, 28))
    labels = fold_labels(pd.Series(pd.to_datetime(days)), DEFAULT_FOLD)
    ends = [i for i in range(len(days) - 1) if labels[i] == "test" and labels[i + 1] == "train"]
    first = ends[-1] - DEFAULT_FOLD.test_days - TRAIN_DAYS + 1
    return days[first : ends[-1] + 1]


@dataclass
class Pipeline:
    symbols: tuple[str, ...]
    days: list[dt.date]
    runs: dict[str, str]  # what -> run id
    statuses: dict[str, str]


@dataclass
class GridSearch:
    run_id: str
    status: str
    killed_container: str
    killed_step: str
    events: list[dict]


@pytest.fixture(scope="module")
def pipeline(stack, dagster) -> Pipeline:
    """The demo's pipeline for three symbols: ingest (synthetic), market regimes, features,
    a model of SPY tracked in MLflow. Each run is submitted to the webserver, queued,
    launched by the daemon in the code container; features' steps run on the workers."""
    from stock_assets.jobs import launcher as launches

    days = session_window()
    pipeline = Pipeline(SYMBOLS, days, {}, {})

    def stage(name: str, launched: dict) -> None:
        started = time.monotonic()
        submitted = {what: dagster.submit(launch) for what, launch in launched.items()}
        done = dagster.wait(list(submitted.values()))
        stack.timed(name, started)
        pipeline.runs |= submitted
        pipeline.statuses |= {what: done[run_id] for what, run_id in submitted.items()}
        failed = {what: dagster.failures(run_id) for what, run_id in submitted.items()
                  if done[run_id] != "SUCCESS"}  # fmt: skip
        assert not failed, stack.redact(str(failed))

    for symbol in SYMBOLS:
        dagster.add_symbol(symbol)
    stage("ingest", {f"ingest {s}": launches.ingest(s, days[0], days[-1], providers="synthetic")
                     for s in SYMBOLS})  # fmt: skip
    stage("regimes", {"regimes": launches.regimes(days[0], days[-1])})
    stage("features", {f"features {s}": launches.features(s, days[0], days[-1])
                       for s in SYMBOLS})  # fmt: skip
    stage("models", {"models SPY": launches.models("SPY", [{"algorithm": "ridge_regression"}])})
    return pipeline


@pytest.fixture(scope="module")
def grid_search(stack, dagster, pipeline: Pipeline) -> GridSearch:
    """grid_search_job over the three symbols; the worker running one of its simulation
    steps is killed (`podman kill`: SIGKILL) as soon as such a step is seen running."""
    from stock_assets.jobs import launcher as launches
    from stock_assets.pipelines.specs import GridSpec

    hosts = stack.worker_hosts()
    started = time.monotonic()
    run_id = dagster.submit(launches.grid_search(list(pipeline.symbols), GridSpec()))
    killed_container = killed_step = ""
    while time.monotonic() - started < 600 and not dagster.finished(run_id):
        events = dagster.events(run_id)
        running = [(step, node) for step, node in dagster.placements(events)
                   if step.startswith("simulate_pair")
                   and step not in dagster.succeeded(events)]  # fmt: skip
        if running:
            killed_step, node = running[0]
            killed_container = hosts[host(node)]
            stack.podman("kill", killed_container)
            stack.timed("grid search: a worker killed", started)
            break
        time.sleep(0.5)
    status = dagster.wait([run_id])[run_id]
    stack.timed("grid search", started)
    return GridSearch(run_id, status, killed_container, killed_step, dagster.events(run_id))


# --- the checks -----------------------------------------------------------------------


def test_every_service_has_a_health_check_and_is_healthy(stack):
    services = stack.config()["services"]
    assert set(services) == SERVICES
    assert [name for name, service in services.items() if not service.get("healthcheck")] == []
    containers = stack.containers()
    with ThreadPoolExecutor(max_workers=len(containers)) as pool:
        checked = dict(zip(containers, pool.map(stack.healthy, containers), strict=True))
    assert [container for container, ok in checked.items() if not ok] == []


def test_workers_scale_as_containers_without_names_or_ports(stack):
    worker = stack.config()["services"]["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert len(stack.worker_hosts()) == stack.workers


def test_pipeline_runs_submitted_to_the_webserver_succeed(pipeline):
    assert pipeline.statuses == dict.fromkeys(pipeline.runs, "SUCCESS")
    assert len(pipeline.statuses) == 3 + 1 + 3 + 1  # ingest x3, regimes, features x3, models


def test_features_steps_ran_in_the_worker_containers(stack, dagster, pipeline):
    hosts = stack.worker_hosts()
    for symbol in pipeline.symbols:
        placed = dagster.placements(dagster.events(pipeline.runs[f"features {symbol}"]))
        assert [step for step, _ in placed] == ["features"]
        assert {host(node) for _, node in placed} <= set(hosts), (placed, hosts)


def test_grid_search_succeeds_though_a_worker_was_killed_mid_step(stack, dagster, grid_search):
    assert grid_search.killed_container, "no simulation step was seen running on a worker"
    assert grid_search.status == "SUCCESS", dagster.failures(grid_search.run_id)
    hosts = stack.worker_hosts()
    placed = dagster.placements(grid_search.events)
    # every step ran in a worker container, and both workers took some
    assert {host(node) for _, node in placed} <= set(hosts), (placed, hosts)
    assert len({node for _, node in placed}) >= stack.workers, placed
    # the killed worker's step went back to the queue and another worker ran it to the end
    killed_host = next(h for h, c in hosts.items() if c == grid_search.killed_container)
    runs_of_step = [host(node) for step, node in placed if step == grid_search.killed_step]
    assert runs_of_step[0] == killed_host and runs_of_step[-1] != killed_host, runs_of_step
    assert {grid_search.killed_step, "store_sim_runs"} <= dagster.succeeded(grid_search.events)


def test_catalog_rows_are_in_the_postgres_container(stack, pipeline, grid_search):
    ingested = stack.psql("catalog", "SELECT symbol, count(*) FROM ingest_status GROUP BY 1")
    assert sorted(ingested) == [[s, str(len(pipeline.days))] for s in sorted(pipeline.symbols)]
    ((columns,),) = stack.psql("catalog", "SELECT count(*) FROM feature_metadata")
    assert int(columns) >= 60
    baselines = ["baseline:momentum_5", "baseline:reversal_5"]  # the grid's two predictors
    simulated = stack.psql("catalog", "SELECT DISTINCT symbol, model_id FROM sim_runs WHERE "
                           f"model_id IN ('{baselines[0]}', '{baselines[1]}')")  # fmt: skip
    assert sorted(simulated) == sorted([s, m] for s in pipeline.symbols for m in baselines)


def test_mlflow_server_holds_the_model_run_and_its_artifacts(stack, pipeline):
    mlflow = f"http://127.0.0.1:{stack.port('MLFLOW_PORT')}/api/2.0/mlflow"
    found = httpx.get(f"{mlflow}/experiments/get-by-name", timeout=30,
                      params={"experiment_name": "stock-assets/SPY"})  # fmt: skip
    assert found.status_code == 200, found.text
    experiment = found.json()["experiment"]
    assert experiment["artifact_location"].startswith("mlflow-artifacts:")  # the server's store
    runs = httpx.post(
        f"{mlflow}/runs/search", timeout=30, json={"experiment_ids": [experiment["experiment_id"]]}
    ).json()["runs"]
    assert [run["info"]["status"] for run in runs] == ["FINISHED"]
    listed = httpx.get(f"{mlflow}/artifacts/list", timeout=30,
                       params={"run_id": runs[0]["info"]["run_id"]}).json()  # fmt: skip
    assert listed.get("files"), listed


def test_api_reads_the_stack_and_refuses_writes_without_its_token(stack, pipeline, grid_search):
    api = f"http://127.0.0.1:{stack.port('API_PORT')}"
    assert httpx.get(f"{api}/health", timeout=30).status_code == 200
    board = httpx.get(f"{api}/leaderboard", params={"symbol": "SPY", "limit": 3}, timeout=60)
    assert board.status_code == 200 and board.json()["rows"], board.text
    runs = httpx.get(f"{api}/runs", timeout=60)
    assert runs.status_code == 200 and grid_search.run_id in runs.text, runs.text[:500]
    ingest = f"{api}/ingest/SPY?start={pipeline.days[0].isoformat()}"
    assert httpx.post(ingest, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.post(ingest, headers=wrong, timeout=30).status_code == 401


def test_no_secret_in_images_compose_files_logs_or_databases(stack, pipeline, grid_search):
    """The .env's passwords and token are in the containers' environment and nowhere else:
    not in the compose files, the images (config, history, files), the containers' logs,
    commands and labels, Dagster's run storage, the catalog, MLflow, or the data volume."""
    leaks = []

    def scan(where: str, text: str) -> None:
        if any(value in text for value in stack.secrets):
            leaks.append(where)

    for path in stack.compose_files:
        scan(path.name, path.read_text())
    for image in [stack.app_image, *stack.standin_images]:
        scan(f"{image} config", stack.podman("image", "inspect", image).stdout)
        history = stack.podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        scan(f"{image} history", history.stdout)
    grep = ["grep", "-rlF", *(arg for value in stack.secrets for arg in ("-e", value))]
    mounted = stack.podman("image", "mount", stack.app_image, check=False)
    if mounted.returncode == 0:  # rootful podman: every file of the image
        try:
            found = subprocess.run([*grep, mounted.stdout.strip()], capture_output=True,
                                   text=True, timeout=600).stdout.split()  # fmt: skip
            scan(f"{stack.app_image} files {found[:5]}", stack.secrets[0] if found else "")
        finally:
            stack.podman("image", "unmount", stack.app_image, check=False)
    for container in stack.containers():
        scan(f"{container} logs", stack.logs(container))
        config = json.loads(stack.podman("inspect", container).stdout)[0]["Config"]
        shown = {key: config.get(key) for key in ("Cmd", "Entrypoint", "Labels", "Healthcheck")}
        scan(f"{container} command, labels, health check", json.dumps(shown))
    (postgres,) = stack.containers("postgres")
    for database in ("dagster", "catalog", "mlflow"):
        dump = stack.podman("exec", postgres, "pg_dump", "-U", stack.values["POSTGRES_USER"],
                            database, timeout=300).stdout  # fmt: skip
        scan(f"database {database}", dump)
    (code,) = stack.containers("code")
    found = stack.podman("exec", code, *grep, "/data", "/opt/dagster", check=False).stdout.split()
    scan(f"files of the code container {found[:5]}", stack.secrets[0] if found else "")
    assert leaks == []
