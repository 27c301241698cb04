"""The catalog: the relational tables (`core.tables`) and the views over the lake.

The tables live in the DuckDB file `warehouse.duckdb` by default, or in PostgreSQL when
STOCK_ASSETS_CATALOG_URL is a postgresql:// URL (a deployment whose workers run on several
processes or machines: `storage.postgres`); the views over the lake are always in the
DuckDB file. Callers see one interface either way: the write methods below, and `read`,
which runs the same DuckDB SQL over either backend's tables. On DuckDB:

Writes are short transactions. DuckDB lets one process at a time open the file, and a
read-only connection fails too while another process writes, so:

- a writer waits and tries again for a while when it finds the file locked; the schema
  and migrations run once per writing process, not per connection;
- after each committed write, the tables it touched are mirrored to Parquet
  (`<home>/catalog/<table>.parquet`, written to a temporary name and moved into place),
  and every read goes to those mirrors through an in-memory DuckDB. Reads never open the
  catalog file, so they never wait for a writer nor make one wait. A writer process
  re-mirrors every table when it first connects, so a crash between a commit and its
  mirror is repaired by the next write.

Readers of bars and features go to the Parquet lake (`Lake`), never to this file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from stock_assets.core.errors import UsageError
from stock_assets.core.intervals import DERIVED_INTERVALS
from stock_assets.core.sim_results import leaderboard_sql
from stock_assets.core.tables import FEATURE_FOLDS, FEATURE_METADATA, TABLES
from stock_assets.logs import get_logger, redact
from stock_assets.settings import git_revision
from stock_assets.storage.lake import BARS_1M, BARS_DERIVED, FEATURES, MARKET_REGIMES, Lake
from stock_assets.storage.postgres import PostgresTables, Session, is_postgres_url

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
    "bars": (BARS_1M, {**BAR_VIEW_COLUMNS, "source": "VARCHAR", "is_filled": "BOOLEAN"}, ""),
    **{
        f"bars_{interval}": (
            BARS_DERIVED,
            {"interval": "VARCHAR", **DERIVED_VIEW_COLUMNS},
            f"interval = '{interval}'",
        )
        for interval in DERIVED_INTERVALS
    },
    "features": (FEATURES, None, ""),
    "market_regimes": (MARKET_REGIMES, None, ""),
}
LOCK_WAIT_SECONDS = 60.0
log = get_logger(__name__)
_PREPARED: set[Path] = set()  # catalogs whose schema this process has put in place
_WRITING = threading.RLock()  # one write at a time among this process's threads
RESULTS_KEPT = 64
_RESULTS: dict[tuple, pd.DataFrame] = {}  # read results by query and mirror signatures
_RESULTS_LOCK = threading.Lock()


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a mirror is replaced: inode, size and modification time."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


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
    connection.execute(FEATURE_METADATA.ddl())
    connection.execute(
        "INSERT INTO feature_metadata BY NAME "
        "SELECT *, 'unknown' AS code_hash FROM feature_metadata_old"
    )
    connection.execute("DROP TABLE feature_metadata_old")
    connection.execute("COMMIT")


@functools.cache
def _reader() -> duckdb.DuckDBPyConnection:
    """The in-memory database whose cursors run the reads of this process."""
    return duckdb.connect(":memory:")


class _DuckDBSession:
    """One write transaction on the catalog file (see `postgres.Session`)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self.connection = connection

    def execute(self, sql: str, params: list | None = None) -> None:
        self.connection.execute(sql, params or [])

    def load(self, frame: pd.DataFrame, like: str) -> None:
        self.connection.register("incoming", frame)


