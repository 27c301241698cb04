from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from stock_assets.core import bars as core_bars
from stock_assets.core import calendar
from stock_assets.core.symbols import InvalidSymbol
from stock_assets.storage.lake import CorruptPartition, Lake
from stock_assets.storage.warehouse import BARS_SCHEMA, Warehouse, to_table

DAY = dt.date(2024, 3, 8)
REPO = Path(__file__).resolve().parents[2]


def session_bars(day=DAY, price=100.0, drop=()):
    minutes = calendar.session_minutes(day)
    frame = pd.DataFrame(
        {"ts": minutes, "open": price, "high": price + 1, "low": price - 1, "close": price,
         "volume": 100.0, "vwap": price, "trade_count": 3}
    )  # fmt: skip
    return core_bars.conform(frame.drop(index=list(drop)), source="test")


def test_partition_paths_are_hive_style_and_reject_bad_symbols(tmp_path):
    lake = Lake(tmp_path)
    path = lake.partition_path("bars_1m", "spy", DAY)
    assert path == tmp_path / "bars_1m" / "symbol=SPY" / "date=2024-03-08" / "part.parquet"
    with pytest.raises(InvalidSymbol):
        lake.partition_path("bars_1m", "../x", DAY)


def test_rewriting_equal_content_leaves_the_file_byte_identical(tmp_path):
    lake = Lake(tmp_path)
    table = to_table(session_bars(), BARS_SCHEMA)
    assert lake.write("bars_1m", "SPY", DAY, table) is True
    path = lake.partition_path("bars_1m", "SPY", DAY)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert lake.write("bars_1m", "SPY", DAY, to_table(session_bars(), BARS_SCHEMA)) is False
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert list(path.parent.iterdir()) == [path]


