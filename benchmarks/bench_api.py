"""API benchmark: read latency and throughput of `stock-assets api`, idle and while an
ingest writes.

Run: ``uv run python benchmarks/bench_api.py`` (``--seconds``, ``--clients``).
Prints one line per figure: ``name value unit (params)``.

Setup: a fresh home with SPY, QQQ, VIXY ingested from the synthetic provider for 20
sessions, SPY's features, and a simulated grid (so `sim_runs` has rows); the API served
by uvicorn in its own process (`stock-assets api`, one worker, as a user starts it). The
load generator: `--clients` threads, each with its own keep-alive HTTP connection, sending
`GET /bars/SPY?limit=5` or `GET /leaderboard?limit=20` back to back for `--seconds`. Each
endpoint is measured twice: idle, and while another process ingests (`stock-assets ingest
AAPL` over the 20 sessions, again and again with `--refetch`: lake and catalog writes).
Latency is per request as the client sees it (p50, p99); throughput is requests per
second over all clients. On this 2-core machine the client, the server and the writer
share the cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ENDPOINTS = {"bars": "/bars/SPY?limit=5", "leaderboard": "/leaderboard?limit=20"}
DAYS = ("2024-02-01", "2024-02-29")


def cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "stock_assets.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def prepare(env: dict) -> None:
    cli(env, "ingest", "SPY", "QQQ", "VIXY", "--start", DAYS[0], "--end", DAYS[1])
    cli(env, "features", "build", "SPY", "--start", DAYS[0], "--end", DAYS[1])
    cli(env, "simulate", "SPY", "--thresholds", "0,0.0005,0.001", "--fill-delay", "0,4")


def serve(env: dict) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "api", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server, port
        except httpx.TransportError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the API did not start")


def load(port: int, path: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """Latencies (s) of every request, and the count of non-200 answers."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine, bad = [], 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            http.get(path)  # warm the connection
            while time.monotonic() < stop:
                started = time.perf_counter()
                status = http.get(path).status_code
                mine.append(time.perf_counter() - started)
                bad += status != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def writer(env: dict, stop: threading.Event) -> None:
    """Ingest AAPL's sessions again and again until stopped."""
    while not stop.is_set():
        cli(env, "ingest", "AAPL", "--start", DAYS[0], "--end", DAYS[1], "--refetch")


def report(name: str, latencies: list[float], errors: int, seconds: float, params: str) -> None:
    import numpy as np

    ms = np.asarray(latencies) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    print(f"{name}_p50 {p50:.1f} ms ({params})")
    print(f"{name}_p99 {p99:.1f} ms ({params})")
    print(f"{name}_throughput {len(ms) / seconds:.0f} req/s ({params}, {errors} non-200)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {
            **os.environ, "STOCK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "STOCK_ASSETS_PROVIDERS": "synthetic", "STOCK_ASSETS_LOG_LEVEL": "WARNING",
        }  # fmt: skip
        env.pop("STOCK_ASSETS_API_TOKEN", None)
        started = time.perf_counter()
        prepare(env)
        print(f"prepare {time.perf_counter() - started:.1f} s (20 sessions, 3 symbols, a grid)")
        server, port = serve(env)
        try:
            for name, path in ENDPOINTS.items():
                params = f"GET {path}, {args.clients} clients, {args.seconds:.0f} s"
                report(f"{name}_idle", *load(port, path, args.clients, args.seconds),
                       args.seconds, params)  # fmt: skip
                stop = threading.Event()
                ingest = threading.Thread(target=writer, args=(env, stop))
                ingest.start()
                time.sleep(3)  # the writer's process is up and writing
                try:
                    latencies, errors = load(port, path, args.clients, args.seconds)
                finally:
                    stop.set()
                    ingest.join()
                report(f"{name}_writing", latencies, errors, args.seconds,
                       params + ", while an ingest writes")  # fmt: skip
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
