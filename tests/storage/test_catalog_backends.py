"""The catalog's tables behave the same in the DuckDB file and in PostgreSQL
(STOCK_ASSETS_CATALOG_URL): every write method, the reads over them, concurrent writers
from several processes, and the same results from the same writes on both."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from stock_assets.core.tables import TABLES
from stock_assets.logs import redact
from stock_assets.storage.catalog import Catalog
from stock_assets.storage.lake import Lake
from stock_assets.storage.warehouse import Warehouse

NOW = pd.Timestamp("2024-03-08 21:00", tz="UTC")
DAY = dt.date(2024, 3, 8)


def sample_rows(table: str, n: int = 3, salt: int = 0) -> pd.DataFrame:
    """`n` rows of a table from its definition: every type, NULL in every nullable column
    of the last row, and values that satisfy its checks."""
    definition = TABLES[table]
    values = {}
    for column in definition.columns:
        kind = column.type
        if column.check and "status" in column.name:
            column_values = [column.check.split("'")[1]] * n
        elif kind == "VARCHAR":
            column_values = [f"{column.name}-{i}-{salt}" for i in range(n)]
        elif kind == "DATE":
            column_values = [DAY - dt.timedelta(days=i) for i in range(n)]
        elif kind in ("INTEGER", "BIGINT"):
            column_values = [i + salt for i in range(n)]
        elif kind == "DOUBLE":
            column_values = [0.5 * i - 1.25 + salt for i in range(n)]
        elif kind == "BOOLEAN":
            column_values = [i % 2 == 0 for i in range(n)]
        else:  # TIMESTAMPTZ
            column_values = [NOW - pd.Timedelta(minutes=i) for i in range(n)]
        nullable = not column.not_null and column.name not in definition.primary_key
        if nullable:
            column_values[-1] = None
        values[column.name] = column_values
    return pd.DataFrame(values)


def plain(values: pd.Series) -> list:
    """Values to compare: NULL as None, dates as dates, whatever the frame's dtype."""
    return [
        None
        if value is None or (not isinstance(value, str) and pd.isna(value))
        else value.date()
        if isinstance(value, pd.Timestamp) and value.tz is None
        else value
        for value in values.tolist()
    ]


def read_all(catalog: Catalog, table: str) -> pd.DataFrame:
    keys = ", ".join(TABLES[table].primary_key)
    return catalog.read(f"SELECT * FROM {table} ORDER BY {keys}")


def test_every_table_round_trips_with_its_types_and_nulls(home, catalog_backend):
    catalog = Warehouse(home).catalog
    assert (catalog.postgres is not None) == (catalog_backend == "postgresql")
    for name in TABLES:
        assert read_all(catalog, name).columns.tolist() == TABLES[name].column_names
        assert read_all(catalog, name).empty
        rows = sample_rows(name)
        catalog.upsert(name, rows)
        stored = read_all(catalog, name)
        assert len(stored) == 3
        expected = rows.sort_values(list(TABLES[name].primary_key)).reset_index(drop=True)
        for column in TABLES[name].columns:
            got, want = plain(stored[column.name]), plain(expected[column.name])
            assert got == want, (name, column.name)


def test_upsert_replaces_by_primary_key_and_a_missing_column_is_null(home, catalog_backend):
    catalog = Warehouse(home).catalog
    catalog.upsert("alerts", sample_rows("alerts"))
    changed = sample_rows("alerts").iloc[:1].assign(message="again").drop(columns=["details"])
    catalog.upsert("alerts", changed)
    stored = read_all(catalog, "alerts")
    assert stored["message"].tolist() == ["again", "message-1-0", "message-2-0"]
    assert stored["details"].isna().tolist() == [True, False, True]


def test_ingest_status_keeps_updated_at_when_nothing_changed(home, catalog_backend):
    catalog = Warehouse(home).catalog
    rows = pd.DataFrame({"symbol": "SPY", "date": [DAY], "status": "ok", "provider": "x",
                         "rows": 390, "missing_minutes": 0, "message": "",
                         "updated_at": NOW})  # fmt: skip
    catalog.upsert_ingest_status(rows)
    catalog.upsert_ingest_status(rows.assign(updated_at=NOW + pd.Timedelta(hours=1)))
    assert catalog.ingest_status()["updated_at"].tolist() == [NOW]
    catalog.upsert_ingest_status(
        rows.assign(status="partial", updated_at=NOW + pd.Timedelta(1, "h"))
    )
    assert catalog.ingest_status()[["status", "updated_at"]].values.tolist() == [
        ["partial", NOW + pd.Timedelta(hours=1)]
    ]


def test_feature_folds_widen_and_feature_definitions_register_once(home, catalog_backend):
    catalog = Warehouse(home).catalog
    definition = {"feature": "rsi_14", "version": 1, "params": "{}", "params_hash": "h",
                  "code_ref": "x:y", "code_hash": "c", "category": "momentum",
                  "warmup_bars": 14, "dtype": "float64"}  # fmt: skip
    catalog.record_features("SPY", [definition], ["fold-a"], [DAY])
    catalog.record_features("SPY", [definition], ["fold-a"], [DAY - dt.timedelta(days=3)])
    catalog.record_features("SPY", [definition], ["fold-a"], [DAY + dt.timedelta(days=3)])
    assert len(catalog.read("SELECT * FROM feature_metadata")) == 1
    folds = catalog.feature_folds()
    assert folds[["symbol", "fold_config"]].values.tolist() == [["SPY", "fold-a"]]
    assert pd.Timestamp(folds["first_date"][0]).date() == DAY - dt.timedelta(days=3)
    assert pd.Timestamp(folds["last_date"][0]).date() == DAY + dt.timedelta(days=3)


