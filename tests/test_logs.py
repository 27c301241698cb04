"""The sinks of the JSON log lines: the central log store (a segment per process under
<home>/logs) and OpenTelemetry; secrets are masked before either gets a line."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from stock_assets.logs import (
    SegmentHandler,
    add_otel_sink,
    get_logger,
    log_context,
    log_event,
    prune_segments,
)
from stock_assets.storage.logstore import LogQuery, read_logs

KEY_ID, SECRET = "PKTESTKEYID12345", "s3cr3tV4lue0123456789abcdef"
HEADER = "APCA-API-SECRET-KEY: hdrS3cretValue99"


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The process's store sink on (attached for the test if this process has none), the
    `stock_assets` loggers at INFO."""
    monkeypatch.delenv("STOCK_ASSETS_LOG_STORE", raising=False)
    root = get_logger("stock_assets")
    added = None
    if not any(isinstance(h, SegmentHandler) for h in root.handlers):
        added = SegmentHandler()
        root.addHandler(added)
    level = root.level
    root.setLevel(logging.INFO)
    yield home
    root.setLevel(level)
    if added:
        root.removeHandler(added)
        added.close()


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)


def log_secrets(logger: logging.Logger) -> None:
    with log_context(run_id="run-secret", asset="bars_1m"):
        log_event(logger, "fetch", f"GET with key {KEY_ID} and {SECRET}; {HEADER}",
                  symbol="SPY", headers={"APCA-API-SECRET-KEY": SECRET}, note=SECRET)  # fmt: skip
        logger.warning("retrying after %s", f"{HEADER} ({SECRET})", extra={"stage": "fetch"})


def test_two_processes_write_their_own_segments_and_both_are_read(store):
    child = textwrap.dedent("""
        from stock_assets.logs import get_logger, log_context, log_event
        log = get_logger("stock_assets.child")
        with log_context(run_id="run-child"):
            log_event(log, "fetch", "child fetched", symbol="QQQ", rows=389)
            log.debug("not stored: below INFO")
    """)
    env = {"STOCK_ASSETS_HOME": str(store), "STOCK_ASSETS_LOG_LEVEL": "WARNING",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert done.stderr == ""  # stderr shows WARNING and up; the store still gets INFO
    with log_context(run_id="run-parent"):
        log_event(get_logger("stock_assets.parent"), "fetch", "parent fetched", symbol="SPY")

    found = read_logs(store, LogQuery(order="asc"))
    assert [(f.run_id, f.symbol, f.message) for f in found] == [
        ("run-child", "QQQ", "child fetched"), ("run-parent", "SPY", "parent fetched")
    ]  # fmt: skip
    assert found[0].fields == {"rows": 389}
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert [p.parent.name for p in (store / "logs").rglob("*.jsonl")] == [f"date={today}"] * 2
    assert [f.message for f in read_logs(store, LogQuery(run_id="run-child", symbol="QQQ"))] == [
        "child fetched"
    ]  # fmt: skip


def test_the_store_follows_the_home_of_the_moment(store, tmp_path, monkeypatch):
    log = get_logger("stock_assets.test")
    log_event(log, "fetch", "in the first home")
    other = tmp_path / "other-home"
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(other))
    log_event(log, "fetch", "in the other home")
    assert [f.message for f in read_logs(store)] == ["in the first home"]
    assert [f.message for f in read_logs(other)] == ["in the other home"]


