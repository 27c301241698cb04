"""Hostile conditions: writers killed mid-ingest, corrupt files, keys offered every way.
Each test compares against what an undisturbed run leaves."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from stock_assets.cli import main
from stock_assets.core import calendar
from stock_assets.pipelines.ingest import ingest_and_derive, ingest_symbol
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.storage.warehouse import Warehouse

DAYS = calendar.sessions(dt.date(2024, 3, 4), dt.date(2024, 3, 8))
REPO = Path(__file__).resolve().parents[2]


def lake_digest(home: Path, dataset: str = "") -> dict[str, str]:
    files = sorted((home / "lake" / dataset).rglob("*.parquet"))
    return {str(f.relative_to(home)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def status_of(home: Path) -> pd.DataFrame:
    return Warehouse(home).catalog.ingest_status().drop(columns="updated_at")


def undisturbed(tmp_path: Path) -> tuple[dict, pd.DataFrame]:
    home = tmp_path / "undisturbed"
    ingest_and_derive(Warehouse(home), [SyntheticProvider()], {"SPY": DAYS})
    return lake_digest(home), status_of(home)


def test_a_writer_killed_between_lake_and_status_writes_is_repaired_by_a_rerun(tmp_path):
    lake, status = undisturbed(tmp_path)
    assert sorted(status["status"].value_counts().items()) == [("ok", 1), ("partial", 4)]
    home = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, datetime as dt
        from stock_assets.storage.catalog import Catalog
        from stock_assets.pipelines.ingest import ingest_and_derive, ingest_symbol
        from stock_assets.providers.synthetic import SyntheticProvider
        from stock_assets.storage.warehouse import Warehouse
        Catalog.upsert_ingest_status = lambda self, rows: os.kill(os.getpid(), 9)
        days = [dt.date.fromisoformat(d) for d in {[d.isoformat() for d in DAYS]!r}]
        ingest_symbol("SPY", days, [SyntheticProvider()], Warehouse({str(home)!r}))
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    minutes = {k: v for k, v in lake.items() if "/bars_1m/" in k}
    assert lake_digest(home) == minutes and status_of(home).empty  # bars stored, no status
    ingest_symbol("SPY", DAYS, [SyntheticProvider()], Warehouse(home))
    assert lake_digest(home) == minutes
    pd.testing.assert_frame_equal(status_of(home), status)


@pytest.mark.slow
def test_ingests_killed_at_random_moments_end_like_an_undisturbed_one(tmp_path):
    lake, status = undisturbed(tmp_path)
    home = tmp_path / "home"
    env = {**os.environ, "STOCK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "STOCK_ASSETS_PROVIDERS": "synthetic"}  # fmt: skip
    command = [sys.executable, "-m", "stock_assets.cli", "ingest", "SPY",
               "--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]  # fmt: skip
    rng = random.Random(7)
    for _ in range(4):
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(1.0, 12.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lake_digest(home) == lake
    pd.testing.assert_frame_equal(status_of(home), status)


def corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a bad copy


def test_a_corrupt_partition_is_named_quarantined_and_rebuilt(home, capsys):
    args = ["--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    assert main(["ingest", "SPY", *args]) == 0
    capsys.readouterr()
    lake = home / "lake"
    derived = lake / "bars_derived" / "symbol=SPY" / f"date={DAYS[1]}" / "part.parquet"
    good_derived = derived.read_bytes()
    corrupt(derived)
    minute = lake / "bars_1m" / "symbol=SPY" / f"date={DAYS[-1]}" / "part.parquet"
    good_minute = minute.read_bytes()
    corrupt(minute)

    # readers: one line naming the file and the command that repairs it, exit 1
    repair = f"stock-assets ingest SPY --start {DAYS[-1]} --end {DAYS[-1]} --refetch"
    for command in (["bars", "SPY"], ["gaps", "SPY"]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"stock-assets: {minute}: unreadable partition " + err.split(
            "unreadable partition ", 1
        )[1] and err.endswith(f"; repair: {repair}")
        assert len(err.splitlines()) == 1

    # the asset check names both files
    from stock_assets.assets.bars import lake_readable
    from stock_assets.resources.warehouse import WarehouseResource

    result = lake_readable(warehouse=WarehouseResource(home=str(home)))
    assert not result.passed and result.metadata["unreadable"].value == 2

    # other symbols keep working while the files are bad
    assert main(["ingest", "QQQ", *args]) == 0
    capsys.readouterr()
    # the next run of the asset moves them aside and rebuilds them
    assert main(["ingest", "SPY", *args]) == 0
    assert derived.read_bytes() == good_derived and minute.read_bytes() == good_minute
    kept = sorted((home / "quarantine").rglob("*.parquet"))
    assert [p.parent.relative_to(home / "quarantine").as_posix() for p in kept] == [
        f"bars_1m/symbol=SPY/date={DAYS[-1]}", f"bars_derived/symbol=SPY/date={DAYS[1]}",
    ]  # fmt: skip
    assert lake_readable(warehouse=WarehouseResource(home=str(home))).passed


def test_a_corrupt_feature_day_is_rebuilt_from_the_history(home, capsys):
    args = ["--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    assert main(["ingest", "SPY", "QQQ", "VIXY", *args]) == 0
    assert main(["features", "build", "SPY", "--start", str(DAYS[0]), "--end", str(DAYS[-2])]) == 0
    carry = home / "lake" / "features" / "symbol=SPY" / f"date={DAYS[-2]}" / "part.parquet"
    corrupt(carry)
    capsys.readouterr()
    assert main(["features", "SPY"]) == 1
    err = capsys.readouterr().err
    assert f"repair: stock-assets features build SPY --start {DAYS[-2]} --end {DAYS[-2]}" in err
    assert main(["features", "build", "SPY", "--start", str(DAYS[-1]), "--end", str(DAYS[-1])]) == 0
    assert list((home / "quarantine" / "features").rglob("*.parquet"))
    assert main(["features", "build", "SPY", "--start", str(DAYS[-2]), "--end", str(DAYS[-2])]) == 0
    assert Warehouse(home).read_features("SPY") is not None


KEY, SECRET = "PKLEAKCHECK00001", "leak-check-secret-0123456789"


def test_alpaca_keys_reach_no_file_whichever_way_they_are_offered(home, monkeypatch, capsys):
    from stock_assets.definitions import build_defs
    from stock_assets.testing.fake_alpaca import FakeAlpacaServer

    with FakeAlpacaServer(api_key=KEY, secret_key=SECRET) as server:
        monkeypatch.setenv("ALPACA_API_KEY_ID", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("ALPACA_DATA_URL", server.url)
        assert main(["-v", "ingest", "SPY", "--start", "2024-03-04", "--end", "2024-03-05",
                     "--provider", "alpaca"]) == 0  # fmt: skip
        job = build_defs().resolve_job_def("ingest_job")
        offered = [
            {"resources": {"market_data": {"config": {"alpaca_key_id": KEY}}}},
            {"resources": {"market_data": {"config": {"alpaca_secret_key": SECRET}}}},
            {"ops": {"bars": {"config": {"alpaca_secret_key": SECRET}}}},
        ]
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            runs_before = len(instance.get_runs())
            for run_config in offered:
                with pytest.raises(dg.DagsterInvalidConfigError, match="alpaca_"):
                    job.execute_in_process(run_config=run_config, instance=instance,
                                           partition_key="2024-03-04|SPY")  # fmt: skip
            assert len(instance.get_runs()) == runs_before  # refused before any run exists
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err and SECRET not in captured.out + captured.err
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in data and SECRET.encode() not in data, path
