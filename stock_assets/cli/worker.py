"""`stock-assets worker`: a Celery worker that executes the steps of runs on Dagster's
Celery executor (STOCK_ASSETS_EXECUTOR=celery), with the executor's own broker, result
backend, queue and delivery settings (stock_assets/jobs/executors.py).

It runs the Celery worker in this process instead of `dagster-celery worker start`, which
writes the broker URL, password included, into a config file under DAGSTER_HOME. Celery
prints URLs with the password masked (`amqp://guest:**@host//`), and nothing else here
prints one.
"""

from __future__ import annotations

import argparse
import os

from stock_assets.cli.common import EXIT_OK

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def cmd_worker(args: argparse.Namespace) -> int:
    """Consume the queue until stopped (SIGTERM or Ctrl-C: the running steps finish first)."""
    from stock_assets.jobs import executors

    # Each step's job is rebuilt here from the definitions: as the run's, with the Celery
    # executor and so with its retry policy (whether a failed step is retried is decided here).
    os.environ[executors.EXECUTOR_ENV] = "celery"
    if args.queue:
        os.environ[executors.QUEUE_ENV] = args.queue
    queue = executors.queue()
    argv = ["worker", f"--loglevel={args.loglevel}", f"--queues={queue}",
            f"--hostname={queue}-{os.getpid()}@%h",  # one node name per process
            "--without-mingle", "--without-gossip"]  # fmt: skip
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    # Imported before the pool forks, the definitions are loaded in every pool process from
    # its start, so no step waits for them (a pool process that died is forked again).
    import stock_assets.definitions  # noqa: F401

    executors.celery_worker_app().worker_main(argv)
    return EXIT_OK


def add_worker_parser(add) -> argparse.ArgumentParser:
    """The `worker` subcommand, for the CLI's `add(name, handler, text)`."""
    worker = add("worker", cmd_worker, "Run a Celery worker for the steps of runs on Dagster's "
                 "Celery executor (STOCK_ASSETS_EXECUTOR=celery).")  # fmt: skip
    worker.add_argument(
        "--concurrency", "-c", type=int, help="steps executed at once (default: one per CPU)"
    )
    worker.add_argument(
        "--queue", "-Q", help="the queue to consume (default: STOCK_ASSETS_CELERY_QUEUE, dagster)"
    )
    worker.add_argument("--loglevel", "-l", default="INFO", type=str.upper, choices=LOG_LEVELS)
    return worker
