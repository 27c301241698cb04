"""Where the steps of the jobs that scale out (grid search, evolution, features) run,
chosen by STOCK_ASSETS_EXECUTOR when the definitions load:

- unset or `default`: each job's own executor on this machine (in process, or Dagster's
  multiprocess executor for the grid search);
- `celery`: Dagster's Celery executor. The run process only orchestrates; each step is a
  Celery task on the queue STOCK_ASSETS_CELERY_QUEUE (default `dagster`), executed by a
  `stock-assets worker` process on any machine that shares the Dagster instance, the
  lake and the catalog.

The broker (STOCK_ASSETS_CELERY_BROKER) and the result backend
(STOCK_ASSETS_CELERY_BACKEND) reach the executor as `{"env": ...}` config, read where
the run starts, so a URL with a password never enters a run's config, its job snapshot or
the Dagster UI. The default backend, `rpc://`, needs nothing but the broker: each result
comes back as a message to the run process that waits for it, which is all the executor
asks of a backend (it stores nothing; the steps' events go to the Dagster instance).

A worker killed mid-step loses nothing: a task is acknowledged only when it ends
(`task_acks_late`), so the broker gives the message of a worker that died (its connection
closed) to another worker, and a worker whose pool process died rejects the message back
to the queue (`task_reject_on_worker_lost`) instead of reporting a failure, which would fail
the run. Each process reserves one task at a time (`worker_prefetch_multiplier`), so
no step waits behind a busy one while another worker idles. Steps that raise are retried by
Dagster (WORKER_RETRY), possibly on another worker. Re-running a step is safe: every write
is idempotent (partition files replaced, sim_runs replaced per grid id, upserts by key).
The broker must let a worker hold a message as long as the longest step runs (RabbitMQ's
`consumer_timeout`, 30 minutes by default), or it takes the message back and hands it out
again.
"""

from __future__ import annotations

import os

import dagster as dg

from stock_assets.core.errors import UsageError

EXECUTOR_ENV = "STOCK_ASSETS_EXECUTOR"
BROKER_ENV = "STOCK_ASSETS_CELERY_BROKER"
BACKEND_ENV = "STOCK_ASSETS_CELERY_BACKEND"
QUEUE_ENV = "STOCK_ASSETS_CELERY_QUEUE"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"
EXECUTORS = ("default", "celery")
WORKER_RETRY = dg.RetryPolicy(max_retries=2, delay=5)
RELIABLE_DELIVERY = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    # a worker that lost the broker stops its tasks: the broker hands them out again anyway
    "worker_cancel_long_running_tasks_on_connection_loss": True,
}


class InvalidExecutor(UsageError):
    """STOCK_ASSETS_EXECUTOR names no executor."""


def executor_name() -> str:
    """STOCK_ASSETS_EXECUTOR, checked: `default` (also when unset) or `celery`."""
    raw = os.environ.get(EXECUTOR_ENV, "")
    name = raw.strip().lower() or "default"
    if name not in EXECUTORS:
        raise InvalidExecutor(
            f"{EXECUTOR_ENV}={raw!r}: use one of {', '.join(EXECUTORS)} (unset: default)"
        )
    return name


def scale_out(default: dg.ExecutorDefinition | None) -> dict:
    """A scale-out job's `executor_def` (and `op_retry_policy`): `default`, the job's own
    executor (None: the Definitions' default), unless STOCK_ASSETS_EXECUTOR=celery."""
    if executor_name() == "celery":
        return {"executor_def": celery_executor(), "op_retry_policy": WORKER_RETRY}
    return {"executor_def": default}


def queue() -> str:
    return os.environ.get(QUEUE_ENV, "").strip() or DEFAULT_QUEUE


def celery_settings() -> dict:
    """The Celery app settings both ends share (the run's executor, the worker)."""
    return {**RELIABLE_DELIVERY, "task_default_queue": queue()}


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor, configured from the environment (dagster_celery, and
    Celery with it, is imported only when it is used)."""
    from dagster_celery import celery_executor as executor

    def url(name: str, default: str) -> str | dict:
        return {"env": name} if os.environ.get(name) else default

    config = {"broker": url(BROKER_ENV, DEFAULT_BROKER),
              "backend": url(BACKEND_ENV, DEFAULT_BACKEND),
              "config_source": celery_settings()}  # fmt: skip
    return executor.configured(config, name="celery")


def celery_worker_app():
    """The Celery app of a `stock-assets worker`: the executor's app (same broker, backend
    and settings) with dagster-celery's step task registered."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    executor = CeleryExecutor.for_cli(
        broker=os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
        backend=os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND,
        config_source=celery_settings(),
    )
    app = make_app(executor.app_args())
    create_task(app)
    return app
