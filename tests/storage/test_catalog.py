"""The catalog's read path: reads never open the DuckDB file, so a writer holding it
(a long write transaction in another process) makes no reader wait."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import dagster as dg
import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.sim_params import SimGrid
from stock_assets.core.sim_results import sim_runs_frame
from stock_assets.core.simulation import simulate_grid
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.storage.warehouse import Warehouse

DAYS = calendar.sessions(dt.date(2024, 3, 4), dt.date(2024, 3, 8))
HOLD_SECONDS = 120  # longer than any reader may take, and than the writers' lock wait


def stocked_warehouse(home) -> Warehouse:
    """Bars, features, ingest status and sim_runs for SPY over DAYS."""
    warehouse = Warehouse(home)
    bars = SyntheticProvider(seed=1).fetch("SPY", DAYS[0], DAYS[-1])
    bars = bars.assign(source="synthetic", is_filled=False)
    stored = warehouse.store_bars("SPY", bars, DAYS)
    warehouse.store_features("SPY", bars[["ts", "close"]].assign(rsi_14=50.0), DAYS)
    warehouse.catalog.upsert_ingest_status(
        pd.DataFrame({"symbol": "SPY", "date": DAYS, "status": "partial", "provider": "synthetic",
                      "rows": [s.rows for s in stored], "missing_minutes": 1, "message": "",
                      "updated_at": pd.Timestamp.now(tz="UTC")})
    )  # fmt: skip
    pred = np.sin(np.arange(len(bars)) / 7.0) / 1000
    result = simulate_grid(bars.reset_index(drop=True), pred, SimGrid(thresholds=(0.0, 0.001)))
    warehouse.catalog.replace_sim_runs(
        sim_runs_frame(result, symbol="SPY", model_id="test:sine", grid_id="g1")
    )
    return warehouse


def test_readers_answer_while_another_process_holds_the_write_lock(home):
    warehouse = stocked_warehouse(home)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, duckdb
            connection = duckdb.connect({str(home / "warehouse.duckdb")!r})
            connection.execute("BEGIN")
            connection.execute("DELETE FROM sim_runs")  # uncommitted, the file stays locked
            print("locked", flush=True)
            time.sleep({HOLD_SECONDS})
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        for command in (["leaderboard", "SPY", "--format", "json"], ["bars", "SPY", "--limit", "3"],
                        ["features", "SPY", "--tail", "2"], ["features", "options"]):  # fmt: skip
            done = subprocess.run(
                [sys.executable, "-m", "stock_assets.cli", *command],
                capture_output=True, text=True, timeout=HOLD_SECONDS / 2,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stderr[-2000:])
        assert (
            '"model_id": "test:sine"'
            in subprocess.run(
                [sys.executable, "-m", "stock_assets.cli", "leaderboard", "--format", "json"],
                capture_output=True,
                text=True,
                timeout=HOLD_SECONDS / 2,
            ).stdout
        )  # the uncommitted delete is not seen

        from stock_assets.resources.warehouse import WarehouseResource
        from stock_assets.sensors.bars import gap_scanner_sensor

        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(
                instance=instance, resources={"warehouse": WarehouseResource(home=str(home))}
            )
            evaluation = gap_scanner_sensor(context)  # reads ingest_status
        assert isinstance(evaluation, dg.SkipReason)  # DAYS are older than the scan window
        assert len(warehouse.catalog.read("SELECT * FROM sim_runs")) == 2
        assert holder.poll() is None  # the writer still holds the file
    finally:
        holder.kill()
        holder.wait()


def test_a_mirror_lost_after_a_commit_is_rebuilt_by_the_next_writer_process(home):
    warehouse = stocked_warehouse(home)
    mirror = home / "catalog" / "ingest_status.parquet"
    before = warehouse.catalog.ingest_status()
    mirror.unlink()  # as if the process died between the commit and the mirror
    assert warehouse.catalog.ingest_status().empty
    subprocess.run(
        [sys.executable, "-c", "from stock_assets.storage.warehouse import Warehouse; "
         f"Warehouse({str(home)!r}).catalog.refresh_views()"],
        check=True, timeout=120,
    )  # fmt: skip
    pd.testing.assert_frame_equal(warehouse.catalog.ingest_status(), before)


def test_a_kept_read_result_lasts_until_its_table_changes(home, catalog_backend):
    warehouse = Warehouse(home)
    status = pd.DataFrame({"symbol": "SPY", "date": DAYS[:1], "status": "ok", "provider": "x",
                           "rows": 390, "missing_minutes": 0, "message": "",
                           "updated_at": pd.Timestamp.now(tz="UTC")})  # fmt: skip
    warehouse.catalog.upsert_ingest_status(status)
    query = "SELECT symbol, status FROM ingest_status ORDER BY date"
    first = warehouse.catalog.read(query)
    first.loc[0, "status"] = "changed by the caller"  # a copy: the kept result stays
    assert warehouse.catalog.read(query).values.tolist() == [["SPY", "ok"]]
    warehouse.catalog.upsert_ingest_status(status.assign(date=DAYS[1], status="partial"))
    assert warehouse.catalog.read(query).values.tolist() == [["SPY", "ok"], ["SPY", "partial"]]
