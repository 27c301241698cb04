from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stock_assets.cli import main


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console script, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "stock_assets.cli", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("symbol", ["../x", "SPY;DROP", "A B", "", "1ABC", "ABCDEFGHIJK", "spy$"])
def test_bad_symbols_exit_2_with_one_clear_line(home, symbol):
    done = cli("ingest", symbol, "--start", "2024-03-04", "--end", "2024-03-05")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "symbols are 1-10 of A-Z 0-9 . - starting with a letter" in lines[0]
    assert not (home / "lake").exists()


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("2024-02-30", "2024-03-05", "dates are YYYY-MM-DD"),
        ("2024-03-05", "2024-03-01", "is after end"),
        ("2024-03-09", "2024-03-10", "no XNYS session"),
        ("2024-03-04", "2099-01-01", "dates must lie between"),
        ("2010-01-04", "2010-01-05", "before the first partition day"),
    ],
)
def test_bad_date_ranges_exit_2(home, capsys, start, end, fragment):
    assert main(["ingest", "SPY", "--start", start, "--end", end]) == 2
    assert fragment in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_exits_0(home):
    assert cli("ingest").returncode == 2
    assert cli("bars", "SPY", "--interval", "7m").returncode == 2
    helped = cli("--help")
    assert helped.returncode == 0
    for command in ("symbols", "ingest", "bars", "gaps", "backfill", "demo", "dev"):
        assert command in helped.stdout


def test_ingest_bars_gaps_backfill_round_trip(home, capsys):
    assert main(["ingest", "spy", "aapl", "--start", "2024-03-07", "--end", "2024-03-11"]) == 0
    summary = capsys.readouterr().out
    assert "SPY" in summary and "AAPL" in summary

    assert main(["bars", "SPY", "--limit", "5", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    assert rows[-1]["ts"].startswith("2024-03-11T19:59")  # 15:59 EDT, the last bar-open
    assert set(rows[0]) == {"symbol", "ts", "open", "high", "low", "close", "volume", "vwap",
                            "trade_count", "source", "is_filled"}  # fmt: skip

    assert main(["bars", "SPY", "--interval", "1d", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 3

    assert main(["gaps", "SPY", "--format", "json"]) == 0
    out = capsys.readouterr().out
    missing_before = int(out.rsplit("sessions, ", 1)[1].split(" missing")[0])
    assert main(["backfill", "SPY"]) == 0
    capsys.readouterr()
    assert main(["gaps", "SPY"]) == 0
    after = capsys.readouterr().out
    assert "0 missing minutes" in after
    assert f"{missing_before} filled minutes" in after

    assert main(["symbols", "list"]) == 0
    assert capsys.readouterr().out.split() == ["AAPL", "SPY"]


def test_symbol_with_no_data_exits_1(home, tmp_path, capsys):
    folder = tmp_path / "csvs"
    folder.mkdir()
    (folder / "SPY.csv").write_text(
        "datetime,open,high,low,close,volume\n2024-03-04 09:30:00,1,1,1,1,10\n"
    )
    code = main(["ingest", "VIX", "--start", "2024-03-04", "--end", "2024-03-04",
                 "--provider", "csv", "--csv", str(folder)])  # fmt: skip
    assert code == 1
    assert "VIX failed: no provider has data for VIX" in capsys.readouterr().out


def test_bars_of_an_unknown_symbol_exit_1(home):
    done = cli("bars", "NOPE")
    assert done.returncode == 1
    assert "no 1m bars stored for NOPE" in done.stderr


def test_dagster_definitions_validate_passes_in_a_fresh_checkout(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, timeout=300, env=env, cwd=repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_json_logs_carry_context_for_fetch_and_persist(home):
    done = cli("-v", "ingest", "SPY", "--start", "2024-03-07", "--end", "2024-03-08")
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    fetch = [e for e in events if e.get("stage") == "fetch" and e.get("provider") == "synthetic"]
    persist = [e for e in events if e.get("stage") == "persist" and e.get("dataset") == "bars_1m"]
    assert fetch and persist
    for event in fetch + persist:
        assert {"timestamp", "level", "message", "symbol", "run_id", "asset"} <= set(event)
        assert event["symbol"] == "SPY" and event["asset"] == "bars_1m"
    assert persist[0]["days"] == 2 and persist[0]["rows"] > 700


def test_dev_serves_the_ui_with_healthy_daemons(home):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "dev", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    query = b'{"query": "{ assetNodes { assetKey { path } } instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"}'  # noqa: E501
    try:
        deadline, answer = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", data=query,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                answer = json.loads(urllib.request.urlopen(request, timeout=5).read())["data"]
                statuses = answer["instance"]["daemonHealth"]["allDaemonStatuses"]
                if all(s["healthy"] for s in statuses):
                    break
            except OSError:
                pass
            time.sleep(2)
        assert answer is not None, "the Dagster UI did not answer"
        assets = {node["assetKey"]["path"][0] for node in answer["assetNodes"]}
        assert {"bars_1m", "derived_bars", "market_regimes", "features", "simulations"} <= assets
        statuses = {s["daemonType"]: s["healthy"] for s in statuses}
        assert statuses["SENSOR"] and statuses["BACKFILL"] and statuses["QUEUED_RUN_COORDINATOR"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_provider_problems_are_reported_not_raised(home, capsys):
    args = ["ingest", "SPY", "--start", "2024-03-04", "--end", "2024-03-05"]
    assert main([*args, "--provider", "iexcloud"]) == 2
    assert "provider order 'iexcloud'" in capsys.readouterr().err
    assert main([*args, "--provider", "csv", "--csv", "/no/such/file.csv"]) == 2
    assert main([*args, "--provider", "alpaca"]) == 1  # the home fixture removed every key
    assert "SPY failed: no Alpaca keys in the environment" in capsys.readouterr().out


def test_symbols_add_list_remove(home, capsys):
    assert main(["symbols", "add", "spy", "brk.b", "SPY"]) == 0
    assert "added SPY, BRK.B" in capsys.readouterr().out
    assert main(["symbols", "add", "SPY"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert main(["symbols", "list"]) == 0
    assert capsys.readouterr().out.split() == ["BRK.B", "SPY"]
    assert main(["symbols", "remove", "BRK.B"]) == 0
    capsys.readouterr()
    assert main(["symbols", "list"]) == 0
    assert capsys.readouterr().out.split() == ["SPY"]
    assert main(["symbols", "add", "../etc"]) == 2
    assert main(["symbols", "add"]) == 2
