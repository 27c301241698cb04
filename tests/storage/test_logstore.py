"""The `logs` table over the segment files: filters, order and paging, damaged lines,
and the validation of what is asked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import InvalidSymbol
from stock_assets.storage.logstore import LogQuery, parse_since, read_logs, segments

T0 = dt.datetime(2024, 2, 20, 14, 30, tzinfo=dt.UTC)


def line(seconds: int, message: str, level: str = "INFO", **fields) -> str:
    stamp = (T0 + dt.timedelta(seconds=seconds)).isoformat()
    return json.dumps({"timestamp": stamp, "level": level, "logger": "stock_assets.test",
                       "message": message, **fields})  # fmt: skip


def write_segment(home: Path, day: str, name: str, lines: list[str], tail: str = "") -> Path:
    folder = home / "logs" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join(f"{text}\n" for text in lines) + tail)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two processes' segments of 2024-02-20 and one of the day before."""
    write_segment(tmp_path, "2024-02-19", "100-aaaa", [
        line(-86400, "yesterday", symbol="SPY", stage="fetch", run_id="r0"),
    ])  # fmt: skip
    write_segment(tmp_path, "2024-02-20", "200-bbbb", [
        line(0, "fetched", symbol="SPY", stage="fetch", run_id="r1", rows=390),
        line(2, "dropped", level="WARNING", symbol="SPY", stage="validate", run_id="r1",
             dropped={"ohlc": 2}),
        line(4, "stored", symbol="SPY", stage="persist", run_id="r1", asset="bars_1m"),
    ])  # fmt: skip
    write_segment(tmp_path, "2024-02-20", "300-cccc", [
        line(1, "fetched", symbol="QQQ", stage="fetch", run_id="r2", rows=389),
        line(3, "failed", level="ERROR", symbol="QQQ", stage="fetch", run_id="r2"),
    ])  # fmt: skip
    return tmp_path


def messages(home: Path, **filters) -> list[tuple[str | None, str]]:
    return [(found.symbol, found.message) for found in read_logs(home, LogQuery(**filters))]


def test_lines_of_every_segment_newest_first(store):
    assert messages(store) == [
        ("SPY", "stored"), ("QQQ", "failed"), ("SPY", "dropped"), ("QQQ", "fetched"),
        ("SPY", "fetched"), ("SPY", "yesterday"),
    ]  # fmt: skip


def test_filter_by_run_and_symbol(store):
    assert messages(store, run_id="r1", symbol="spy") == [
        ("SPY", "stored"), ("SPY", "dropped"), ("SPY", "fetched")
    ]  # fmt: skip
    assert messages(store, run_id="r2") == [("QQQ", "failed"), ("QQQ", "fetched")]
    assert messages(store, run_id="r1", symbol="QQQ") == []


def test_columns_and_other_fields_as_json(store):
    [dropped] = read_logs(store, LogQuery(stage="validate"))
    assert dropped.ts == T0 + dt.timedelta(seconds=2)
    assert (dropped.level, dropped.logger, dropped.run_id, dropped.asset, dropped.stage) == (
        "WARNING", "stock_assets.test", "r1", None, "validate"
    )  # fmt: skip
    assert dropped.fields == {"dropped": {"ohlc": 2}}
    assert dropped.to_json() == {
        "ts": "2024-02-20T14:30:02+00:00", "level": "WARNING", "logger": "stock_assets.test",
        "message": "dropped", "run_id": "r1", "asset": None, "symbol": "SPY",
        "stage": "validate", "fields": {"dropped": {"ohlc": 2}},
    }  # fmt: skip


def test_since_and_minimum_level(store):
    since = T0 + dt.timedelta(seconds=1)
    assert messages(store, since=since) == [
        ("SPY", "stored"), ("QQQ", "failed"), ("SPY", "dropped"), ("QQQ", "fetched")
    ]  # fmt: skip
    assert messages(store, level="warning") == [("QQQ", "failed"), ("SPY", "dropped")]
    assert messages(store, level="ERROR") == [("QQQ", "failed")]
    assert messages(store, level="ERROR", since=T0 + dt.timedelta(seconds=4)) == []


