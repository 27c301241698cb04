"""Steps on Celery workers: the deployment's topology as native processes on this machine.

A Dagster instance on PostgreSQL (a new database, dropped after), RabbitMQ as the broker,
a gRPC code server, the webserver and the daemon, and two `stock-assets worker`
processes on a queue of this test's own; runs are submitted over the webserver's GraphQL
API. The catalog URL points at another new database (STOCK_ASSETS_CATALOG_URL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from stock_assets.jobs import executors
from stock_assets.testing.postgres import reachable, temporary_database

DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
SECRET = "guest:guest"  # the broker URL's user:password: never stored, never printed
SYMBOLS, MODELS = ["AAPL", "SPY"], ["baseline:momentum_5", "baseline:reversal_5"]
SESSIONS = 20
GRID = {"thresholds": [0.0, 0.0005, 0.001], "zscore": [False, True], "volnorm": [False],
        "regimes": ["", "regime_gmm=0"], "fill_delays": [0, 4]}  # fmt: skip
COMBINATIONS = 3 * 2 * 1 * 2 * 2
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
ROWS_PER_PAIR = COMBINATIONS + 2 * len(GRID["fill_delays"])  # + buy-and-hold and random rows


def test_an_unknown_executor_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv(executors.EXECUTOR_ENV, "celeri")
    with pytest.raises(executors.InvalidExecutor, match=r"'celeri': use one of default, celery"):
        executors.scale_out(dg.in_process_executor)


def test_each_job_keeps_its_executor_unless_celery_is_chosen(monkeypatch):
    monkeypatch.delenv(executors.EXECUTOR_ENV, raising=False)
    assert executors.scale_out(dg.in_process_executor) == {"executor_def": dg.in_process_executor}
    assert executors.scale_out(None) == {"executor_def": None}
    monkeypatch.setenv(executors.EXECUTOR_ENV, " Celery ")
    chosen = executors.scale_out(None)
    assert chosen["executor_def"].name == "celery"
    assert chosen["op_retry_policy"] == executors.WORKER_RETRY


def test_the_worker_command_line():
    from stock_assets.cli import build_parser

    args = build_parser().parse_args(
        ["worker", "--concurrency", "2", "--queue", "grid", "--loglevel", "debug"]
    )
    assert (args.concurrency, args.queue, args.loglevel) == (2, "grid", "DEBUG")


# --- the stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    home: Path
    dagster_home: Path
    logs: Path
    queue: str
    settings: dict[str, str]  # the environment of every process
    client: object  # DagsterGraphQLClient
    workers: list[int]  # the worker processes' pids

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def submit_grid_search(self) -> str:
        config = {"symbols": SYMBOLS, "models": MODELS, **GRID}
        return self.client.submit_job_execution(
            "grid_search_job", run_config={"ops": {"plan_grid_search": {"config": config}}}
        )

    def wait(self, run_id: str, timeout: float = 150) -> str:
        deadline, status = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            status = self.client.get_run_status(run_id).value
            if status in TERMINAL:
                return status
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} still {status} after {timeout:.0f}s{self.tails()}")

    def tails(self) -> str:
        return log_tails(self.logs)


def log_tails(logs: Path) -> str:
    return "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    """Processes each in its own session (so their children end with them), output to
    <logs>/<name>.log; at the end, whatever happened, SIGTERM to all, then SIGKILL."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env, self.started = logs, env, []

    def start(self, name: str, *command: str) -> int:
        with (self.logs / f"{name}.log").open("wb") as output:
            proc = subprocess.Popen([str(Path(sys.executable).parent / command[0]), *command[1:]],
                                    env=self.env, stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.started.append(proc)
        return proc.pid

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.started:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + 20
            for proc in self.started:
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if all(proc.returncode is not None for proc in self.started):
                return


def wait_for(condition, what: str, logs: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout:.0f}s{log_tails(logs)}")


def grpc_answers(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        return DagsterGrpcClient(port=port, host="127.0.0.1").ping("ok")["echo"] == "ok"
    except Exception:  # not listening yet
        return False


def location_loaded(port: int) -> bool:
    query = (b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { '
             b'loadStatus locationOrLoadError { __typename } } } } }"}')  # fmt: skip
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        answer = urllib.request.urlopen(request, timeout=5).read().decode()
    except OSError:
        return False
    return '"RepositoryLocation"' in answer


def prepare_features(home: Path) -> None:
    """AAPL and SPY features over SESSIONS sessions, straight into the lake (as the
    benchmarks do): no Dagster run needed to have something to simulate."""
    import datetime as dt

    from stock_assets.core import calendar, synthetic
    from stock_assets.core.features import compute_features
    from stock_assets.core.folds import label_folds
    from stock_assets.core.regimes import compute_regimes
    from stock_assets.storage.warehouse import Warehouse

    days = calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 12, 31))[-SESSIONS:]
    bars = {s: synthetic.generate_range(s, days[0], days[-1], seed=0).assign(is_filled=False)
            for s in ["QQQ", "VIXY", *SYMBOLS]}  # fmt: skip
    regimes = compute_regimes(bars["QQQ"], bars["VIXY"])
    for symbol in SYMBOLS:
        frame = compute_features(bars[symbol], qqq=bars["QQQ"], vixy=bars["VIXY"], regimes=regimes)
        frame["fold_30_5"] = label_folds(frame["ts"], 30, 5).to_numpy()
        Warehouse(home).store_features(symbol, frame, days)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory) -> Iterator[Stack]:
    """The whole stack, started once for the module's tests and stopped after them."""
    kombu = pytest.importorskip("kombu")
    if (why := reachable()) is not None:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({why})")
    try:
        with kombu.Connection(BROKER, connect_timeout=3) as broker:
            broker.ensure_connection(max_retries=1)
    except Exception as error:  # kombu raises the transport's own errors
        pytest.skip(f"RabbitMQ is not reachable on 127.0.0.1:5672 ({error})")
    root, tag = tmp_path_factory.mktemp("celery"), uuid.uuid4().hex[:8]
    home, dagster_home, logs = root / "home", root / "dagster", root / "logs"
    for folder in (home, dagster_home, logs):
        folder.mkdir()
    (dagster_home / "dagster.yaml").write_text(DEPLOY_CONFIG.read_text())
    grpc_port, web_port, queue = free_port(), free_port(), f"test-celery-{tag}"
    workspace = root / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {grpc_port}\n"
        "      location_name: stock_assets\n"
    )
    with ExitStack() as cleanup, pytest.MonkeyPatch.context() as env:
        settings = {
            "STOCK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_URL": cleanup.enter_context(temporary_database("stock_assets")),
            "STOCK_ASSETS_CATALOG_URL": cleanup.enter_context(temporary_database("catalog")),
            "STOCK_ASSETS_EXECUTOR": "celery", "STOCK_ASSETS_CELERY_BROKER": BROKER,
            "STOCK_ASSETS_CELERY_QUEUE": queue, "STOCK_ASSETS_PROVIDERS": "synthetic",
            "STOCK_ASSETS_HISTORY_SESSIONS": "0", "STOCK_ASSETS_LOG_STORE": "0",
        }  # fmt: skip
        for name, value in settings.items():
            env.setenv(name, value)
        for name in ("MLFLOW_TRACKING_URI", "STOCK_ASSETS_DAGSTER_URL"):
            env.delenv(name, raising=False)
        cleanup.callback(delete_queue, kombu, queue)
        processes = cleanup.enter_context(Processes(logs, dict(os.environ)))
        processes.start("code-server", "dagster", "api", "grpc", "-m", "stock_assets.definitions",
                        "-h", "127.0.0.1", "-p", str(grpc_port))  # fmt: skip
        workers = [processes.start(f"worker-{n}", "stock-assets", "worker", "--concurrency", "1",
                                   "--queue", queue) for n in (1, 2)]  # fmt: skip
        prepare_features(home)
        wait_for(lambda: grpc_answers(grpc_port), "the code server", logs)
        processes.start("webserver", "dagster-webserver", "-w", str(workspace), "-h", "127.0.0.1",
                        "-p", str(web_port))  # fmt: skip
        processes.start("daemon", "dagster-daemon", "run", "-w", str(workspace))
        for n in (1, 2):
            log = logs / f"worker-{n}.log"
            wait_for(lambda log=log: " ready." in log.read_text(), log.stem, logs)
        wait_for(lambda: location_loaded(web_port), "the webserver's code location", logs)
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=web_port)
        yield Stack(home, dagster_home, logs, queue, settings, client, workers)


