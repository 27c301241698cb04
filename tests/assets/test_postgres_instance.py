"""The same ingest runs on a Dagster instance backed by PostgreSQL (deploy/ config)."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest

from stock_assets.jobs.launcher import symbol_days_tags as range_tags

psycopg2 = pytest.importorskip("psycopg2")
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"
SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres_url():
    try:
        admin = psycopg2.connect(f"{SERVER}/postgres", connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({error})")
    admin.autocommit = True
    name = f"stock_assets_test_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{SERVER}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_ingest_on_a_postgres_instance(home, postgres_url, monkeypatch, tmp_path):
    dagster_home = tmp_path / "pg_dagster"
    dagster_home.mkdir()
    shutil.copyfile(CONFIG, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
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
