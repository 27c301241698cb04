"""Scale-out benchmark: `grid_search_job` in process, over Dagster's multiprocess executor
and on Celery workers, and what a step costs each executor.

Run: ``uv run python benchmarks/bench_scaleout.py`` (``--symbols``, ``--sessions``,
``--workers``, ``--trivial-steps``, ``--executors``). Needs RabbitMQ on 127.0.0.1:5672
(guest/guest, or STOCK_ASSETS_CELERY_BROKER) for the Celery runs. Prints one line per
figure: ``name value unit (params)``.

Data: the synthetic provider's bars of ``--symbols`` symbols (QQQ and VIXY as context)
over ``--sessions`` sessions, ``compute_features`` with the market regimes, stored in a
fresh home's lake. The grid: GridSpec's default 96 combinations x the 2 baseline models
of each symbol, so 8 symbols make 16 grid steps (plus the plan and the store steps).

Each run is `dagster job execute` on a fresh SQLite instance (the local default), timed
from the run's RUN_START to its RUN_SUCCESS event (the launching process's start is not
counted); the Celery workers (``stock-assets worker --concurrency 1``, one per slot) are
started and warm before the first Celery run. Time inside steps is the sum of each step's
STEP_START..STEP_SUCCESS; the overhead is the wall time the steps do not explain when
packed on the executor's slots (wall - steps / slots). A job of ``--trivial-steps``
no-op steps measures what each step costs an executor apart from its body, in slot
seconds: (wall x slots - steps) / number of steps.
"""

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

from stock_assets.jobs.executors import scale_out

SYMBOLS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "SPY", "TSLA", "AMD", "NFLX"]
MODELS = ["baseline:momentum_5", "baseline:reversal_5"]
BIN = Path(sys.executable).parent


@dg.op(out=dg.DynamicOut(int), config_schema={"steps": int})
def fan_out(context: dg.OpExecutionContext):
    for number in range(context.op_config["steps"]):
        yield dg.DynamicOutput(number, mapping_key=f"s{number}")


@dg.op
def noop(number: int) -> int:
    return number


@dg.job(**scale_out(None))
def trivial_job():
    """No-op steps: what remains of a run is the executor's cost."""
    fan_out().map(noop)


def store_features(home: Path, symbols: list[str], sessions: int) -> int:
    """The symbols' features over the last `sessions` of 2024 in the home's lake; rows each."""
    from stock_assets.core import calendar, synthetic
    from stock_assets.core.features import compute_features
    from stock_assets.core.folds import label_folds
    from stock_assets.core.regimes import compute_regimes
    from stock_assets.storage.warehouse import Warehouse

    days = calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 12, 31))[-sessions:]
    bars = lambda s: synthetic.generate_range(s, days[0], days[-1], seed=0).assign(  # noqa: E731
        is_filled=False
    )
    qqq, vixy = bars("QQQ"), bars("VIXY")
    regimes = compute_regimes(qqq, vixy)
    for symbol in symbols:
        frame = compute_features(bars(symbol), qqq=qqq, vixy=vixy, regimes=regimes)
        frame["fold_30_5"] = label_folds(frame["ts"], 30, 5).to_numpy()
        Warehouse(home).store_features(symbol, frame, days)
    return len(frame)


def execute(target: list[str], config: str, env: dict, log: Path) -> str:
    """`dagster job execute` of a job with a YAML run config; the run's id."""
    path = log.with_suffix(".yaml")
    path.write_text(config)
    with log.open("wb") as output:
        command = [str(BIN / "dagster"), "job", "execute", *target, "-c", str(path)]
        done = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(target)} failed:\n{log.read_text()[-3000:]}")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    return instance.get_runs(limit=1)[0].run_id


def figures(instance: dg.DagsterInstance, run_id: str, slots: int) -> dict[str, float]:
    """wall, steps (summed), overhead (wall - steps / slots) and the number of steps."""
    stamps: dict[dg.DagsterEventType, float] = {}
    starts, busy, count = {}, 0.0, 0
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS,
                    dg.DagsterEventType.RUN_FAILURE):  # fmt: skip
            stamps[kind] = record.timestamp
        elif kind == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            busy += record.timestamp - starts[event.step_key]
            count += 1
    if dg.DagsterEventType.RUN_SUCCESS not in stamps:
        raise RuntimeError(f"run {run_id} did not succeed")
    wall = stamps[dg.DagsterEventType.RUN_SUCCESS] - stamps[dg.DagsterEventType.RUN_START]
    return {"wall": wall, "steps": busy, "overhead": wall - busy / slots, "count": count}