@pytest.fixture
def stack(celery_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack, with this test's environment as theirs (the catalog URL included)."""
    for name, value in celery_stack.settings.items():
        monkeypatch.setenv(name, value)
    return celery_stack


def delete_queue(kombu, queue: str) -> None:
    with kombu.Connection(BROKER) as connection:
        connection.default_channel.queue_delete(queue)


# --- what happened in a run --------------------------------------------------------------


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def step_events(instance, run_id: str, kind: dg.DagsterEventType) -> list:
    return [record.dagster_event for record in instance.all_logs(run_id, of_type=kind)]


def celery_worker_of_each_task(instance, run_id: str) -> list[tuple[str, str]]:
    """(step key, the Celery worker's node name) of each task the workers started."""
    found = []
    for event in step_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT):
        metadata = event.event_specific_data.metadata
        if "Celery worker" in metadata:
            found.append((event.step_key, metadata["Celery worker"].value))
    return found


def sim_runs(home: Path):
    from stock_assets.storage.warehouse import Warehouse

    return Warehouse(home).catalog.read("SELECT grid_id, run_id, model_id FROM sim_runs")


def assert_every_row_once(home: Path) -> None:
    rows = sim_runs(home)
    pairs = len(SYMBOLS) * len(MODELS)
    assert len(rows) == pairs * ROWS_PER_PAIR
    assert rows["run_id"].is_unique
    assert rows["grid_id"].nunique() == pairs * 3  # each model's grid, buy-and-hold, random
    assert set(rows.groupby("grid_id").size()) == {COMBINATIONS, len(GRID["fill_delays"])}


