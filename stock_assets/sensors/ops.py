"""Operations: an alert for every failed run (catalog row, WARNING log line, webhook).

RUNNING by default: an alert that has to be switched on first is missing exactly when it
is needed, and each evaluation only reads the run-failure events after its cursor. Like
every sensor it needs the daemon (`stock-assets dev`).
"""

import dagster as dg

from stock_assets.resources.warehouse import WarehouseResource

RUN_FAILURE = "run_failure"


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    """Record a `run_failure` alert (subject: the run id) with the job and the reason."""
    from stock_assets.pipelines import alerts

    run = context.dagster_run
    reason = context.failure_event.message or "failed"
    steps = [event.step_key for event in context.get_step_failure_events() if event.step_key]
    alerts.fire(
        warehouse.open(), RUN_FAILURE, run.run_id, f"{run.job_name} failed: {reason}",
        job=run.job_name, steps=steps, partition=run.tags.get("dagster/partition"),
    )  # fmt: skip