def start_workers(count: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    workers = []
    for number in range(count):
        with (logs / f"worker-{number}.log").open("wb") as output:
            workers.append(subprocess.Popen(
                [str(BIN / "stock-assets"), "worker", "--concurrency", "1"], env=env,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
    deadline = time.monotonic() + 180
    while not all(" ready." in (logs / f"worker-{n}.log").read_text() for n in range(count)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not start: see {logs}")
        time.sleep(0.5)
    return workers


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


def delete_queue(broker: str, queue: str) -> None:
    import kombu

    with kombu.Connection(broker) as connection:
        connection.default_channel.queue_delete(queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=8, help=f"at most {len(SYMBOLS)}")
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers = slots")
    parser.add_argument("--trivial-steps", type=int, default=16)
    parser.add_argument("--executors", default="in_process,multiprocess,celery")
    args = parser.parse_args()
    symbols, slots = SYMBOLS[: args.symbols], args.workers
    chosen = args.executors.split(",")
    broker = os.environ.get("STOCK_ASSETS_CELERY_BROKER") or "amqp://guest:guest@127.0.0.1:5672//"
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        logs.mkdir()
        env = {**os.environ, "STOCK_ASSETS_HOME": str(home), "STOCK_ASSETS_LOG_LEVEL": "WARNING",
               "DAGSTER_HOME": str(home / "dagster"), "STOCK_ASSETS_LOG_STORE": "0"}  # fmt: skip
        os.environ.update(env)
        from stock_assets import settings

        settings.dagster_home()  # the local instance's dagster.yaml (SQLite)
        started = time.perf_counter()
        rows = store_features(home, symbols, args.sessions)
        print(f"build_features {time.perf_counter() - started:.1f} s ({len(symbols)} symbols x "
              f"{args.sessions} sessions, {rows} rows each, {os.cpu_count()} cores)")  # fmt: skip
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        grid = (f"ops:\n  plan_grid_search:\n    config:\n      symbols: {symbols}\n"
                f"      models: {MODELS}\n")  # fmt: skip
        trivial = f"ops:\n  fan_out:\n    config:\n      steps: {args.trivial_steps}\n"
        celery_env = {**env, "STOCK_ASSETS_EXECUTOR": "celery", "STOCK_ASSETS_CELERY_QUEUE": queue,
                      "STOCK_ASSETS_CELERY_BROKER": broker}  # fmt: skip
        runs = {  # executor: (environment, run config's execution section, slots)
            "in_process": (env, "execution:\n  config:\n    in_process: {}\n", 1),
            "multiprocess": (env, "execution:\n  config:\n    multiprocess:\n"
                                  f"      max_concurrent: {slots}\n", slots),
            "celery": (celery_env, "", slots),
        }  # fmt: skip
        workers = start_workers(slots, celery_env, logs) if "celery" in chosen else []
        try:
            for name in chosen:
                run_env, execution, run_slots = runs[name]
                job = ["-m", "stock_assets.definitions", "-j", "grid_search_job"]
                run_id = execute(job, grid + execution, run_env, logs / f"grid-{name}.log")
                found = figures(instance, run_id, run_slots)
                steps = f"{found['count'] - 2} grid steps of 96 combinations + plan + store"
                print(f"grid_{name}_wall {found['wall']:.1f} s ({steps}, {run_slots} slot(s))")
                print(f"grid_{name}_steps {found['steps']:.1f} s (time inside steps, summed)")
                print(f"grid_{name}_overhead {found['overhead']:.1f} s (wall - steps / slots)")
                job = ["-f", __file__, "-a", "trivial_job"]
                run_id = execute(job, trivial + execution, run_env, logs / f"trivial-{name}.log")
                found = figures(instance, run_id, run_slots)
                per_step = (found["wall"] * run_slots - found["steps"]) / found["count"]
                print(f"trivial_{name}_wall {found['wall']:.1f} s (fan-out + "
                      f"{found['count'] - 1} no-op steps, {run_slots} slot(s))")  # fmt: skip
                print(f"trivial_{name}_cost_per_step {per_step:.2f} slot-s "
                      "((wall x slots - steps) / steps)")  # fmt: skip
        finally:
            stop(workers)
            if workers:
                delete_queue(broker, queue)


if __name__ == "__main__":
    main()
