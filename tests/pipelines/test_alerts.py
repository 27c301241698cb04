"""Alerts: one row per (kind, subject), notified once when firing and once when cleared,
through a webhook that is redacted, logged by host only, and never raises."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from stock_assets.pipelines import alerts
from stock_assets.storage.warehouse import Warehouse

T0 = dt.datetime(2024, 3, 8, 15, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=3)
T2 = T0 + dt.timedelta(minutes=9)


@pytest.fixture
def webhook(monkeypatch):
    """A local HTTP server taking POSTs: yields the list of (path, JSON body) received."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hook/t0ken")
    yield received
    server.shutdown()
    server.server_close()


def rows(warehouse: Warehouse) -> list[dict]:
    found = warehouse.catalog.read("SELECT * FROM alerts ORDER BY kind, subject")
    return [
        {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
        for row in found.to_dict(orient="records")
    ]


def test_fire_records_one_row_and_a_repeat_updates_it_without_a_second_notice(
    tmp_path, webhook, catalog_backend
):
    warehouse = Warehouse(tmp_path)
    assert alerts.fire(warehouse, "stall", "live_bars_sensor", "no progress", now=T0, lag=6)
    assert not alerts.fire(warehouse, "stall", "live_bars_sensor", "no progress", now=T1, lag=6)
    assert not alerts.fire(warehouse, "stall", "live_bars_sensor", "still none", now=T1, lag=9)
    assert rows(warehouse) == [{
        "kind": "stall", "subject": "live_bars_sensor", "status": "firing",
        "message": "still none", "details": '{"lag": 9}', "fired_at": pd.Timestamp(T0),
        "cleared_at": None, "updated_at": pd.Timestamp(T1), "sent": True,
    }]  # fmt: skip
    assert webhook == [("/hook/t0ken", {
        "kind": "stall", "subject": "live_bars_sensor", "status": "firing",
        "message": "no progress", "fired_at": "2024-03-08T15:00:00+00:00", "cleared_at": None,
        "details": {"lag": 6},
    })]  # fmt: skip
    assert alerts.active(warehouse)["subject"].tolist() == ["live_bars_sensor"]


def test_clear_resolves_a_firing_alert_once_and_a_new_fire_starts_again(
    tmp_path, webhook, catalog_backend
):
    warehouse = Warehouse(tmp_path)
    assert not alerts.clear(warehouse, "stall", "live_bars_sensor", now=T0)  # nothing firing
    assert rows(warehouse) == []
    alerts.fire(warehouse, "stall", "live_bars_sensor", "no progress", now=T0)
    assert alerts.clear(warehouse, "stall", "live_bars_sensor", "moving again", now=T1)
    assert not alerts.clear(warehouse, "stall", "live_bars_sensor", now=T2)
    (row,) = rows(warehouse)
    assert (row["status"], row["message"], row["fired_at"], row["cleared_at"]) == (
        "cleared",
        "moving again",
        pd.Timestamp(T0),
        pd.Timestamp(T1),
    )
    assert alerts.active(warehouse).empty
    assert [body["status"] for _, body in webhook] == ["firing", "resolved"]
    assert webhook[1][1] == {
        "kind": "stall", "subject": "live_bars_sensor", "status": "resolved",
        "message": "moving again", "fired_at": "2024-03-08T15:00:00+00:00",
        "cleared_at": "2024-03-08T15:03:00+00:00", "details": {},
    }  # fmt: skip

    assert alerts.fire(warehouse, "stall", "live_bars_sensor", "stuck again", now=T2)
    (row,) = rows(warehouse)
    assert (row["status"], row["fired_at"], row["cleared_at"]) == ("firing", pd.Timestamp(T2), None)
    assert len(webhook) == 3


def test_a_secret_is_redacted_from_the_payload_the_row_and_the_log(
    tmp_path, webhook, monkeypatch, json_logs
):
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", "sekrit-value-123")
    warehouse = Warehouse(tmp_path)
    alerts.fire(warehouse, "run_failure", "r1", "HTTP 403 for key sekrit-value-123", now=T0)
    assert webhook[0][1]["message"] == "HTTP 403 for key ***"
    assert rows(warehouse)[0]["message"] == "HTTP 403 for key ***"
    (line,) = [json.loads(x) for x in json_logs.getvalue().splitlines()]
    assert (line["level"], line["stage"], line["message"], line["subject"]) == (
        "WARNING",
        "alert",
        "HTTP 403 for key ***",
        "r1",
    )
    assert "t0ken" not in json_logs.getvalue()


def test_a_dead_webhook_is_logged_by_host_and_never_raises(tmp_path, monkeypatch, json_logs):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(alerts.WEBHOOK_ENV, f"http://127.0.0.1:{port}/hook/t0ken")
    warehouse = Warehouse(tmp_path)
    assert alerts.fire(warehouse, "run_failure", "r1", "job failed", now=T0)
    assert rows(warehouse)[0]["sent"] is False
    failed = [json.loads(x) for x in json_logs.getvalue().splitlines()][-1]
    assert (failed["message"], failed["webhook"]) == ("alert webhook failed", "http://127.0.0.1")
    assert "t0ken" not in json_logs.getvalue()


def test_without_a_webhook_nothing_is_sent_and_sent_is_null(tmp_path, monkeypatch, catalog_backend):
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    warehouse = Warehouse(tmp_path)
    assert alerts.fire(warehouse, "run_failure", "r1", "job failed", now=T0)
    assert rows(warehouse)[0]["sent"] is None


def test_the_stall_alert_fires_when_progress_stops_and_clears_when_it_resumes(
    tmp_path, webhook, catalog_backend
):
    warehouse = Warehouse(tmp_path)
    last = T0
    assert not alerts.check_stall(warehouse, "live_bars_sensor", last, T0 + dt.timedelta(minutes=5),
                                  threshold_minutes=5)  # fmt: skip
    assert rows(warehouse) == []  # exactly the threshold is not a stall yet
    assert alerts.check_stall(warehouse, "live_bars_sensor", last, T0 + dt.timedelta(minutes=6),
                              threshold_minutes=5)  # fmt: skip
    assert alerts.active(warehouse)["message"].tolist() == [
        "live_bars_sensor has not advanced for 6 minutes (threshold 5)"
    ]
    resumed = T0 + dt.timedelta(minutes=7)
    assert not alerts.check_stall(warehouse, "live_bars_sensor", resumed, resumed,
                                  threshold_minutes=5)  # fmt: skip
    assert alerts.active(warehouse).empty
    assert [body["status"] for _, body in webhook] == ["firing", "resolved"]


def test_outside_a_session_no_stall_fires(tmp_path):
    warehouse = Warehouse(tmp_path)
    late = T0 + dt.timedelta(hours=3)
    assert not alerts.check_stall(warehouse, "live_bars_sensor", T0, late, session_open=False,
                                  threshold_minutes=5)  # fmt: skip
    assert rows(warehouse) == []


def test_the_stall_threshold_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(alerts.STALL_MINUTES_ENV, raising=False)
    assert alerts.stall_minutes() == 5
    monkeypatch.setenv(alerts.STALL_MINUTES_ENV, "12")
    assert alerts.stall_minutes() == 12
    monkeypatch.setenv(alerts.STALL_MINUTES_ENV, "0")
    with pytest.raises(ValueError, match="STOCK_ASSETS_STALL_MINUTES='0'"):
        alerts.stall_minutes()
    assert alerts.stalled(T0, T0 + dt.timedelta(minutes=5, seconds=1), 5)
    assert not alerts.stalled(T0, T0 + dt.timedelta(minutes=5), 5)
