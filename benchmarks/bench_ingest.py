"""Ingest benchmark: 1 year x 10 symbols from the fake Alpaca server into the lake.

Run: ``uv run python benchmarks/bench_ingest.py`` (``--symbols N``, ``--year Y``,
``--instance sqlite|memory``, ``--instances sqlite,postgres``, ``--repeat N``,
``--backfill-only``). The fake server runs in its own process, preloaded before any timer
starts (on this 2-core machine it shares the cores with the client). Each phase runs in
its own process, so peak memory is its own. Prints ``name value unit (params)``.

- fetch / validate / persist: the real alpaca-py client (10,000-bar pages) with our
  parsing into frames; conform + validate; merge + atomic Parquet writes, one file per
  symbol-day (the storage layer alone); and the three together.
- pipeline: fetch + validate + persist + ingest_status, per symbol, without Dagster.
- dagster_job: `ingest_job` (bars_1m + derived_bars) as one run over the whole rectangle
  on a Dagster instance; `dagster_overhead` is what that adds over `pipeline`.
- bars_latest: `stock-assets bars SPY --limit 5` on that store, as a new process and
  as the in-process query alone.
- backfill_floor / backfill_ours / backfill_ratio, per instance (SQLite, PostgreSQL):
  Dagster's floor is a multi-asset of two assets with the same partitions definition,
  backfill policy and in-process executor as `ingest_job` whose body only yields its two
  materializations; ours is `ingest_job` (bars_1m + derived_bars, fetching from the fake
  server into an empty lake). Both run as ONE ranged run over the same symbol x day
  rectangle, each in a fresh process on a fresh instance (a new DAGSTER_HOME; on
  PostgreSQL a new database, created and dropped here), floor and ours taking turns, so
  the ratio (ours / floor) is measured under the same load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SYMBOLS = ["AAPL", "AMZN", "GOOGL", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA", "VIXY"]
KEY, SECRET = "bench-key-id", "bench-secret-key"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"  # the local server, trust auth
DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "dagster.postgres.yaml"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(symbols: list[str], year: int, ready: multiprocessing.Queue) -> None:
    """The fake Alpaca server in its own process (as the real one would be), preloaded."""
    from stock_assets.core import calendar
    from stock_assets.testing.fake_alpaca import FakeAlpacaServer

    days = calendar.sessions(dt.date(year, 1, 1), dt.date(year, 12, 31))
    with FakeAlpacaServer(api_key=KEY, secret_key=SECRET, empty_symbols=()) as server:
        server.preload(symbols, days[0], days[-1])
        ready.put(server.url)
        time.sleep(3600)


def phase(name: str, symbols: list[str], year: int, home: Path, instance: str, url: str) -> dict:
    """Run one phase in this process against the server at `url`; returns its figures."""
    from stock_assets.core import bars as core_bars
    from stock_assets.core import calendar

    os.environ.update(
        STOCK_ASSETS_HOME=str(home), ALPACA_API_KEY_ID=KEY, ALPACA_API_SECRET_KEY=SECRET,
        STOCK_ASSETS_PROVIDERS="alpaca", STOCK_ASSETS_LOG_LEVEL="WARNING", ALPACA_DATA_URL=url,
    )  # fmt: skip
    days = calendar.sessions(dt.date(year, 1, 1), dt.date(year, 12, 31))
    if name == "dagster_job":
        return run_dagster(symbols, days, home, instance)
    if name in ("backfill_floor", "backfill_ours"):
        return run_backfill(name, symbols, days, home, instance)
    from stock_assets.pipelines.ingest import ingest_symbol
    from stock_assets.resources.market_data import MarketDataResource
    from stock_assets.storage.warehouse import Warehouse

    providers, warehouse = MarketDataResource(providers="alpaca").chain(), Warehouse(home)
    if name == "pipeline":
        start, rows = time.perf_counter(), 0
        for symbol in symbols:
            results = ingest_symbol(symbol, days, providers, warehouse)
            rows += sum(stored.rows for _, stored in results.days if stored)
        return {"seconds": time.perf_counter() - start, "bars": rows}
    (provider,) = providers
    timings = {"fetch": 0.0, "validate": 0.0, "persist": 0.0}
    rows = 0
    for symbol in symbols:
        start = time.perf_counter()
        raw = provider.fetch(symbol, days[0], days[-1])
        timings["fetch"] += time.perf_counter() - start
        start = time.perf_counter()
        clean, _ = core_bars.validate_bars(core_bars.conform(raw, source="alpaca"))
        timings["validate"] += time.perf_counter() - start
        start = time.perf_counter()
        warehouse.store_bars(symbol, clean, days)
        timings["persist"] += time.perf_counter() - start
        rows += len(clean)
    return {**timings, "bars": rows}


def run_dagster(symbols: list[str], days: list[dt.date], home: Path, instance: str) -> dict:
    import dagster as dg

    from stock_assets import settings
    from stock_assets.definitions import defs
    from stock_assets.jobs.launcher import range_tags
    from stock_assets.storage.warehouse import Warehouse

    if instance == "memory":
        context = dg.DagsterInstance.ephemeral()
    else:
        settings.use_dagster_home()
        context = dg.DagsterInstance.get()
    with context as dagster_instance:
        dagster_instance.add_dynamic_partitions("symbols", symbols)
        tags = range_tags(f"{days[0]}|{min(symbols)}", f"{days[-1]}|{max(symbols)}")
        config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        start = time.perf_counter()
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            instance=dagster_instance, tags=tags, run_config=config
        )
        seconds = time.perf_counter() - start
        assert result.success
    status = Warehouse(home).catalog.ingest_status()
    return {"seconds": seconds, "bars": int(status["rows"].sum()), "partitions": len(status)}


def floor_job():
    """Dagster's floor: ingest_job's shape (two assets of one multi-asset, the same
    partitions, single-run backfill policy, in-process executor) with a body that only
    yields its materializations."""
    import dagster as dg

    from stock_assets.assets.partitions import bars_partitions

    @dg.multi_asset(
        name="floor",
        specs=[dg.AssetSpec("floor_1m"), dg.AssetSpec("floor_derived", deps=["floor_1m"])],
        partitions_def=bars_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=False,
    )
    def floor():
        yield dg.MaterializeResult(asset_key="floor_1m")
        yield dg.MaterializeResult(asset_key="floor_derived")

    job = dg.define_asset_job(  # partitions inferred from the asset (bars_partitions)
        "floor_job", selection=["floor_1m", "floor_derived"], executor_def=dg.in_process_executor
    )
    return dg.Definitions(assets=[floor], jobs=[job]).resolve_job_def("floor_job")


def run_backfill(
    name: str, symbols: list[str], days: list[dt.date], home: Path, instance: str
) -> dict:
    """One ranged run over symbols x days on a fresh instance under `home` (SQLite, or
    PostgreSQL at DAGSTER_PG_URL); the floor's job or ingest_job."""
    import dagster as dg

    from stock_assets import settings
    from stock_assets.jobs.launcher import range_tags

    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    if instance == "postgres":
        (dagster_home / "dagster.yaml").write_text(DEPLOY_CONFIG.read_text())
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    settings.use_dagster_home()  # as the CLI runs: DAGSTER_EVENT_BATCH_SIZE=200
    if name == "backfill_floor":
        job = floor_job()
    else:
        from stock_assets.definitions import defs

        job = defs.resolve_job_def("ingest_job")
    with dg.DagsterInstance.get() as dagster_instance:
        dagster_instance.add_dynamic_partitions("symbols", symbols)
        tags = range_tags(f"{days[0]}|{min(symbols)}", f"{days[-1]}|{max(symbols)}")
        config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        start = time.perf_counter()
        result = job.execute_in_process(instance=dagster_instance, tags=tags, run_config=config)
        seconds = time.perf_counter() - start
        assert result.success
        key = "floor_1m" if name == "backfill_floor" else "bars_1m"
        materialized = len(dagster_instance.get_materialized_partitions(dg.AssetKey(key)))
    return {"seconds": seconds, "partitions": materialized}


