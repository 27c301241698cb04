"""The compose stack of docker-compose.yml, built and run with podman for tests/deploy.

The compose file is the one users run; deploy/compose.podman.yml only swaps the Docker Hub
images (postgres, rabbitmq) for stand-ins built from Debian's packages and builds the app
image on the local Debian base (../shared/tools/container-base.sh makes it). The stack
gets a `.env` of random secrets in a temporary directory and a project name of its own,
and is torn down with its volumes whatever happens.

Podman 4.3 (Debian bookworm) runs no health checks by itself (they need systemd timers)
and podman-compose ignores `condition: service_healthy` below podman 4.6, so the stack is
created with `up --no-start` and started here in the order of its `depends_on`, each
service once its dependencies' own health checks (`podman healthcheck run`) pass: what
`docker compose up` does with the same file.

Without podman, podman-compose or the base image the tests are skipped, or fail when
STOCK_ASSETS_REQUIRE_CONTAINERS=1 (CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "deploy" / "compose.podman.yml")
BASE_IMAGE = "localhost/debian-python:bookworm"
APP_IMAGE = "localhost/stock-assets:compose-test"
STANDIN_IMAGES = ("localhost/stock-assets-standin-postgres:15",
                  "localhost/stock-assets-standin-rabbitmq:3")  # fmt: skip
WORKERS = 2
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
PROJECT_LABEL, SERVICE_LABEL = "com.docker.compose.project", "com.docker.compose.service"
TIMINGS: dict[str, float] = {}  # what took how long, printed in the terminal summary


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} exited {done.returncode}: "
                             f"{done.stderr[-2000:]}")  # fmt: skip
    return done


def podman_compose() -> list[str] | None:
    found = shutil.which("podman-compose")
    if found:
        return [found]
    try:
        import podman_compose  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "podman_compose"]


def missing_prerequisite() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (bash ../shared/tools/container-base.sh)"
    if podman_compose() is None:
        return "podman-compose is not installed (pip install podman-compose)"
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode != 0:
        return f"no {BASE_IMAGE} image (bash ../shared/tools/container-base.sh)"
    return None


def compose_env() -> dict[str, str]:
    """This process's environment less every variable the compose files interpolate: a
    value set here would override the .env file (as it does with docker compose)."""
    names = set()
    for path in COMPOSE_FILES:
        names |= set(re.findall(r"\$\{([A-Z0-9_]+)", path.read_text()))
    return {key: value for key, value in os.environ.items() if key not in names}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    """A compose project: its name, its .env values, and what the test measured."""

    project: str
    env_file: Path
    values: dict[str, str] = field(repr=False)  # secrets: never in a failure's report
    timings: dict[str, float] = field(default_factory=lambda: TIMINGS)
    compose_files: tuple[Path, ...] = COMPOSE_FILES
    app_image: str = APP_IMAGE
    standin_images: tuple[str, ...] = STANDIN_IMAGES
    workers: int = WORKERS
    podman = staticmethod(podman)

    @property
    def secrets(self) -> list[str]:
        return [self.values[key] for key in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD",
                                             "STOCK_ASSETS_API_TOKEN")]  # fmt: skip

    def compose_command(self, *args: str) -> list[str]:
        files = [arg for path in self.compose_files for arg in ("-f", str(path))]
        return [*podman_compose(), "--env-file", str(self.env_file), "-p", self.project,
                *files, *args]  # fmt: skip

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run(self.compose_command(*args), cwd=ROOT, env=compose_env(),
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            output = self.redact((done.stdout + done.stderr)[-4000:])
            raise AssertionError(f"podman-compose {args[0]} exited {done.returncode}:\n{output}")
        return done

    def config(self) -> dict:
        return yaml.safe_load(self.compose("config").stdout)

    def containers(self, service: str | None = None) -> list[str]:
        """Container names of the project (of one service), in creation order."""
        listed = podman("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.project}",
                        "--format", "json").stdout  # fmt: skip
        found = [(entry["Created"], entry["Names"][0]) for entry in json.loads(listed or "[]")
                 if service is None or entry["Labels"].get(SERVICE_LABEL) == service]  # fmt: skip
        return [name for _, name in sorted(found)]

    def healthy(self, container: str, attempts: int = 3) -> bool:
        """Whether its health check passes (once in a few tries: a check may time out on a
        busy machine; compose calls a container unhealthy after `retries` failures)."""
        for _ in range(attempts):
            if podman("healthcheck", "run", container, check=False, timeout=90).returncode == 0:
                return True
        return False

    def worker_hosts(self) -> dict[str, str]:
        """Hostname -> container of each worker (a Celery node is named name@hostname)."""
        return {podman("inspect", "-f", "{{.Config.Hostname}}", c).stdout.strip(): c
                for c in self.containers("worker")}  # fmt: skip

    def psql(self, database: str, sql: str) -> list[list[str]]:
        """Rows of a query run by psql inside the postgres container (on its socket)."""
        (container,) = self.containers("postgres")
        out = podman("exec", container, "psql", "-U", self.values["POSTGRES_USER"],
                     "-d", database, "-AtF", "\t", "-c", sql).stdout  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def port(self, name: str) -> int:
        return int(self.values[name])

    def logs(self, container: str) -> str:
        done = podman("logs", container, check=False)
        return done.stdout + done.stderr

    def redact(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)


def write_env(path: Path) -> dict[str, str]:
    values = {
        "POSTGRES_USER": "sa_" + secrets.token_hex(3),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "RABBITMQ_USER": "sa_" + secrets.token_hex(3),
        "RABBITMQ_PASSWORD": secrets.token_hex(16),
        "STOCK_ASSETS_API_TOKEN": secrets.token_hex(16),
        "STOCK_ASSETS_IMAGE": APP_IMAGE,
        "STOCK_ASSETS_PROVIDERS": "synthetic",
        "STOCK_ASSETS_HISTORY_SESSIONS": "0",  # no year of history for each symbol added
        "DAGSTER_WEBSERVER_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
        "API_PORT": str(free_port()),
    }
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    return values


def build(stack: Stack, directory: Path) -> None:
    """The app image (one build: the app services share it) and the two stand-ins, at once."""
    started, builds = time.monotonic(), {}
    for name, services in (("app image", ["code"]), ("stand-ins", ["postgres", "rabbitmq"])):
        log = (directory / f"build {name}.log").open("w+")
        command = stack.compose_command("build", *services)
        process = subprocess.Popen(command, cwd=ROOT, env=compose_env(), stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        builds[name] = (process, log)
    failed = []
    while builds:
        for name, (process, log) in list(builds.items()):
            if process.poll() is None:
                continue
            stack.timed(f"build {name}", started)
            del builds[name]
            if process.returncode != 0:
                log.seek(0)
                failed.append(f"build of the {name} exited {process.returncode}:\n"
                              f"{log.read()[-4000:]}")  # fmt: skip
            log.close()
        if time.monotonic() - started > 1200:
            for process, _ in builds.values():
                process.kill()
            failed.append(f"builds still going after 1200 s: {list(builds)}")
            break
        time.sleep(1)
    assert not failed, stack.redact("\n".join(failed))


def start_in_dependency_order(stack: Stack, services: dict, timeout: float = 420) -> None:
    """`podman start` each service once the services it depends on are healthy (their
    health checks run here: podman 4.3 runs none without systemd)."""
    started: set[str] = set()
    healthy: set[str] = set()
    begun = time.monotonic()
    while healthy != set(services):
        for name, service in services.items():
            needs = service.get("depends_on") or {}
            if isinstance(needs, list):
                needs = {dep: {"condition": "service_started"} for dep in needs}
            ready = all(dep in healthy if spec.get("condition") == "service_healthy"
                        else dep in started for dep, spec in needs.items())  # fmt: skip
            if name not in started and ready:
                podman("start", *stack.containers(name))
                started.add(name)
        checking = {name: stack.containers(name) for name in sorted(started - healthy)}
        with ThreadPoolExecutor(
            max_workers=8
        ) as pool:  # each check starts a process in a container
            passed = {name: all(pool.map(stack.healthy, containers))
                      for name, containers in checking.items()}  # fmt: skip
        for name in [name for name, ok in passed.items() if ok]:
            healthy.add(name)
            stack.timed(f"healthy {name}", begun)
        if time.monotonic() - begun > timeout:
            waiting = sorted(set(services) - healthy)
            tails = "\n".join(f"--- {c}\n{stack.redact(stack.logs(c)[-3000:])}"
                              for name in waiting for c in stack.containers(name))  # fmt: skip
            raise AssertionError(f"not healthy after {timeout:.0f}s: {waiting}\n{tails}")
        time.sleep(2)


def tear_down(stack: Stack) -> None:
    """Containers, volumes and the network of the project, even after a failed start."""
    started = time.monotonic()
    with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
        stack.compose("down", "-v", "-t", "5", timeout=300)
    # what `down` left: a container it failed to stop, one that others require
    podman("pod", "rm", "-f", f"pod_{stack.project}", check=False)
    label = f"label={PROJECT_LABEL}={stack.project}"
    leftover = podman("ps", "-aq", "--filter", label, check=False).stdout.split()
    if leftover:
        podman("rm", "-f", "--depend", "-t", "0", *leftover, check=False)
    volumes = podman("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
    if volumes:
        podman("volume", "rm", "-f", *volumes, check=False)
    podman("network", "rm", "-f", f"{stack.project}_default", check=False)
    stack.timed("down -v", started)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack built, created with WORKERS workers, started and healthy."""
    missing = missing_prerequisite()
    if missing:
        if os.environ.get("STOCK_ASSETS_REQUIRE_CONTAINERS") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    directory = tmp_path_factory.mktemp("compose")
    env_file = directory / ".env"
    stack = Stack(f"sa-test-{uuid.uuid4().hex[:8]}", env_file, write_env(env_file))
    started = time.monotonic()
    try:
        build(stack, directory)
        up = time.monotonic()
        stack.compose("up", "-d", "--no-build", "--no-start", "--scale", f"worker={WORKERS}")
        start_in_dependency_order(stack, stack.config()["services"])
        stack.timed("up (created .. all healthy)", up)
        yield stack
    finally:
        tear_down(stack)
        stack.timed("total", started)


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.section("compose stack timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds} s")


