"""The DuckDB catalog `warehouse.duckdb`: views over the lake and the relational tables.

Writes are short transactions. DuckDB lets one process at a time open the file for
writing, so a connection that finds the file locked waits and tries again for a while
before it gives up. Readers of bars and features go to the Parquet lake instead
(`Lake.query`), never to this file.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from stock_assets.core.sim_results import SIM_RUNS_DDL, leaderboard_sql
from stock_assets.storage.lake import Lake
from stock_assets.settings import git_revision

INGEST_STATUS_DDL = """
CREATE TABLE IF NOT EXISTS ingest_status (
    symbol VARCHAR NOT NULL,
    date DATE NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('ok', 'partial', 'empty', 'failed')),
    provider VARCHAR,
    rows INTEGER NOT NULL,
    missing_minutes INTEGER NOT NULL,
    message VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, date)
)
"""
FEATURE_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS feature_metadata (
    feature VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    params VARCHAR NOT NULL,
    params_hash VARCHAR NOT NULL,
    code_ref VARCHAR NOT NULL,
    code_hash VARCHAR NOT NULL,
    category VARCHAR,
    warmup_bars INTEGER,
    dtype VARCHAR,
    git_revision VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feature, version, params_hash, code_hash)
);
CREATE TABLE IF NOT EXISTS feature_folds (
    symbol VARCHAR NOT NULL,
    fold_config VARCHAR NOT NULL,
    first_date DATE NOT NULL,
    last_date DATE NOT NULL,
    PRIMARY KEY (symbol, fold_config)
);
"""
INGEST_STATUS_COLUMNS = [
    "symbol", "date", "status", "provider", "rows", "missing_minutes", "message", "updated_at",
]  # fmt: skip

BAR_VIEW_COLUMNS = {
    "symbol": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
    "vwap": "DOUBLE",
    "trade_count": "BIGINT",
}
DERIVED_VIEW_COLUMNS = {**BAR_VIEW_COLUMNS, "minutes": "INTEGER", "filled_minutes": "INTEGER"}
# view name -> (lake dataset, its columns and types, row filter)
LAKE_VIEWS: dict[str, tuple[str, dict[str, str] | None, str]] = {
    "bars": ("bars_1m", {**BAR_VIEW_COLUMNS, "source": "VARCHAR", "is_filled": "BOOLEAN"}, ""),
    **{
        f"bars_{interval}": (
            "bars_derived",
            {"interval": "VARCHAR", **DERIVED_VIEW_COLUMNS},
            f"interval = '{interval}'",
        )
        for interval in ("5m", "15m", "30m", "1h", "1d")
    },
    "features": ("features", None, ""),
    "market_regimes": ("market_regimes", None, ""),
}
LOCK_WAIT_SECONDS = 60.0


def lake_select(lake: Lake, dataset: str, columns: dict[str, str] | None) -> str | None:
    """SQL selecting `columns` from a lake dataset (an empty typed relation when it has no
    files). With columns None, every column of the files by name (None when no files)."""
    if not lake.has_files(dataset):
        if columns is None:
            return None
        typed = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items())
        return f"SELECT {typed} WHERE false"
    glob = lake.glob(dataset).replace("'", "''")
    if columns is None:
        names = "* EXCLUDE (date)"
    else:
        names = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in columns.items())
    by_symbol = "symbol=" in str(next(lake.dataset_dir(dataset).iterdir()).name)
    hive_types = "{'symbol': VARCHAR, 'date': DATE}" if by_symbol else "{'date': DATE}"
    return (
        f"SELECT {names} FROM read_parquet('{glob}', hive_partitioning = true, "
        f"hive_types = {hive_types}, union_by_name = true)"
    )


def _migrate_feature_metadata(connection: duckdb.DuckDBPyConnection) -> None:
    """Catalogs written before `code_hash` existed get the column (value 'unknown') and
    the wider primary key; their rows are kept."""
    columns = connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'feature_metadata'"
    ).fetchall()
    if not columns or ("code_hash",) in columns:
        return
    connection.execute("BEGIN")
    connection.execute("ALTER TABLE feature_metadata RENAME TO feature_metadata_old")
    connection.execute(FEATURE_TABLES_DDL)
    connection.execute(
        "INSERT INTO feature_metadata BY NAME "
        "SELECT *, 'unknown' AS code_hash FROM feature_metadata_old"
    )
    connection.execute("DROP TABLE feature_metadata_old")
    connection.execute("COMMIT")