def spawn(
    name: str, args: argparse.Namespace, home: Path, url: str, env: dict | None = None,
    instance: str | None = None,
) -> dict:  # fmt: skip
    command = [sys.executable, __file__, "--phase", name, "--home", str(home),
               "--symbols", str(args.symbols), "--year", str(args.year),
               "--instance", instance or args.instance, "--url", url]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode:
        raise RuntimeError(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class PostgresDatabase:
    """A new database on the local PostgreSQL server, dropped on exit."""

    def __enter__(self) -> str:
        import psycopg2

        self.admin = psycopg2.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5)
        self.admin.autocommit = True
        self.name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
        with self.admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.name}")
        return f"{POSTGRES_SERVER}/{self.name}"

    def __exit__(self, *exc) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self.admin.close()


def measure_backfill(
    args: argparse.Namespace, name: str, instance: str, url: str, root: Path
) -> dict:
    """One measurement in its own process, on a fresh home and a fresh instance."""
    home = root / f"{name}-{instance}-{uuid.uuid4().hex[:6]}"
    if instance != "postgres":
        return spawn(name, args, home, url, instance=instance)
    with PostgresDatabase() as pg_url:
        return spawn(name, args, home, url, env={"DAGSTER_PG_URL": pg_url}, instance=instance)