# --- Dagster over its GraphQL API -------------------------------------------------------

LOGS_QUERY = """
query Logs($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on EngineEvent { metadataEntries { label ... on TextMetadataEntry { text } } }
      }
    }
    ... on PythonError { message }
  }
}"""
ADD_PARTITION = """
mutation Add($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name,
                      partitionKey: $key) {
    __typename
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
REPOSITORY = {"repositoryLocationName": "stock_assets", "repositoryName": "__repository__"}


class Dagster:
    """The stack's webserver: runs submitted and followed over GraphQL, as the CLI's
    RemoteLauncher does (the same launch builders, the same partition tags)."""

    def __init__(self, port: int):
        from dagster_graphql import DagsterGraphQLClient

        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        self.url = f"http://127.0.0.1:{port}/graphql"

    def graphql(self, query: str, **variables) -> dict:
        answer = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        answer.raise_for_status()
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def add_symbol(self, symbol: str) -> None:
        added = self.graphql(ADD_PARTITION, selector=REPOSITORY, name="symbols", key=symbol)
        kind = added["addDynamicPartition"]["__typename"]
        assert kind in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), added

    def submit(self, launch) -> str:
        tags = dict(launch.tags)
        if launch.partition_key is not None:
            tags["dagster/partition"] = launch.partition_key
            if "|" in launch.partition_key:  # a symbol x day partition
                day, symbol = launch.partition_key.split("|")
                tags |= {"dagster/partition/date": day, "dagster/partition/symbol": symbol}
        return self.client.submit_job_execution(
            launch.job.name, repository_location_name="stock_assets",
            run_config=launch.run_config, tags=tags,
        )  # fmt: skip

    def status(self, run_id: str) -> str:
        return self.client.get_run_status(run_id).value

    def finished(self, run_id: str) -> bool:
        return self.status(run_id) in TERMINAL

    def wait(self, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
        deadline, done = time.monotonic() + timeout, {}
        while len(done) < len(run_ids):
            for run_id in run_ids:
                if run_id not in done and (status := self.status(run_id)) in TERMINAL:
                    done[run_id] = status
            if time.monotonic() > deadline:
                pending = [r for r in run_ids if r not in done]
                raise AssertionError(f"runs still going after {timeout:.0f}s: {pending}")
            time.sleep(1)
        return done

    def events(self, run_id: str) -> list[dict]:
        events, cursor = [], None
        while True:
            page = self.graphql(LOGS_QUERY, runId=run_id, after=cursor)["logsForRun"]
            assert page["__typename"] == "EventConnection", page
            events += page["events"]
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def failures(self, run_id: str) -> str:
        return "\n".join(f"{e['__typename']} {e.get('stepKey')}: {e.get('message', '')[:300]}"
                         for e in self.events(run_id) if "Failure" in e["__typename"])  # fmt: skip

    @staticmethod
    def placements(events: list[dict]) -> list[tuple[str, str]]:
        """(step key, Celery node) of each `Executing steps ... in celery worker` event."""
        return [(event["stepKey"], entry["text"]) for event in events
                for entry in event.get("metadataEntries") or []
                if entry["label"] == "Celery worker"]  # fmt: skip

    @staticmethod
    def succeeded(events: list[dict]) -> set[str]:
        return {e["stepKey"] for e in events if e["__typename"] == "ExecutionStepSuccessEvent"}


@pytest.fixture(scope="module")
def dagster(stack: Stack) -> Dagster:
    return Dagster(stack.port("DAGSTER_WEBSERVER_PORT"))