class Catalog:
    def __init__(self, path: str | Path, lake: Lake):
        self.path = Path(path)
        self.lake = lake

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with the schema in place; waits while another process
        holds the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.05
        while True:
            try:
                connection = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, 1.0)
        try:
            connection.execute(INGEST_STATUS_DDL)
            _migrate_feature_metadata(connection)
            connection.execute(FEATURE_TABLES_DDL)
            connection.execute(SIM_RUNS_DDL)
            yield connection
        finally:
            connection.close()

    def refresh_views(self) -> None:
        """(Re)create the views over the lake, so new datasets and a moved home show up."""
        with self.connect() as connection:
            for view, (dataset, columns, where) in LAKE_VIEWS.items():
                select = lake_select(self.lake, dataset, columns)
                if select is None:
                    connection.execute(f"DROP VIEW IF EXISTS {view}")
                    continue
                if where:
                    names = ", ".join(name for name in columns if name != "interval")
                    select = f"SELECT {names} FROM ({select}) WHERE {where}"
                connection.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")

    def upsert_ingest_status(self, rows: pd.DataFrame) -> None:
        """Record per (symbol, date) outcomes; a row whose outcome did not change keeps its
        `updated_at`, so a re-run changes nothing that was already right."""
        if rows.empty:
            return
        frame = rows[INGEST_STATUS_COLUMNS]
        with self.connect() as connection:
            connection.register("incoming", frame)
            connection.execute(
                """
                INSERT INTO ingest_status SELECT * FROM incoming
                ON CONFLICT (symbol, date) DO UPDATE SET
                    status = excluded.status, provider = excluded.provider,
                    rows = excluded.rows, missing_minutes = excluded.missing_minutes,
                    message = excluded.message, updated_at = excluded.updated_at
                WHERE (ingest_status.status, ingest_status.provider, ingest_status.rows,
                       ingest_status.missing_minutes, ingest_status.message)
                   IS DISTINCT FROM (excluded.status, excluded.provider, excluded.rows,
                       excluded.missing_minutes, excluded.message)
                """
            )

    def record_feature_metadata(self, rows: list[dict]) -> None:
        """Register each feature definition once (name, version, parameters and code hash),
        with the git revision and time it was first built: a new row marks a change."""
        frame = pd.DataFrame(rows).assign(
            git_revision=git_revision(), created_at=pd.Timestamp.now(tz="UTC")
        )
        with self.connect() as connection:
            connection.register("incoming", frame)
            connection.execute(
                "INSERT INTO feature_metadata BY NAME SELECT * FROM incoming ON CONFLICT DO NOTHING"
            )

    def record_folds(self, symbol: str, fold_keys: list[str], days: list) -> None:
        """Note that `symbol` has features labelled with these fold configurations."""
        with self.connect() as connection:
            for key in fold_keys:
                connection.execute(
                    """
                    INSERT INTO feature_folds VALUES (?, ?, ?, ?)
                    ON CONFLICT (symbol, fold_config) DO UPDATE SET
                        first_date = least(feature_folds.first_date, excluded.first_date),
                        last_date = greatest(feature_folds.last_date, excluded.last_date)
                    """,
                    [symbol, key, min(days), max(days)],
                )

    def replace_sim_runs(self, rows: pd.DataFrame) -> None:
        """Store simulation rows; the rows of a grid id already stored are replaced, so a
        re-run of the same grid over the same data leaves one copy."""
        with self.connect() as connection:
            connection.register("incoming", rows)
            connection.execute("BEGIN")
            connection.execute(
                "DELETE FROM sim_runs WHERE grid_id IN (SELECT DISTINCT grid_id FROM incoming)"
            )
            connection.execute("INSERT INTO sim_runs BY NAME SELECT * FROM incoming")
            connection.execute("COMMIT")

    def leaderboard(self, metric: str, symbol: str | None = None, limit: int = 20) -> pd.DataFrame:
        sql, params = leaderboard_sql(metric, symbol, limit)
        return self.query(sql, params)

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect() as connection:
            return connection.execute(sql, params or []).df()

    def ingest_status(self, symbol: str | None = None) -> pd.DataFrame:
        with self.connect() as connection:
            query = "SELECT * FROM ingest_status"
            params: list[str] = []
            if symbol:
                query += " WHERE symbol = ?"
                params.append(symbol)
            return connection.execute(query + " ORDER BY symbol, date", params).df()
