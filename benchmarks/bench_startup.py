"""What a user waits for before work starts: loading the code location, and a one-symbol
backfill launched through the daemon as the UI does.

Run: ``uv run python benchmarks/bench_startup.py`` (``--runs N``, ``--days D``). Prints
``name value unit (params)``.

- import: ``python -c "import dagster"`` and ``python -c "import stock_assets.definitions"``
  as new processes, interleaved, the median of N each after one warm-up of both (the
  holiday cache under STOCK_ASSETS_HOME is built by the warm-up); every run and step
  process pays this.
- backfill: ``stock-assets dev`` on a fresh home, then a partition backfill of bars_1m
  (with derived_bars, which the UI adds: one step makes both) for one symbol over D
  sessions, submitted over GraphQL as the UI's "Materialize" dialog does, timed until the
  backfill completes; with the number of runs it took and the derived partitions made.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id)
  { ... on PartitionBackfill { status numPartitions } } }"""
MATERIALIZED = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key)
  { ... on AssetNode { partitionStats { numMaterialized } } } }"""
RUNS = "{ runsOrError { ... on Runs { count } } }"


def median_import_seconds(module: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    return time.perf_counter() - start


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"GraphQL {error.code}: {error.read()[:2000]!r}") from None
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def start_dev(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "dev", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            health = graphql(
                port, "{ instance { daemonHealth { allDaemonStatuses { healthy } } } }"
            )
            if all(s["healthy"] for s in health["instance"]["daemonHealth"]["allDaemonStatuses"]):
                return server, port
        except (OSError, RuntimeError):
            pass
        time.sleep(1)
    raise RuntimeError("stock-assets dev did not become healthy")


def backfill(env: dict[str, str], days: int) -> None:
    from stock_assets.core import calendar

    sessions = calendar.sessions(
        calendar.parse_date("2024-03-01"), calendar.parse_date("2024-06-28")
    )
    keys = [f"{day.isoformat()}|SPY" for day in sessions[:days]]
    subprocess.run([sys.executable, "-m", "stock_assets.cli", "symbols", "add", "SPY"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    server, port = start_dev(env)
    try:
        # the UI adds derived_bars to a selection of bars_1m (one step makes both); a
        # backfill of bars_1m alone is refused as a partial non-subsettable multi-asset
        assets = [{"path": ["bars_1m"]}, {"path": ["derived_bars"]}]
        params = {"assetSelection": assets, "partitionNames": keys}
        start = time.perf_counter()
        launched = graphql(port, LAUNCH, {"params": params})["launchPartitionBackfill"]
        backfill_id = launched["backfillId"]
        while True:
            status = graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            if status["status"] not in ("REQUESTED", "CANCELING"):
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - start
        runs = graphql(port, RUNS)["runsOrError"]["count"]
        derived = graphql(port, MATERIALIZED, {"key": {"path": ["derived_bars"]}})
        followed = derived["assetNodeOrError"]["partitionStats"]["numMaterialized"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    params_text = f"SPY x {days} sessions, synthetic provider, SQLite instance"
    print(f"backfill_through_daemon_seconds {seconds:.1f} s ({params_text}, "
          f"status {status['status']}, {runs} run(s))")  # fmt: skip
    print(f"backfill_derived_bars_followed {followed} partitions (of {days} for bars_1m)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--days", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        home = Path(root)
        env = {**os.environ, "STOCK_ASSETS_HOME": str(home),
               "DAGSTER_HOME": str(home / "dagster"), "STOCK_ASSETS_PROVIDERS": "synthetic",
               "STOCK_ASSETS_LOG_LEVEL": "WARNING"}  # fmt: skip
        modules = ["dagster", "stock_assets.definitions"]
        for module in modules:  # warm-up: file caches, the holiday cache
            median_import_seconds(module, env)
        times: dict[str, list[float]] = {module: [] for module in modules}
        for _ in range(args.runs):
            for module in modules:
                times[module].append(median_import_seconds(module, env))
        dagster_s = statistics.median(times["dagster"])
        ours_s = statistics.median(times["stock_assets.definitions"])
        print(f"import_dagster_seconds {dagster_s:.2f} s (median of {args.runs}, new process)")
        print(f"import_definitions_seconds {ours_s:.2f} s (median of {args.runs}, new process)")
        print(f"import_definitions_over_dagster {ours_s / dagster_s:.2f} x (goal <= 1.5)")
        backfill(env, args.days)


if __name__ == "__main__":
    main()
