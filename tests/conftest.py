"""Shared fixtures: a private STOCK_ASSETS_HOME / DAGSTER_HOME per test, real data paths."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from stock_assets.logs import JsonFormatter

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty STOCK_ASSETS_HOME with its own Dagster instance directory."""
    root = tmp_path / "home"
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    monkeypatch.setenv("STOCK_ASSETS_PROVIDERS", "synthetic")
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "ALPACA_KEY_ID",
                 "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return root


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
