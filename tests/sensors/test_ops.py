"""The run-failure sensor: a failed run on a real instance becomes one alert row and one
webhook POST."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg

from stock_assets.pipelines import alerts
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.ops import run_failure_alert_sensor
from stock_assets.storage.warehouse import Warehouse


@dg.op
def boom():
    raise RuntimeError("provider answered 503")


@dg.job
def failing_job():
    boom()


def test_a_failed_run_fires_one_run_failure_alert_with_job_and_reason(tmp_path, monkeypatch):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/x")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            run = instance.get_run_by_id(result.run_id)
            (failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            context = dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert_sensor",
                dagster_event=failure.dagster_event,
                dagster_instance=instance,
                dagster_run=run,
                resources={"warehouse": WarehouseResource(home=str(tmp_path))},
            ).for_run_failure()
            run_failure_alert_sensor(context)
            run_failure_alert_sensor(context)  # evaluated twice: still one row, one POST
    finally:
        server.shutdown()
        server.server_close()

    message = (
        "failing_job failed: Execution of run for \"failing_job\" failed. Steps failed: ['boom']."
    )
    found = alerts.active(Warehouse(tmp_path))
    assert found[["kind", "subject", "status", "message", "sent"]].to_dict(orient="records") == [
        {"kind": "run_failure", "subject": result.run_id, "status": "firing",
         "message": message, "sent": True}
    ]  # fmt: skip
    assert json.loads(found["details"].iloc[0]) == {
        "job": "failing_job",
        "partition": None,
        "steps": ["boom"],
    }
    assert len(received) == 1
    assert {k: received[0][k] for k in ("kind", "subject", "status", "message")} == {
        "kind": "run_failure",
        "subject": result.run_id,
        "status": "firing",
        "message": message,
    }
    assert received[0]["details"] == {"job": "failing_job", "partition": None, "steps": ["boom"]}


def test_the_sensor_is_a_running_run_failure_sensor():
    assert run_failure_alert_sensor.name == "run_failure_alert_sensor"
    assert run_failure_alert_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert set(run_failure_alert_sensor.required_resource_keys) == {"warehouse"}
