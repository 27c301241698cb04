"""The same ingest runs on a Dagster instance backed by PostgreSQL (deploy/ config), with
the catalog's tables in PostgreSQL too."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import psycopg2

from stock_assets.jobs.launcher import symbol_days_tags as range_tags

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"


def test_ingest_on_a_postgres_instance(home, postgres_url, monkeypatch, tmp_path):
    dagster_home = tmp_path / "pg_dagster"
    dagster_home.mkdir()
    shutil.copyfile(CONFIG, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
    monkeypatch.setenv("STOCK_ASSETS_CATALOG_URL", postgres_url)
    from stock_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("symbols", ["SPY"])
        days = (dt.date(2024, 3, 7), dt.date(2024, 3, 8))
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            instance=instance, tags=range_tags("SPY", *days)
        )
        assert result.success
        materialized = instance.get_materialized_partitions(dg.AssetKey("bars_1m"))
        assert sorted(materialized) == ["2024-03-07|SPY", "2024-03-08|SPY"]
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT symbol, date::text FROM ingest_status ORDER BY date")
        assert cursor.fetchall() == [("SPY", "2024-03-07"), ("SPY", "2024-03-08")]
    assert not (home / "catalog").exists()  # no DuckDB tables, no mirrors