class Catalog:
    """The relational tables (in the DuckDB file, or in PostgreSQL when `url` is a
    postgresql:// URL) and the views over the lake (always in the DuckDB file)."""

    def __init__(self, path: str | Path, lake: Lake, url: str = ""):
        self.path = Path(path)
        self.lake = lake
        self.mirror_dir = self.path.parent / "catalog"
        if url and not is_postgres_url(url):
            raise UsageError(
                f"STOCK_ASSETS_CATALOG_URL must be a postgresql:// URL, not {redact(url)!r}"
            )
        self.postgres = PostgresTables(url) if url else None

    # --- writes ---------------------------------------------------------------------

    @contextmanager
    def writing(self, *tables: str) -> Iterator[_DuckDBSession | Session]:
        """One transaction, committed when the block ends (waiting while another process
        or thread holds the DuckDB file); the given tables' readers see it after."""
        if self.postgres is not None:
            with self.postgres.writing(*tables) as session:
                yield session
            return
        with self._duckdb() as connection:
            connection.execute("BEGIN")
            yield _DuckDBSession(connection)
            connection.execute("COMMIT")  # an exception skips it: closing rolls back
            for table in tables:
                self._mirror(connection, table)

    @contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the DuckDB file, the schema in place."""
        with _WRITING:
            connection = self._open_for_writing()
            try:
                yield connection
            finally:
                connection.close()

    def _open_for_writing(self) -> duckdb.DuckDBPyConnection:
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
        if self.postgres is None and self.path.resolve() not in _PREPARED:
            try:
                _migrate_feature_metadata(connection)
                for table in TABLES.values():
                    connection.execute(table.ddl())
                # columns added since a table was first made (catalogs of older versions)
                connection.execute(
                    "ALTER TABLE sim_runs ADD COLUMN IF NOT EXISTS mlflow_run_id VARCHAR"
                )
                for name in TABLES:
                    self._mirror(connection, name)
            except BaseException:
                connection.close()
                raise
            _PREPARED.add(self.path.resolve())
        return connection

    def _mirror(self, connection: duckdb.DuckDBPyConnection, table: str) -> None:
        """Copy a committed table to its Parquet mirror, atomically."""
        self.mirror_dir.mkdir(parents=True, exist_ok=True)
        target = self.mirror_dir / f"{table}.parquet"
        temporary = self.mirror_dir / f".{table}.{uuid.uuid4().hex}.tmp"
        try:
            escaped = str(temporary).replace("'", "''")
            connection.execute(
                f"COPY (SELECT * FROM {table}) TO '{escaped}' (FORMAT parquet, COMPRESSION zstd)"
            )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def refresh_views(self) -> None:
        """Create the views over the lake that are missing or out of date (a new dataset,
        a moved home). A view of fixed columns whose definition is unchanged is left alone,
        so an ingest does not re-read every file's schema (views of every column, whose
        files may gain columns, are always made again). A view that cannot be built
        because a file is unreadable gets that file quarantined and is built again; a view
        that still fails is logged and skipped: a bad file never fails the write that
        called this."""
        wanted = {view: self._view_sql(view) for view in LAKE_VIEWS}
        with self._duckdb() as connection:
            current = dict(connection.execute(
                "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
            ).fetchall())  # fmt: skip
            for view, select in wanted.items():
                digest = hashlib.sha256((select or "").encode()).hexdigest()[:16]
                fixed = LAKE_VIEWS[view][1] is not None
                if fixed and current.get(view, "absent") == (digest if select else "absent"):
                    continue
                if select is None:
                    connection.execute(f"DROP VIEW IF EXISTS {view}")
                    continue
                self._create_view(connection, view, select, digest)

    def _view_sql(self, view: str) -> str | None:
        dataset, columns, where = LAKE_VIEWS[view]
        select = lake_select(self.lake, dataset, columns)
        if select is not None and where:
            names = ", ".join(name for name in columns if name != "interval")
            select = f"SELECT {names} FROM ({select}) WHERE {where}"
        return select

    def _create_view(self, connection, view: str, select: str, digest: str) -> None:
        for attempt in range(2):
            try:
                connection.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")
                connection.execute(f"COMMENT ON VIEW {view} IS '{digest}'")
                return
            except duckdb.Error as error:
                bad = self.lake.unreadable(LAKE_VIEWS[view][0]) if attempt == 0 else []
                if not bad:
                    log.error(f"view {view} not refreshed: {str(error).splitlines()[0]}",
                              extra={"stage": "catalog"})  # fmt: skip
                    return
                for corrupt in bad:
                    self.lake.quarantine(corrupt)

    def upsert_ingest_status(self, rows: pd.DataFrame) -> None:
        """Record per (symbol, date) outcomes; a row whose outcome did not change keeps its
        `updated_at`, so a re-run changes nothing that was already right."""
        if rows.empty:
            return
        names = ", ".join(TABLES["ingest_status"].column_names)
        with self.writing("ingest_status") as session:
            session.load(rows[TABLES["ingest_status"].column_names], like="ingest_status")
            session.execute(
                f"""
                INSERT INTO ingest_status ({names}) SELECT {names} FROM incoming
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

    def record_features(self, symbol: str, rows: list[dict], fold_keys: list[str],
                        days: list) -> None:  # fmt: skip
        """Register each feature definition once (name, version, parameters and code hash,
        with the git revision and time it was first built: a new row marks a change), and
        note that `symbol` has features labelled with these fold configurations."""
        frame = pd.DataFrame(rows).assign(
            git_revision=git_revision(), created_at=pd.Timestamp.now(tz="UTC")
        )
        names = ", ".join(frame.columns)
        with self.writing(FEATURE_METADATA.name, FEATURE_FOLDS.name) as session:
            session.load(frame, like=FEATURE_METADATA.name)
            session.execute(
                f"INSERT INTO feature_metadata ({names}) SELECT {names} FROM incoming "
                "ON CONFLICT DO NOTHING"
            )
            for key in fold_keys:
                session.execute(
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
        names = ", ".join(rows.columns)
        with self.writing("sim_runs") as session:
            session.load(rows, like="sim_runs")
            session.execute(
                "DELETE FROM sim_runs WHERE grid_id IN (SELECT DISTINCT grid_id FROM incoming)"
            )
            session.execute(f"INSERT INTO sim_runs ({names}) SELECT {names} FROM incoming")

    def upsert(self, table: str, rows: pd.DataFrame) -> None:
        """Insert rows, replacing those with the same primary key (one transaction); a
        column the rows lack is NULL."""
        if rows.empty:
            return
        definition = TABLES[table]
        names = ", ".join(definition.column_names)
        updates = ", ".join(
            f"{name} = excluded.{name}"
            for name in definition.column_names
            if name not in definition.primary_key
        )
        with self.writing(table) as session:
            session.load(rows.reindex(columns=definition.column_names), like=table)
            session.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming "
                f"ON CONFLICT ({', '.join(definition.primary_key)}) DO UPDATE SET {updates}"
            )

    # --- reads: never the catalog file ------------------------------------------------

    def read(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a query (DuckDB SQL) over the tables it names, on a cursor of this
        process's in-memory DuckDB: its views are the cursor's own, and opening one costs
        microseconds where a new database costs tens of milliseconds. The tables are the
        Parquet mirrors (an empty table where none is written yet) or, on PostgreSQL, the
        tables of one snapshot. A result is kept until one of those tables changes, so a
        repeated read costs a stat (or one small query on PostgreSQL)."""
        named = set(re.findall(r"[a-z_]+", sql.lower()))
        names = [name for name in TABLES if name in named]
        if self.postgres is None:
            versions = {name: self.version(name) for name in names}
            return self._run(sql, params, versions, self._mirror_relation)
        with self.postgres.snapshot() as snapshot:
            return self._run(
                sql, params, snapshot.versions(names),
                lambda connection, name: connection.register(name, snapshot.table(name)),
            )  # fmt: skip

    def _run(self, sql: str, params, versions: dict, relation) -> pd.DataFrame:
        """The query's result, kept by its text, parameters and the versions of its
        tables; `relation(connection, name)` makes a table visible to it."""
        where = self.postgres.url if self.postgres is not None else str(self.mirror_dir)
        key = (sql, repr(params), where, *versions.items())
        with _RESULTS_LOCK:
            cached = _RESULTS.get(key)
        if cached is not None:
            return cached.copy()
        with _reader().cursor() as connection:
            for name in versions:
                relation(connection, name)
            result = connection.execute(sql, params or []).df()
        with _RESULTS_LOCK:
            _RESULTS[key] = result
            while len(_RESULTS) > RESULTS_KEPT:
                _RESULTS.pop(next(iter(_RESULTS)))
        return result.copy()

    def _mirror_relation(self, connection: duckdb.DuckDBPyConnection, name: str) -> None:
        mirror = self.mirror_dir / f"{name}.parquet"
        if mirror.is_file():
            escaped = str(mirror).replace("'", "''")
            connection.execute(
                f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet('{escaped}')"
            )
        else:
            ddl = TABLES[name].ddl()
            connection.execute(ddl.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))

    def version(self, table: str) -> tuple[int, int, int] | int | None:
        """What changes whenever a write to `table` commits (None before the first)."""
        if self.postgres is not None:
            with self.postgres.snapshot() as snapshot:
                return snapshot.versions([table]).get(table)
        return _signature(self.mirror_dir / f"{table}.parquet")

    def ingest_status(self, symbol: str | None = None) -> pd.DataFrame:
        query, params = "SELECT * FROM ingest_status", []
        if symbol:
            query += " WHERE symbol = ?"
            params.append(symbol)
        return self.read(query + " ORDER BY symbol, date", params)

    def feature_folds(self) -> pd.DataFrame:
        return self.read("SELECT * FROM feature_folds ORDER BY fold_config, symbol")

    def leaderboard(self, metric: str, symbol: str | None = None, limit: int = 20) -> pd.DataFrame:
        sql, params = leaderboard_sql(metric, symbol, limit)
        return self.read(sql, params)
