"""Throw-away PostgreSQL databases on a local server, for tests and benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

SERVER = "postgresql://postgres@127.0.0.1:5432"


def reachable(server: str = SERVER) -> str | None:
    """None when the server answers, else why not (one line)."""
    import psycopg2

    try:
        psycopg2.connect(f"{server}/postgres", connect_timeout=3).close()
    except psycopg2.OperationalError as error:
        return str(error).strip().splitlines()[0]
    return None


@contextmanager
def temporary_database(prefix: str = "stock_assets_test", server: str = SERVER) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards (connections and all)."""
    import psycopg2

    admin = psycopg2.connect(f"{server}/postgres", connect_timeout=3)
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield f"{server}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
