"""Shared fixtures: a private STOCK_ASSETS_HOME / DAGSTER_HOME per test, real data paths."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stock_assets.logs import JsonFormatter

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The central log store only in tests that have their own home (`home`): the others
    would write their log lines under ./data. And no Dagster definitions state storage
    left over from an instance an earlier test closed (Dagster keeps it in a context
    variable, and loading definitions afterwards fails on its dead instance)."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    monkeypatch.setenv("STOCK_ASSETS_LOG_STORE", "0")
    monkeypatch.delenv("STOCK_ASSETS_CATALOG_URL", raising=False)  # DuckDB unless asked
    with set_defs_state_storage(None):
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty STOCK_ASSETS_HOME with its own Dagster instance directory (and log store)."""
    root = tmp_path / "home"
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(root))
    monkeypatch.setenv("STOCK_ASSETS_LOG_STORE", "1")
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    monkeypatch.setenv("STOCK_ASSETS_PROVIDERS", "synthetic")
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "ALPACA_KEY_ID",
                 "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY",
                 "MLFLOW_TRACKING_URI"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server (dropped after the test)."""
    from stock_assets.testing.postgres import reachable, temporary_database

    if (why := reachable()) is not None:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({why})")
    with temporary_database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def catalog_backend(request: pytest.FixtureRequest, home: Path,
                    monkeypatch: pytest.MonkeyPatch) -> str:  # fmt: skip
    """Runs the test twice: the catalog's tables in the DuckDB file, then in a fresh
    PostgreSQL database (STOCK_ASSETS_CATALOG_URL, inherited by subprocesses)."""
    if request.param == "postgresql":
        monkeypatch.setenv("STOCK_ASSETS_CATALOG_URL", request.getfixturevalue("postgres_url"))
    return request.param


def write_log_line(home: Path, when, message: str, level: str = "INFO", **fields) -> None:
    """One line of the central log store, as a process at `when` (UTC) would write it."""
    folder = home / "logs" / f"date={when.date()}"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"timestamp": when.isoformat(), "level": level, "logger": "stock_assets.test",
              "message": message, **fields}  # fmt: skip
    with (folder / "1-test.jsonl").open("a") as segment:
        segment.write(json.dumps(record) + "\n")


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data samples not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The project's JSON log lines (INFO and up) written while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("stock_assets")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def dagster_dev(home: Path) -> Iterator[tuple[int, dict]]:
    """`stock-assets dev` on the test's home: (port, its first healthy GraphQL answer)."""
    with running_dagster_dev() as server:
        yield server


@contextmanager
def running_dagster_dev(timeout: float = 180) -> Iterator[tuple[int, dict]]:
    """`stock-assets dev` on a free port, yielded once the UI answers and every daemon is
    healthy: (port, the answer of a GraphQL query for asset keys and daemon health)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # No year of history for each symbol a test adds, unless the test asks for it.
    env = {"STOCK_ASSETS_HISTORY_SESSIONS": "0", **os.environ}
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "dev", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    query = b'{"query": "{ assetNodes { assetKey { path } } instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"}'  # noqa: E501
    try:
        deadline, answer = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", data=query,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                answer = json.loads(urllib.request.urlopen(request, timeout=5).read())["data"]
                statuses = answer["instance"]["daemonHealth"]["allDaemonStatuses"]
                if all(s["healthy"] for s in statuses):
                    break
            except OSError:
                pass
            time.sleep(2)
        assert answer is not None, "the Dagster UI did not answer"
        yield port, answer
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