def test_since_reads_only_the_day_folders_it_needs(store):
    assert [p.name for p in segments(store)] == ["100-aaaa.jsonl", "200-bbbb.jsonl",
                                                 "300-cccc.jsonl"]  # fmt: skip
    assert [p.name for p in segments(store, T0)] == ["200-bbbb.jsonl", "300-cccc.jsonl"]


def test_oldest_first_limit_and_offset(store):
    assert messages(store, order="asc", limit=2) == [("SPY", "yesterday"), ("SPY", "fetched")]
    assert messages(store, order="asc", limit=2, offset=2) == [
        ("QQQ", "fetched"), ("SPY", "dropped")
    ]  # fmt: skip
    assert messages(store, limit=1, stage="fetch") == [("QQQ", "failed")]


def test_half_written_and_damaged_lines_are_skipped(tmp_path):
    write_segment(tmp_path, "2024-02-20", "1-a", [
        line(0, "first"),
        "not json at all",
        "[1, 2, 3]",
        json.dumps({"timestamp": "not a time", "level": "INFO", "message": "bad time"}),
        json.dumps({"message": "no timestamp"}),
        line(1, "second", symbol="SPY"),
    ], tail=line(2, "killed while writing")[:40])  # fmt: skip
    write_segment(tmp_path, "2024-02-20", "2-b", [])  # created, nothing written yet
    assert [found.message for found in read_logs(tmp_path)] == ["second", "first"]


def test_no_store_yet_is_no_lines(tmp_path):
    assert read_logs(tmp_path) == []
    assert read_logs(tmp_path, LogQuery(symbol="SPY", since=T0)) == []


def test_quotes_in_values_are_data_not_sql(tmp_path):
    write_segment(tmp_path, "2024-02-20", "1-a", [
        line(0, "it's 'quoted'", stage="fetch"), line(1, "other", stage="x"),
    ])  # fmt: skip
    assert [f.message for f in read_logs(tmp_path, LogQuery(stage="fetch"))] == ["it's 'quoted'"]


@pytest.mark.parametrize(
    ("filters", "error", "fragment"),
    [
        ({"symbol": "../x"}, InvalidSymbol, "'../x'"),
        ({"symbol": "SPY;DROP"}, InvalidSymbol, "'SPY;DROP'"),
        ({"stage": "x' OR '1'='1"}, UsageError, "stage"),
        ({"run_id": "r1; DROP TABLE"}, UsageError, "run id"),
        ({"level": "LOUD"}, UsageError, "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"limit": 0}, UsageError, "limit 0"),
        ({"since": dt.datetime(2024, 2, 20)}, UsageError, "time zone"),
        ({"order": "sideways"}, UsageError, "order"),
    ],
)
def test_bad_queries_are_usage_errors(filters, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        LogQuery(**filters)


def test_parse_since():
    now = dt.datetime(2024, 2, 20, 15, 0, tzinfo=dt.UTC)
    assert parse_since("30m", now) == dt.datetime(2024, 2, 20, 14, 30, tzinfo=dt.UTC)
    assert parse_since("1h", now) == dt.datetime(2024, 2, 20, 14, 0, tzinfo=dt.UTC)
    assert parse_since("2d", now) == dt.datetime(2024, 2, 18, 15, 0, tzinfo=dt.UTC)
    assert parse_since("1w", now) == dt.datetime(2024, 2, 13, 15, 0, tzinfo=dt.UTC)
    assert parse_since("90s", now) == dt.datetime(2024, 2, 20, 14, 58, 30, tzinfo=dt.UTC)
    assert parse_since("2024-02-20T09:30") == dt.datetime(2024, 2, 20, 9, 30, tzinfo=dt.UTC)
    assert parse_since("2024-02-20T09:30:00-05:00") == T0
    for bad in ("yesterday", "5x", "-1h", "1 h", "", "999999w", "0001-01-01T00:00+01:00"):
        with pytest.raises(UsageError, match="30m, 1h, 2d"):
            parse_since(bad)