def assert_no_secret(stack: Stack, run_id: str) -> None:
    from dagster._serdes import serialize_value

    instance = stack.instance()
    run = instance.get_run_by_id(run_id)
    stored = [serialize_value(run), serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
              serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)),
              *(serialize_value(record) for record in instance.all_logs(run_id))]  # fmt: skip
    assert not [text for text in stored if SECRET in text]
    for log in stack.logs.glob("*.log"):
        assert SECRET not in log.read_text(), log.name
    assert "amqp://guest:**@127.0.0.1:5672//" in (stack.logs / "worker-1.log").read_text()


# --- the runs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_search_steps_run_on_the_workers(stack):
    """Every step of a run submitted over GraphQL runs in a worker's pool process."""
    run_id = stack.submit_grid_search()
    assert stack.wait(run_id) == "SUCCESS", stack.tails()
    assert_every_row_once(stack.home)
    instance = stack.instance()
    started = step_events(instance, run_id, dg.DagsterEventType.STEP_START)
    assert len(started) == 2 + len(SYMBOLS) * len(MODELS)  # plan, the grids, store
    pool = {child for pid in stack.workers for child in children(pid)}
    assert {event.pid for event in started} <= pool  # each in a worker's pool process
    tasks = celery_worker_of_each_task(instance, run_id)
    assert sorted(step for step, _ in tasks) == sorted(event.step_key for event in started)
    node_names = {f"{stack.queue}-{pid}" for pid in stack.workers}  # see stock-assets worker
    assert {name.split("@")[0] for _, name in tasks} <= node_names
    assert_no_secret(stack, run_id)


@pytest.mark.slow
def test_a_worker_killed_mid_step_loses_and_doubles_nothing(stack):
    """SIGKILL twice while a step runs: a worker's pool process (the worker rejects the
    task back to the queue), then a whole worker (the broker requeues what it held)."""
    instance = stack.instance()
    run_id = stack.submit_grid_search()
    first_worker, first_process, first_step = catch_mid_step(stack, run_id, set(stack.workers))
    os.kill(first_process, signal.SIGKILL)
    other = set(stack.workers) - {first_worker}
    second_worker, second_process, second_step = catch_mid_step(stack, run_id, other)
    os.killpg(second_worker, signal.SIGKILL)
    with suppress(ProcessLookupError):  # the paused pool process too, whatever its group
        os.kill(second_process, signal.SIGKILL)
    assert stack.wait(run_id) == "SUCCESS", stack.tails()
    assert_every_row_once(stack.home)
    started = step_events(instance, run_id, dg.DagsterEventType.STEP_START)
    succeeded = step_events(instance, run_id, dg.DagsterEventType.STEP_SUCCESS)
    assert sorted(e.step_key for e in succeeded) == sorted({e.step_key for e in started})
    done_by = {e.step_key: e.pid for e in succeeded}
    for step in (first_step, second_step):  # each taken up again by a live pool process
        assert done_by[step] not in (first_process, second_process)
    assert not step_events(instance, run_id, dg.DagsterEventType.STEP_FAILURE)


def finished(instance, run_id: str, start) -> bool:
    """Whether the step attempt that began with the event `start` has succeeded."""
    successes = step_events(instance, run_id, dg.DagsterEventType.STEP_SUCCESS)
    return any((e.step_key, e.pid) == (start.step_key, start.pid) for e in successes)


def catch_mid_step(stack: Stack, run_id: str, workers: set[int]) -> tuple[int, int, str]:
    """(worker, pool process, step) of a step that one of `workers` has started and not
    finished, its pool process stopped (SIGSTOP) so that it cannot finish before the kill."""
    instance = stack.instance()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pool = {child: pid for pid in workers for child in children(pid)}
        for event in step_events(instance, run_id, dg.DagsterEventType.STEP_START):
            if event.pid in pool and not finished(instance, run_id, event):
                os.kill(event.pid, signal.SIGSTOP)
                time.sleep(1.0)  # a success event already sent may still commit: wait for it
                if not finished(instance, run_id, event):
                    return pool[event.pid], event.pid, event.step_key
                os.kill(event.pid, signal.SIGCONT)
        status = stack.client.get_run_status(run_id).value
        assert status not in TERMINAL, f"the run ended ({status}) before a step was caught"
        time.sleep(0.1)
    raise AssertionError(f"no step of workers {workers} caught running{stack.tails()}")