@pytest.mark.parametrize("crash_point", ["before_replace", "mid_write"])
def test_a_writer_killed_midway_leaves_the_old_partition_intact(tmp_path, crash_point):
    lake = Lake(tmp_path)
    lake.write("bars_1m", "SPY", DAY, to_table(session_bars(price=100.0), BARS_SCHEMA))
    path = lake.partition_path("bars_1m", "SPY", DAY)
    original = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal, datetime as dt
        import pyarrow.parquet as pq
        from stock_assets.storage import lake as lake_module
        from tests.storage.test_lake import session_bars
        from stock_assets.storage.warehouse import BARS_SCHEMA, to_table
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        if {crash_point!r} == "before_replace":
            lake_module.os.replace = die
        else:
            real = pq.write_table
            def half(table, where, **kw):
                real(table.slice(0, 10), where, **kw)
                die()
            lake_module.pq.write_table = half
        lake = lake_module.Lake({str(tmp_path)!r})
        table = to_table(session_bars(price=200.0), BARS_SCHEMA)
        lake.write("bars_1m", "SPY", dt.date(2024, 3, 8), table)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False)
    assert done.returncode == -9
    assert path.read_bytes() == original
    assert lake.days("bars_1m", "SPY") == [DAY]
    assert lake.read_days("bars_1m", "SPY", [DAY])["close"].unique().tolist() == [100.0]
    # a later write cleans up the killed writer's temporary file
    lake.write("bars_1m", "SPY", DAY, to_table(session_bars(price=300.0), BARS_SCHEMA))
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def test_corrupt_partition_is_reported_with_its_path(tmp_path):
    lake = Lake(tmp_path)
    path = lake.partition_path("bars_1m", "SPY", DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(CorruptPartition, match="date=2024-03-08"):
        lake.read_days("bars_1m", "SPY", [DAY])
    # storing good data replaces the corrupt file
    lake.write("bars_1m", "SPY", DAY, to_table(session_bars(), BARS_SCHEMA))
    assert len(lake.read_days("bars_1m", "SPY", [DAY])) == 390


def test_store_bars_merges_only_missing_bars_and_reports_gaps(tmp_path):
    warehouse = Warehouse(tmp_path)
    first = warehouse.store_bars("SPY", session_bars(drop=[5, 6]), [DAY])
    assert (first[0].rows, first[0].missing_minutes, first[0].written) == (388, 2, True)
    second = warehouse.store_bars("SPY", session_bars(price=999.0), [DAY])
    assert (second[0].rows, second[0].missing_minutes, second[0].written) == (390, 0, True)
    stored = warehouse.read_bars("SPY", [DAY])
    assert sorted(stored["close"].unique()) == [100.0, 999.0]
    assert (stored["close"] == 999.0).sum() == 2
    third = warehouse.store_bars("SPY", session_bars(price=5.0), [DAY])
    assert third[0].written is False


def test_catalog_views_expose_exact_bar_columns(tmp_path):
    warehouse = Warehouse(tmp_path)
    warehouse.catalog.refresh_views()  # before any data: typed, empty
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM bars").fetchone() == (0,)
    warehouse.store_bars("SPY", session_bars(), [DAY])
    warehouse.store_derived("SPY", [DAY])
    warehouse.catalog.refresh_views()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        described = con.execute("DESCRIBE bars").fetchall()
        assert [(name, kind) for name, kind, *_ in described] == [
            ("symbol", "VARCHAR"), ("ts", "TIMESTAMP WITH TIME ZONE"), ("open", "DOUBLE"),
            ("high", "DOUBLE"), ("low", "DOUBLE"), ("close", "DOUBLE"), ("volume", "DOUBLE"),
            ("vwap", "DOUBLE"), ("trade_count", "BIGINT"), ("source", "VARCHAR"),
            ("is_filled", "BOOLEAN"),
        ]  # fmt: skip
        assert con.execute("SELECT count(*), min(symbol) FROM bars").fetchone() == (390, "SPY")
        assert con.execute("SELECT count(*) FROM bars_5m").fetchone() == (78,)
        assert con.execute("SELECT count(*) FROM bars_1d").fetchone() == (1,)


def test_features_view_unifies_partitions_by_column_name(tmp_path):
    """A feature added later is a new column: older partitions read it as NULL."""
    warehouse = Warehouse(tmp_path)
    ts = calendar.session_minutes(DAY)[:2]
    old = pd.DataFrame({"ts": ts, "rsi_14": [50.0, 51.0]})
    later = pd.DataFrame({"ts": calendar.session_minutes(dt.date(2024, 3, 11))[:2],
                          "rsi_14": [52.0, 53.0], "new_feature": [1.0, 2.0]})  # fmt: skip
    warehouse.store_features("SPY", old, [DAY])
    warehouse.store_features("SPY", later, [dt.date(2024, 3, 11)])
    warehouse.catalog.refresh_views()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        rows = con.execute(
            "SELECT symbol, rsi_14, new_feature FROM features ORDER BY ts"
        ).fetchall()
    assert rows == [
        ("SPY", 50.0, None),
        ("SPY", 51.0, None),
        ("SPY", 52.0, 1.0),
        ("SPY", 53.0, 2.0),
    ]


def test_catalog_writes_from_concurrent_processes_wait_for_the_lock(tmp_path):
    """DuckDB lets one process write at a time: a second writer waits, nothing is lost."""
    script = textwrap.dedent(
        f"""
        import datetime as dt, sys
        import pandas as pd
        from stock_assets.storage.warehouse import Warehouse
        catalog = Warehouse({str(tmp_path)!r}).catalog
        symbol = sys.argv[1]
        for day in range(1, 29):
            catalog.upsert_ingest_status(pd.DataFrame({{
                "symbol": [symbol], "date": [dt.date(2024, 2, day)], "status": ["ok"],
                "provider": ["synthetic"], "rows": [390], "missing_minutes": [0],
                "message": [""], "updated_at": [pd.Timestamp.now(tz="UTC")]}}))
        """
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, symbol], cwd=REPO)
        for symbol in ("AAA", "BBB", "CCC")
    ]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0, 0]
    status = Warehouse(tmp_path).catalog.ingest_status()
    assert status.groupby("symbol").size().to_dict() == {"AAA": 28, "BBB": 28, "CCC": 28}


def test_a_catalog_from_before_code_hash_is_migrated_keeping_its_rows(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(
            "CREATE TABLE feature_metadata (feature VARCHAR NOT NULL, version INTEGER NOT NULL, "
            "params VARCHAR NOT NULL, params_hash VARCHAR NOT NULL, code_ref VARCHAR NOT NULL, "
            "category VARCHAR, warmup_bars INTEGER, dtype VARCHAR, git_revision VARCHAR, "
            "created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (feature, version, params_hash))"
        )
        con.execute(
            "INSERT INTO feature_metadata VALUES ('rsi_14', 1, '{}', 'h', "
            "'stock_assets.core.indicators:rsi', 'momentum', 14, 'float64', 'abc', now())"
        )
    catalog = Warehouse(tmp_path).catalog
    from stock_assets.core.features import feature_metadata_rows

    catalog.record_features("SPY", feature_metadata_rows(), [], [dt.date(2024, 3, 8)])
    rows = catalog.read("SELECT feature, code_hash FROM feature_metadata WHERE feature = 'rsi_14'")
    assert sorted(rows["code_hash"].str.len()) == [7, 64]  # 'unknown' kept, the new one added