def test_sim_runs_of_a_grid_are_replaced_not_added(home, catalog_backend):
    catalog = Warehouse(home).catalog
    rows = sample_rows("sim_runs").assign(grid_id="g1")
    catalog.replace_sim_runs(rows)
    catalog.replace_sim_runs(rows.assign(sharpe=9.0, run_id=rows["run_id"] + "-again"))
    catalog.replace_sim_runs(sample_rows("sim_runs", n=2, salt=5).assign(grid_id="g2"))
    stored = catalog.read("SELECT grid_id, sharpe FROM sim_runs ORDER BY grid_id, run_id")
    assert stored.fillna(-1).values.tolist() == [["g1", 9.0]] * 3 + [["g2", 3.75], ["g2", -1]]
    board = catalog.leaderboard("sharpe", limit=2)
    assert board["sharpe"].tolist() == [9.0, 9.0]


def test_a_failed_write_leaves_nothing(home, catalog_backend):
    catalog = Warehouse(home).catalog
    catalog.upsert("alerts", sample_rows("alerts"))
    before = catalog.version("alerts")
    bad = sample_rows("alerts").assign(status="nonsense")  # breaks the table's check
    with pytest.raises(Exception, match="(?i)check"):
        catalog.upsert("alerts", bad.assign(kind="new"))
    assert catalog.version("alerts") == before
    assert read_all(catalog, "alerts")["kind"].tolist() == ["kind-0-0", "kind-1-0", "kind-2-0"]


def test_the_same_writes_give_the_same_reads_on_both_backends(tmp_path, postgres_url):
    lake = Lake(tmp_path / "lake")
    duck = Catalog(tmp_path / "duck" / "warehouse.duckdb", lake)
    pg = Catalog(tmp_path / "pg" / "warehouse.duckdb", lake, postgres_url)
    for catalog in (duck, pg):
        for salt, name in enumerate(TABLES):
            catalog.upsert(name, sample_rows(name, n=4, salt=salt))
        catalog.replace_sim_runs(sample_rows("sim_runs", n=5, salt=7).assign(grid_id="g"))
        catalog.upsert_ingest_status(sample_rows("ingest_status", salt=1).assign(rows=1))
    queries = [f"SELECT * FROM {name} ORDER BY {', '.join(TABLES[name].primary_key)}"
               for name in TABLES]  # fmt: skip
    queries += [
        "SELECT symbol, count(*) AS n, sum(sharpe) AS s FROM sim_runs GROUP BY symbol ORDER BY 1",
        "SELECT s.symbol, i.status FROM sim_runs s JOIN ingest_status i USING (symbol) ORDER BY 1",
    ]
    for query in queries:
        pd.testing.assert_frame_equal(duck.read(query), pg.read(query), check_dtype=True)
    for metric in ("sqn", "sharpe", "total_return"):
        pd.testing.assert_frame_equal(duck.leaderboard(metric), pg.leaderboard(metric))


WRITER = """
import sys
import pandas as pd
from stock_assets.storage.warehouse import Warehouse
sys.path.insert(0, {tests!r})
from storage.test_catalog_backends import sample_rows
worker = int(sys.argv[1])
catalog = Warehouse({home!r}).catalog
for i in range(10):
    rows = sample_rows("alerts", n=5, salt=worker).assign(kind=f"w{{worker}}-{{i}}")
    catalog.upsert("alerts", rows)
    grid = sample_rows("sim_runs", n=4, salt=worker).assign(grid_id=f"w{{worker}}-{{i}}")
    catalog.replace_sim_runs(grid.assign(run_id=grid.grid_id + grid.run_id))
"""


def test_concurrent_writer_processes_lose_nothing(home, catalog_backend):
    tests = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    script = textwrap.dedent(WRITER.format(tests=tests, home=str(home)))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(3)]
    assert [writer.wait(timeout=300) for writer in writers] == [0] * 3
    catalog = Warehouse(home).catalog
    assert catalog.read("SELECT count(*) AS n FROM alerts")["n"][0] == 3 * 10 * 5
    counts = catalog.read("SELECT grid_id, count(*) AS n FROM sim_runs GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [4] * 30
    assert sorted(counts["grid_id"]) == sorted(f"w{w}-{i}" for w in range(3) for i in range(10))


def test_a_bad_catalog_url_is_a_clear_error_without_its_password(home, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_CATALOG_URL", "mysql://user:hunter2@db/catalog")
    with pytest.raises(ValueError, match="postgresql://") as error:
        Warehouse(home).catalog  # noqa: B018
    assert "hunter2" not in str(error.value)
    unreachable = "postgresql://user:hunter2@127.0.0.1:1/catalog"
    monkeypatch.setenv("STOCK_ASSETS_CATALOG_URL", unreachable)
    with pytest.raises(ConnectionError, match="unreachable") as error:
        Warehouse(home).catalog.ingest_status()
    assert "hunter2" not in str(error.value) and "user:***@127.0.0.1:1" in str(error.value)
    assert redact(unreachable) == "postgresql://user:***@127.0.0.1:1/catalog"
    np.testing.assert_equal(redact("postgresql://127.0.0.1/x"), "postgresql://127.0.0.1/x")