def report_backfill(args: argparse.Namespace, symbols: list[str], url: str, root: Path):
    """Floor and ours, taking turns (floor first, then ours first, ...) per instance.

    The processes import from a bytecode cache warmed beforehand, as a deployed run worker
    does: ours imports its pipelines inside the run, the floor imports nothing there, so
    compiling them anew in every process (PYTHONDONTWRITEBYTECODE) would be charged to
    ours alone."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    warm = "import dagster_postgres, stock_assets.definitions, stock_assets.pipelines.ingest"
    subprocess.run([sys.executable, "-c", warm], check=True)
    for instance in args.instances.split(","):
        seconds: dict[str, list[float]] = {"backfill_floor": [], "backfill_ours": []}
        partitions = 0
        for turn in range(args.repeat):
            order = ["backfill_floor", "backfill_ours"]
            for name in order if turn % 2 == 0 else order[::-1]:
                figures = measure_backfill(args, name, instance, url, root)
                seconds[name].append(figures["seconds"])
                partitions = figures["partitions"]
        floor = statistics.median(seconds["backfill_floor"])
        ours = statistics.median(seconds["backfill_ours"])
        pairs = zip(seconds["backfill_floor"], seconds["backfill_ours"], strict=True)
        ratios = [o / f for f, o in pairs]
        days = partitions // len(symbols)
        params = (f"{len(symbols)} symbols x {days} days = {partitions} partitions x 2 assets, "
                  f"{instance}, one ranged run, median of {args.repeat}")  # fmt: skip
        print(f"backfill_floor_{instance} {floor:.1f} s (multi-asset of 2 empty assets, "
              f"{params})", flush=True)  # fmt: skip
        print(f"backfill_ours_{instance} {ours:.1f} s (ingest_job: bars_1m + derived_bars, "
              f"{params})", flush=True)  # fmt: skip
        turns = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"backfill_ratio_{instance} {ours / floor:.2f} x (ours / floor, {params}; "
              f"per turn: {turns})", flush=True)  # fmt: skip


def bars_latency(home: Path, symbol: str) -> tuple[float, float]:
    env = {**os.environ, "STOCK_ASSETS_HOME": str(home)}
    command = [str(Path(sys.executable).parent / "stock-assets"), "bars", symbol, "--limit", "5"]
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    from stock_assets.storage.warehouse import Warehouse

    warehouse = Warehouse(home)
    warehouse.latest_bars(symbol, "1m", 5)
    start = time.perf_counter()
    for _ in range(20):
        warehouse.latest_bars(symbol, "1m", 5)
    return min(walls), (time.perf_counter() - start) / 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--instance", choices=["sqlite", "memory", "postgres"], default="sqlite")
    parser.add_argument(
        "--instances",
        default="sqlite,postgres",
        help="instances of the floor-vs-ours backfill (sqlite, postgres)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="floor/ours measurements per instance, taking turns"
    )
    parser.add_argument(
        "--backfill-only", action="store_true", help="only the floor-vs-ours backfill figures"
    )
    parser.add_argument("--phase")
    parser.add_argument("--home")
    parser.add_argument("--url")
    args = parser.parse_args()
    symbols = SYMBOLS[: args.symbols]
    if args.phase:
        figures = phase(args.phase, symbols, args.year, Path(args.home), args.instance, args.url)
        print(json.dumps({**figures, "peak_mb": peak_mb()}))
        return
    params = f"{len(symbols)} symbols x {args.year}"
    ready: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(symbols, args.year, ready), daemon=True)
    server.start()
    try:
        url = ready.get(timeout=600)
        with tempfile.TemporaryDirectory() as root:
            if not args.backfill_only:
                report(args, symbols, params, url, Path(root))
            report_backfill(args, symbols, url, Path(root))
    finally:
        server.terminate()


def report(args: argparse.Namespace, symbols: list[str], params: str, url: str, root: Path):
    split = spawn("split", args, root / "split", url)
    bars = split["bars"]
    for stage, what in [
        ("fetch", "HTTP + JSON parse into frames, alpaca-py client"),
        ("validate", "conform + validate"),
        ("persist", "merge + atomic Parquet writes, one file per symbol-day"),
    ]:
        print(f"{stage}_bars_per_s {bars / split[stage]:,.0f} bars/s ({what}, {params})")
    total = split["fetch"] + split["validate"] + split["persist"]
    print(f"parse_validate_persist_bars_per_s {bars / total:,.0f} bars/s "
          f"({params}, {bars:,} bars)")  # fmt: skip
    pipeline = spawn("pipeline", args, root / "pipeline", url)
    print(f"pipeline_bars_per_s {pipeline['bars'] / pipeline['seconds']:,.0f} bars/s "
          f"(ingest_symbol with ingest_status, no Dagster, {params})")  # fmt: skip
    print(f"pipeline_seconds {pipeline['seconds']:.1f} s ({params})")
    print(f"pipeline_peak_memory {pipeline['peak_mb']:.0f} MB ({params})")
    job = spawn("dagster_job", args, root / "dagster", url)
    print(f"dagster_job_seconds {job['seconds']:.1f} s (ingest_job, one run, "
          f"{job['partitions']} partitions x 2 assets, {args.instance} instance)")  # fmt: skip
    print(f"dagster_job_bars_per_s {job['bars'] / job['seconds']:,.0f} bars/s ({params})")
    print(f"dagster_overhead_seconds {job['seconds'] - pipeline['seconds']:.1f} s "
          f"(job minus pipeline: Dagster bookkeeping + derived bars)")  # fmt: skip
    print(f"dagster_job_peak_memory {job['peak_mb']:.0f} MB ({params})")
    probe = "SPY" if "SPY" in symbols else symbols[-1]
    cold, warm = bars_latency(root / "dagster", probe)
    print(f"bars_latest_cli_seconds {cold:.2f} s (stock-assets bars {probe} --limit 5, "
          "new process)")  # fmt: skip
    print(f"bars_latest_query_seconds {warm * 1000:.1f} ms (Warehouse.latest_bars in-process)")


if __name__ == "__main__":
    main()
