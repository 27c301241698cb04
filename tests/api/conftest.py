"""A data home built once per session (SPY, QQQ, VIXY for 8 synthetic sessions, SPY's
features with a 3/2 fold as well), and per-test environments pointing at it or a copy."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

START, END = "2024-02-20", "2024-02-29"  # 8 sessions
FOLD_3_2 = '{"train_days": 3, "test_days": 2}'
ENV_NAMES = (
    "ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "ALPACA_KEY_ID", "ALPACA_SECRET_KEY",
    "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "STOCK_ASSETS_API_TOKEN",
    "STOCK_ASSETS_DAGSTER_URL", "MLFLOW_TRACKING_URI",
)  # fmt: skip


def point_at(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """The environment of the `home` fixture, at `root`."""
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    monkeypatch.setenv("STOCK_ASSETS_PROVIDERS", "synthetic")
    monkeypatch.setenv("STOCK_ASSETS_LOG_LEVEL", "WARNING")
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from stock_assets.cli import main
    from stock_assets.core import calendar
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import build_features
    from stock_assets.storage.warehouse import Warehouse

    root = tmp_path_factory.mktemp("api") / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_at(monkeypatch, root)
        assert main(["ingest", "SPY", "QQQ", "VIXY", "--start", START, "--end", END]) == 0
        assert main(["features", "build", "SPY", "--start", START, "--end", END]) == 0
        days = calendar.sessions(dt.date.fromisoformat(START), dt.date.fromisoformat(END))
        build_features(Warehouse(root), "SPY", days, [FoldConfig(3, 2)])
    yield root


@pytest.fixture
def data(data_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test reads the shared data home (and must not change it)."""
    return point_at(monkeypatch, data_home)


@pytest.fixture(scope="module")
def data_copy(data_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the data home this module may change."""
    root = tmp_path_factory.mktemp("copy") / "home"
    shutil.copytree(data_home, root)
    return root


@pytest.fixture
def writable(data_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return point_at(monkeypatch, data_copy)


@pytest.fixture
def client_of():
    """A TestClient of a fresh app (with an optional token)."""
    from fastapi.testclient import TestClient

    from stock_assets.api.app import create_app

    clients = []

    def make(token: str | None = None) -> TestClient:
        client = TestClient(create_app(token=token))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
