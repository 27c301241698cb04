"""The catalog's tables in PostgreSQL, for a deployment whose workers run on several
processes or machines (`STOCK_ASSETS_CATALOG_URL=postgresql://...`).

The tables are those of `core.tables`, their DDL rendered for PostgreSQL. Writes are
PostgreSQL transactions, so concurrent writers from any number of processes lose nothing
and need no file lock. Each write also bumps the version of the tables it touched (the
`catalog_versions` row, in the same transaction): readers load a table only when its
version moved, as an Arrow table typed from its definition, and run the catalog's DuckDB
SQL over it, so a query answers the same on either backend.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa

from stock_assets.core.tables import TABLES, Column, Table
from stock_assets.logs import redact

VERSIONS = Table(
    "catalog_versions",
    (Column("name", "VARCHAR"), Column("version", "BIGINT", not_null=True)),
    ("name",),
)
ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}
_SCHEMA_LOCK = 7_210_341  # pg_advisory_xact_lock key: one process creates the schema at a time
MAX_CONNECTIONS = 16
_POOLS: dict[tuple[str, int], object] = {}
_POOLS_LOCK = threading.Lock()
_PREPARED: set[str] = set()
_LOADED: dict[tuple[str, str], tuple[int, pa.Table]] = {}  # (url, table) -> (version, rows)


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0] in ("postgresql", "postgres")


def _plain(value):
    """A value psycopg2 can send: numpy scalars and pandas timestamps as Python's own."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


class Session:
    """One write transaction: `execute` takes the catalog's SQL (`?` placeholders) and
    `load` makes rows available as the relation `incoming`, shaped like a table."""

    def __init__(self, cursor):
        self.cursor = cursor

    def execute(self, sql: str, params: list | None = None) -> None:
        self.cursor.execute(sql.replace("?", "%s"), params or None)

    def load(self, frame: pd.DataFrame, like: str) -> None:
        from psycopg2.extras import execute_values

        self.cursor.execute(f"CREATE TEMP TABLE incoming (LIKE {like}) ON COMMIT DROP")
        values = frame.astype(object).where(frame.notna(), None)
        rows = [tuple(map(_plain, row)) for row in values.itertuples(index=False, name=None)]
        names = ", ".join(frame.columns)
        execute_values(self.cursor, f"INSERT INTO incoming ({names}) VALUES %s", rows)


class PostgresTables:
    """The catalog tables in the database at `url`."""

    def __init__(self, url: str):
        self.url = url

    @contextmanager
    def _connection(self) -> Iterator:
        import psycopg2
        from psycopg2.pool import ThreadedConnectionPool

        key = (self.url, os.getpid())  # a forked worker opens its own connections
        with _POOLS_LOCK:
            if key not in _POOLS:
                _POOLS[key] = ThreadedConnectionPool(
                    0, MAX_CONNECTIONS, self.url,
                    options="-c TimeZone=UTC", application_name="stock-assets",
                )  # fmt: skip
            pool = _POOLS[key]
        try:
            connection = pool.getconn()
        except psycopg2.Error as error:
            raise ConnectionError(
                f"catalog database {redact(self.url)} unreachable: "
                f"{str(error).strip().splitlines()[0]}"
            ) from None
        try:
            yield connection
        except BaseException:
            if not connection.closed:
                connection.rollback()
            raise
        finally:
            pool.putconn(connection, close=bool(connection.closed))

    def _prepare(self, cursor) -> None:
        """The schema, once per process (creation serialized across processes)."""
        if self.url in _PREPARED:
            return
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
        for table in (*TABLES.values(), VERSIONS):
            cursor.execute(table.ddl("postgresql"))
        cursor.connection.commit()
        _PREPARED.add(self.url)

    @contextmanager
    def writing(self, *tables: str) -> Iterator[Session]:
        """A transaction that commits when the block ends, with the versions of `tables`
        bumped in it."""
        with self._connection() as connection, connection.cursor() as cursor:
            self._prepare(cursor)
            yield Session(cursor)
            for name in sorted(tables):  # one order, so concurrent writers never deadlock
                cursor.execute(
                    "INSERT INTO catalog_versions VALUES (%s, 1) ON CONFLICT (name) "
                    "DO UPDATE SET version = catalog_versions.version + 1",
                    [name],
                )
            connection.commit()

    @contextmanager
    def snapshot(self) -> Iterator[PostgresSnapshot]:
        """A read-only, repeatable-read view: versions and rows of one moment."""
        with self._connection() as connection, connection.cursor() as cursor:
            self._prepare(cursor)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                yield PostgresSnapshot(cursor, self.url)
            finally:
                connection.rollback()


class PostgresSnapshot:
    def __init__(self, cursor, url: str):
        self.cursor = cursor
        self.url = url
        self.seen: dict[str, int | None] = {}

    def versions(self, names: list[str]) -> dict[str, int | None]:
        """Each table's version in this snapshot (None: never written)."""
        self.cursor.execute(
            "SELECT name, version FROM catalog_versions WHERE name = ANY(%s)", [list(names)]
        )
        found = dict(self.cursor.fetchall())
        self.seen.update({name: found.get(name) for name in names})
        return {name: found.get(name) for name in names}

    def table(self, name: str) -> pa.Table:
        """A whole table, typed as its definition says (as its DuckDB mirror would be);
        loaded again only when its version moved since this process last loaded it."""
        key, version = (self.url, name), self.seen.get(name)
        kept = _LOADED.get(key)
        if kept is not None and version is not None and kept[0] == version:
            return kept[1]
        table = TABLES[name]
        self.cursor.execute(f"SELECT {', '.join(table.column_names)} FROM {name}")
        rows = self.cursor.fetchall()
        loaded = pa.table({
            column.name: pa.array([row[i] for row in rows], type=ARROW_TYPES[column.type])
            for i, column in enumerate(table.columns)
        })  # fmt: skip
        if version is not None:
            _LOADED[key] = (version, loaded)
        return loaded
