"""`stock-assets status` at fixed clocks: during the session of Friday 2024-03-08 (EST:
09:30 ET is 14:30 UTC) and on the Saturday after; exit 1 only when stale in a session."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import pandas as pd
import pytest

from stock_assets.cli.common import dagster_instance
from stock_assets.cli.ops import add_status_parser
from stock_assets.core import calendar
from stock_assets.pipelines import alerts
from stock_assets.pipelines.ingest import ingest_symbol
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.sensors import health
from stock_assets.storage.warehouse import Warehouse

THURSDAY, FRIDAY = dt.date(2024, 3, 7), dt.date(2024, 3, 8)
OPEN = calendar.session_bounds(FRIDAY)[0]  # 14:30 UTC
INGESTED_AT = OPEN + pd.Timedelta(minutes=49, seconds=30)  # bars up to 10:18 ET stored


@pytest.fixture
def stored(home, monkeypatch):
    """SPY has Thursday and Friday up to 10:18 ET; QQQ has Thursday only."""
    monkeypatch.delenv(alerts.STALL_MINUTES_ENV, raising=False)
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    warehouse = Warehouse(home)
    ingest_symbol("SPY", [THURSDAY, FRIDAY], [SyntheticProvider()], warehouse, now=INGESTED_AT)
    ingest_symbol("QQQ", [THURSDAY], [SyntheticProvider()], warehouse, now=INGESTED_AT)
    dagster_instance().add_dynamic_partitions("symbols", ["SPY", "QQQ"])
    return warehouse


def status(capsys, *args: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name, handler, text):
        sub = commands.add_parser(name, help=text)
        sub.set_defaults(handler=handler)
        return sub

    add_status_parser(add)
    parsed = parser.parse_args(["status", *args])
    code = parsed.handler(parsed)
    return code, capsys.readouterr().out


def test_during_a_session_a_lagging_symbol_is_stale_and_the_exit_code_is_1(stored, capsys):
    now = OPEN + pd.Timedelta(minutes=51, seconds=30)  # 10:21:30 ET: clock 10:20 ET
    code, out = status(capsys, "--format", "json", "--now", now.isoformat())
    found = json.loads(out)
    assert code == 1
    assert (found["session_open"], found["session_clock"], found["stall_minutes"],
            found["stale"]) == (True, "2024-03-08T15:20:00+00:00", 5, True)  # fmt: skip
    assert found["symbols"] == [
        {"symbol": "QQQ", "last_bar": "2024-03-07T20:59:00+00:00", "lag_minutes": 1101.0,
         "lag_seconds": 66150.0, "sessions_behind": 1, "missing_minutes_today": 51,
         "stale": True},
        {"symbol": "SPY", "last_bar": "2024-03-08T15:18:00+00:00", "lag_minutes": 2.0,
         "lag_seconds": 210.0, "sessions_behind": 0, "missing_minutes_today": 2,
         "stale": False},
    ]  # fmt: skip
    assert found["live_sensor"] is None and found["alerts"] == []
    assert found["daemons"] and found["daemons_healthy"] is False


def test_a_symbol_becomes_stale_past_the_stall_threshold(stored, monkeypatch):
    instance = dagster_instance()
    at_threshold = health.report(instance, stored, OPEN + pd.Timedelta(minutes=54, seconds=59))
    spy = at_threshold.symbols[1]
    assert (spy.symbol, spy.lag_minutes, spy.stale) == ("SPY", 5.0, False)
    past = health.report(instance, stored, OPEN + pd.Timedelta(minutes=55))
    assert (past.symbols[1].lag_minutes, past.symbols[1].stale) == (6.0, True)
    monkeypatch.setenv(alerts.STALL_MINUTES_ENV, "10")
    relaxed = health.report(instance, stored, OPEN + pd.Timedelta(minutes=55))
    assert relaxed.symbols[1].stale is False


def test_outside_a_session_the_exit_code_is_0_and_today_has_no_missing_minutes(stored, capsys):
    saturday = pd.Timestamp("2024-03-09T15:00:00Z")
    alerts.fire(stored, "stall", "live_bars_sensor", "no progress",
                now=dt.datetime(2024, 3, 8, 15, 30, tzinfo=dt.UTC))  # fmt: skip
    code, out = status(capsys, "--format", "json", "--now", saturday.isoformat())
    found = json.loads(out)
    assert code == 0
    assert (found["session_open"], found["session_clock"], found["stale"]) == (
        False,
        "2024-03-08T20:59:00+00:00",
        False,
    )
    assert [(s["symbol"], s["lag_minutes"], s["sessions_behind"], s["missing_minutes_today"],
             s["stale"]) for s in found["symbols"]] == [
        ("QQQ", 1440.0, 1, None, True), ("SPY", 341.0, 0, None, False)]  # fmt: skip
    assert found["alerts"] == [{
        "kind": "stall", "subject": "live_bars_sensor", "message": "no progress",
        "fired_at": "2024-03-08T15:30:00+00:00", "updated_at": "2024-03-08T15:30:00+00:00",
    }]  # fmt: skip


def test_the_table_names_the_stale_symbols(stored, capsys):
    now = OPEN + pd.Timedelta(minutes=51, seconds=30)
    code, out = status(capsys, "--now", now.isoformat())
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == ("now 2024-03-08T15:21:30+00:00  session open  "
                        "clock 2024-03-08T15:20:00+00:00  stall threshold 5 min")  # fmt: skip
    assert lines[1].split() == ["symbol", "last_bar", "lag_minutes", "sessions_behind",
                                "missing_minutes_today", "stale"]  # fmt: skip
    assert lines[3].split() == ["SPY", "2024-03-08T15:18:00+00:00", "2.0", "0", "2", "False"]
    assert f"live sensor {health.LIVE_SENSOR}: never started" in lines
    assert lines[-1] == "STALE: QQQ"


def test_a_clock_without_an_offset_is_a_usage_error(stored, capsys):
    from stock_assets.core.errors import UsageError

    with pytest.raises(UsageError, match="give an offset"):
        status(capsys, "--now", "2024-03-08T15:00")
