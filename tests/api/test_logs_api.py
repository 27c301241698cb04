"""GET /logs: the central log store's lines by run, symbol, stage, time and level, paged;
hostile or malformed filters are JSON 422s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stock_assets.core.symbols import RULE
from tests.conftest import write_log_line

T0 = dt.datetime(2024, 2, 20, 14, 30, tzinfo=dt.UTC)


def append(home: Path, seconds: float, message: str, level: str = "INFO", **fields) -> None:
    write_log_line(home, T0 + dt.timedelta(seconds=seconds), message, level, **fields)


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    """The app of create_app() over a home with four log lines."""
    from stock_assets.api.app import create_app

    app = create_app()
    append(home, 0, "fetched", symbol="SPY", stage="fetch", run_id="run-1", rows=390)
    append(home, 1, "fetched", symbol="QQQ", stage="fetch", run_id="run-1", rows=389)
    append(home, 2, "dropped", "WARNING", symbol="SPY", stage="validate", run_id="run-1")
    append(home, 3, "fetched", symbol="SPY", stage="fetch", run_id="run-2", ratio=float("nan"))
    with TestClient(app) as test_client:
        yield test_client


def messages(answer) -> list[tuple]:
    assert answer.status_code == 200, answer.text
    return [(line["run_id"], line["symbol"], line["message"]) for line in answer.json()["lines"]]


def test_lines_of_a_run_and_symbol(client):
    answer = client.get("/logs", params={"run_id": "run-1", "symbol": "spy"})
    assert answer.status_code == 200
    assert answer.json() == {"limit": 100, "offset": 0, "order": "desc", "lines": [
        {"ts": "2024-02-20T14:30:02+00:00", "level": "WARNING", "logger": "stock_assets.test",
         "message": "dropped", "run_id": "run-1", "asset": None, "symbol": "SPY",
         "stage": "validate", "fields": {}},
        {"ts": "2024-02-20T14:30:00+00:00", "level": "INFO", "logger": "stock_assets.test",
         "message": "fetched", "run_id": "run-1", "asset": None, "symbol": "SPY",
         "stage": "fetch", "fields": {"rows": 390}},
    ]}  # fmt: skip


def test_stage_since_and_level(client):
    assert messages(client.get("/logs?stage=fetch&since=2024-02-20T14:30:01Z")) == [
        ("run-2", "SPY", "fetched"), ("run-1", "QQQ", "fetched")
    ]  # fmt: skip
    assert messages(client.get("/logs?level=WARNING")) == [("run-1", "SPY", "dropped")]
    assert messages(client.get("/logs?since=1h")) == []  # the lines are from 2024


def test_paging_and_order(client):
    assert messages(client.get("/logs?order=asc&limit=2&offset=1")) == [
        ("run-1", "QQQ", "fetched"), ("run-1", "SPY", "dropped")
    ]  # fmt: skip
    answer = client.get("/logs?limit=1")
    assert answer.json()["lines"][0]["fields"] == {"ratio": None}  # NaN has no JSON


@pytest.mark.parametrize("raw", ["..%2Fx", "SPY;DROP", "%2e%2e", "1ABC", "%C5%BFpy"])
def test_hostile_symbols_are_422(client, raw):
    answer = client.get(f"/logs?symbol={raw}")
    assert answer.status_code == 422
    assert RULE in answer.json()["error"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("since=yesterday", "since 'yesterday'"),
        ("stage=a%27%20OR%20%271", "stage \"a' OR '1\""),
        ("run_id=r1;DROP", "run id 'r1;DROP'"),
        ("level=LOUD", "query level"),
        ("limit=0", "query limit"),
        ("limit=1001", "query limit"),
        ("offset=-1", "query offset"),
        ("order=sideways", "query order"),
    ],
)
def test_malformed_filters_are_422(client, query, fragment):
    answer = client.get(f"/logs?{query}")
    assert answer.status_code == 422
    assert fragment in answer.json()["error"]
