from __future__ import annotations

import datetime as dt
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


@pytest.mark.parametrize(
    "symbol", ["../x", "SPY;DROP", "A B", "", "1ABC", "ABCDEFGHIJK", "spy$", "ſpy", "ß", "%2e%2e"]
)
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


def test_dev_serves_the_ui_with_healthy_daemons(home, dagster_dev):
    _, answer = dagster_dev
    assets = {node["assetKey"]["path"][0] for node in answer["assetNodes"]}
    assert {"bars_1m", "derived_bars", "market_regimes", "features", "simulations"} <= assets
    statuses = answer["instance"]["daemonHealth"]["allDaemonStatuses"]
    statuses = {s["daemonType"]: s["healthy"] for s in statuses}
    assert statuses["SENSOR"] and statuses["BACKFILL"] and statuses["QUEUED_RUN_COORDINATOR"]


def test_ingest_with_csv_submitted_to_a_running_dagster_stores_the_csv_bars(
    home, real_data, dagster_dev, monkeypatch, capsys
):
    """The run executes in the daemon's run worker (another process), so the csv path
    must travel in the run's config, not in this process's environment."""
    import pandas as pd

    from stock_assets.storage.warehouse import Warehouse

    csv = real_data / "SPY_1min_2024-02-20_2024-05-17.csv"
    monkeypatch.setenv("STOCK_ASSETS_DAGSTER_URL", f"http://127.0.0.1:{dagster_dev[0]}")
    code = main(["ingest", "SPY", "--start", "2024-03-04", "--end", "2024-03-05",
                 "--provider", "csv", "--csv", str(csv)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    stored = Warehouse(home).read_bars("SPY", [dt.date(2024, 3, 4), dt.date(2024, 3, 5)])
    assert set(stored["source"]) == {"csv"}
    source = pd.read_csv(csv)
    first = pd.Timestamp(source.loc[source["datetime"].str.startswith("2024-03-04 09:30"),
                                    "datetime"].iloc[0]).tz_convert("UTC")  # fmt: skip
    assert stored["ts"].iloc[0] == first
    import dagster as dg

    runs = dg.DagsterInstance.from_config(str(home / "dagster")).get_runs()
    runs = [run for run in runs if "dagster/sensor_name" not in run.tags]  # not follow-ups
    assert len(runs) == 1 and runs[0].job_name == "ingest_job"
    assert runs[0].run_config["ops"]["bars"]["config"]["csv_path"] == str(csv)


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


def test_symbols_list_flags_keys_added_elsewhere_and_remove_takes_them_as_typed(home, capsys):
    """The UI's "Add a partition" dialog accepts any key; the CLI shows and removes it."""
    from stock_assets.cli.common import dagster_instance

    dagster_instance().add_dynamic_partitions("symbols", ["msft", "../x", "SPY"])
    assert main(["symbols", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "../x  (invalid: partition key '../x' is not a symbol: symbols are 1-10 of A-Z 0-9 . - "
        "starting with a letter; stock-assets symbols remove '../x')",
        "SPY",
        "msft  (invalid: partition key 'msft' is not canonical: use 'MSFT'; "
        "stock-assets symbols remove 'msft')",
    ]
    assert main(["symbols", "remove", "msft", "../x"]) == 0
    assert "removed msft, ../x" in capsys.readouterr().out
    assert sorted(dagster_instance().get_dynamic_partitions("symbols")) == ["SPY"]


def test_a_run_of_a_non_canonical_partition_fails_naming_the_canonical_key(home):
    from stock_assets.cli.common import dagster_instance, launch
    from stock_assets.jobs import ingest_job
    from stock_assets.jobs.launcher import Launch

    dagster_instance().add_dynamic_partitions("symbols", ["msft"])
    outcome = launch(Launch(ingest_job, partition_key="2024-03-07|msft"))
    assert not outcome.success
    assert outcome.failure_reason() == "partition key 'msft' is not canonical: use 'MSFT'"
    assert not (home / "lake").exists() or not list((home / "lake").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["backfill", "SPY", "--max-iterations", "-1"],
            "--max-iterations -1: a whole number 1..1000",
        ),
        (
            ["simulate", "SPY", "--fill-delay", "1e9"],
            "fill_delays: 1000000000 is not a number of bars",
        ),
        (["features", "SPY", "--fold", '{"train_days": 1e400, "test_days": 5}'], "train_days=inf"),
        (["features", "SPY", "--fold", '{"train_days": 0, "test_days": 5}'], "1..10000"),
        (["leaderboard", "--by", "luck"], "'luck' is not a rankable metric"),
        (
            ["ingest", "SPY", "--start", "2024-03-04", "--csv", "x.csv", "--csv-tz", "Mars/Base"],
            "no such file",
        ),
    ],
)
def test_absurd_values_are_refused_before_any_work(home, capsys, args, fragment):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (home / "lake").exists()


def test_grid_config_with_an_unknown_rank_by_fails_before_work(home):
    from stock_assets.core.errors import UsageError
    from stock_assets.pipelines.specs import GridSpec

    with pytest.raises(UsageError, match="rank_by 'luck'"):
        GridSpec(rank_by="luck").build()
    with pytest.raises(UsageError, match="fill_delays: 5000"):
        GridSpec(fill_delays=[5000]).build()