def test_store_off(store, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_LOG_STORE", "0")
    log_event(get_logger("stock_assets.test"), "fetch", "not stored")
    assert not (store / "logs").exists()


def test_no_secret_reaches_the_store(store, secrets_set):
    log_secrets(get_logger("stock_assets.test"))
    raw = b"".join(path.read_bytes() for path in (store / "logs").rglob("*.jsonl"))
    for secret in (KEY_ID, SECRET, "hdrS3cretValue99"):
        assert secret.encode() not in raw
    found = read_logs(store, LogQuery(order="asc"))
    assert [f.message for f in found] == [
        "GET with key *** and ***; APCA-API-SECRET-KEY: ***",
        "retrying after APCA-API-SECRET-KEY: *** (***)",
    ]
    assert found[0].fields == {"headers": {"APCA-API-SECRET-KEY": "***"}, "note": "***"}


def test_otel_records_carry_the_redacted_fields(home, secrets_set):
    from opentelemetry.sdk._logs.export import InMemoryLogExporter

    exporter, root = InMemoryLogExporter(), logging.getLogger("stock_assets")
    level = root.level
    handler = add_otel_sink(exporter, batch=False)
    try:
        log_secrets(get_logger("stock_assets.test"))
        logging.getLogger("stock_assets.test").debug("below INFO: not exported")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    records = [data.log_record for data in exporter.get_finished_logs()]
    assert [(r.severity_text, r.severity_number.name, r.body) for r in records] == [
        ("INFO", "INFO", "GET with key *** and ***; APCA-API-SECRET-KEY: ***"),
        ("WARNING", "WARN", "retrying after APCA-API-SECRET-KEY: *** (***)"),
    ]
    first = dict(records[0].attributes)
    assert {k: first[k] for k in ("run_id", "asset", "symbol", "stage", "logger", "note")} == {
        "run_id": "run-secret", "asset": "bars_1m", "symbol": "SPY", "stage": "fetch",
        "logger": "stock_assets.test", "note": "***",
    }  # fmt: skip
    assert first["headers"] == '{"APCA-API-SECRET-KEY": "***"}'
    assert "message" not in first
    assert records[0].timestamp > 0
    text = repr([(r.body, dict(r.attributes)) for r in records])
    for secret in (KEY_ID, SECRET, "hdrS3cretValue99"):
        assert secret not in text


def make_day(directory: Path, day: dt.date, size: int) -> Path:
    folder = directory / f"date={day}"
    folder.mkdir(parents=True)
    (folder / "1-a.jsonl").write_bytes(b"x" * size)
    return folder


def test_retention_deletes_day_folders_older_than_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_LOG_RETENTION_DAYS", "14")
    today = dt.date(2024, 3, 1)
    folders = {age: make_day(tmp_path, today - dt.timedelta(days=age), 10)
               for age in (20, 15, 14, 1, 0)}  # fmt: skip
    (tmp_path / "not-a-day").mkdir()
    assert prune_segments(tmp_path, today) == [folders[20], folders[15]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "date=2024-02-16", "date=2024-02-29", "date=2024-03-01", "not-a-day"
    ]  # fmt: skip


def test_size_cap_deletes_the_oldest_days_but_never_today(tmp_path, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_LOG_MAX_MB", "1")
    today, mb = dt.date(2024, 3, 1), 1024 * 1024
    oldest = make_day(tmp_path, dt.date(2024, 2, 28), int(0.7 * mb))
    make_day(tmp_path, dt.date(2024, 2, 29), int(0.4 * mb))
    make_day(tmp_path, today, int(0.1 * mb))
    assert prune_segments(tmp_path, today) == [oldest]
    make_day(tmp_path, dt.date(2024, 2, 27), 10)
    (tmp_path / f"date={today}" / "2-b.jsonl").write_bytes(b"x" * 2 * mb)
    assert len(prune_segments(tmp_path, today)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["date=2024-03-01"]


def test_a_new_segment_prunes_old_days(store, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_LOG_RETENTION_DAYS", "3")
    today = dt.datetime.now(dt.UTC).date()
    old = make_day(store / "logs", today - dt.timedelta(days=4), 10)
    kept = make_day(store / "logs", today - dt.timedelta(days=3), 10)
    log_event(get_logger("stock_assets.test"), "fetch", "opens a segment")
    assert not old.exists() and kept.exists()


def test_bad_retention_setting_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_LOG_RETENTION_DAYS", "two weeks")
    with pytest.raises(ValueError, match="STOCK_ASSETS_LOG_RETENTION_DAYS='two weeks'"):
        prune_segments(tmp_path, dt.date(2024, 3, 1))


def test_redact_masks_url_passwords_and_the_api_token(monkeypatch):
    from stock_assets.logs import redact

    monkeypatch.setenv("STOCK_ASSETS_API_TOKEN", "tok-123456")
    text = ("broker amqp://guest:s3cr@t!@rabbitmq:5672// catalog postgresql://u:pw@db/catalog "
            "plain postgresql://db/catalog http://example.com/a@b token tok-123456")  # fmt: skip
    assert redact(text) == (
        "broker amqp://guest:***@rabbitmq:5672// catalog postgresql://u:***@db/catalog "
        "plain postgresql://db/catalog http://example.com/a@b token ***"
    )
