"""The `logs` table: every process's log segments (`<home>/logs/date=*/*.jsonl`, written
by stock_assets.logs) read by DuckDB as one relation, filtered with bound parameters.

A half-written last line (a process killed mid-write) and any line that is not a log
record are skipped. Columns: ts (TIMESTAMPTZ), level, logger, message, run_id, asset,
symbol, stage, and `fields`, the line's other keys as JSON (counts, provider, error...).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import normalize_symbol
from stock_assets.logs import DAY_PREFIX, SEGMENT_SUFFIX, logs_dir, segment_day

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
COLUMNS = ("ts", "level", "logger", "message", "run_id", "asset", "symbol", "stage")
_FIXED_KEYS = ("timestamp", "level", "logger", "message", "run_id", "asset", "symbol", "stage")
_AGO = re.compile(r"([0-9]{1,6})([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_STAGE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_RUN_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_SELECT = """
WITH lines AS (
    SELECT TRY_CAST(line->>'timestamp' AS TIMESTAMPTZ) AS ts, line->>'level' AS level,
           line->>'logger' AS logger, line->>'message' AS message,
           line->>'run_id' AS run_id, line->>'asset' AS asset,
           line->>'symbol' AS symbol, line->>'stage' AS stage,
           json_merge_patch(line, ?::JSON) AS fields
    FROM read_json(?, format = 'newline_delimited', records = false,
                   columns = {'line': 'JSON'}, ignore_errors = true)
)
SELECT * FROM lines
WHERE ts IS NOT NULL AND level IS NOT NULL
  AND (?::VARCHAR IS NULL OR symbol = ?) AND (?::VARCHAR IS NULL OR stage = ?)
  AND (?::VARCHAR IS NULL OR run_id = ?) AND (?::TIMESTAMPTZ IS NULL OR ts >= ?)
  AND list_contains(?::VARCHAR[], level)
"""


@dataclass(frozen=True)
class LogLine:
    """One record of the `logs` table."""

    ts: dt.datetime
    level: str
    logger: str | None
    message: str | None
    run_id: str | None = None
    asset: str | None = None
    symbol: str | None = None
    stage: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As JSON: the time in ISO 8601 UTC, the other fields as they are."""
        return {**{name: getattr(self, name) for name in COLUMNS},
                "ts": self.ts.astimezone(dt.UTC).isoformat(), "fields": self.fields}  # fmt: skip


@dataclass(frozen=True)
class LogQuery:
    """What to read; every value is checked here (UsageError) and bound, never formatted."""

    symbol: str | None = None
    stage: str | None = None
    since: dt.datetime | None = None
    level: str = "DEBUG"
    run_id: str | None = None
    limit: int = 100
    offset: int = 0
    order: Literal["desc", "asc"] = "desc"

    def __post_init__(self) -> None:
        if self.symbol is not None:
            object.__setattr__(self, "symbol", normalize_symbol(self.symbol))
        if self.stage is not None and not _STAGE.fullmatch(self.stage):
            raise UsageError(f"stage {self.stage!r}: 1-64 of A-Z a-z 0-9 _ . -")
        if self.run_id is not None and not _RUN_ID.fullmatch(self.run_id):
            raise UsageError(f"run id {self.run_id!r}: 1-128 of A-Z a-z 0-9 _ . : -")
        level = self.level.upper() if isinstance(self.level, str) else self.level
        if level not in LEVELS:
            raise UsageError(f"level {self.level!r}: one of {', '.join(LEVELS)}")
        object.__setattr__(self, "level", level)
        if self.since is not None and self.since.tzinfo is None:
            raise UsageError(f"since {self.since.isoformat()}: give a time zone, e.g. +00:00")
        if not 1 <= self.limit <= 100_000 or self.offset < 0:
            raise UsageError(f"limit {self.limit}, offset {self.offset}: 1..100000 and >= 0")
        if self.order not in ("desc", "asc"):
            raise UsageError(f"order {self.order!r}: desc (newest first) or asc")


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`30m`, `1h`, `2d`, `1w` (s m h d w, ago from now) or an ISO 8601 time (UTC when it
    names no zone), as an aware UTC time; UsageError otherwise."""
    now = now or dt.datetime.now(dt.UTC)
    raw = text.strip()
    try:
        if match := _AGO.fullmatch(raw):
            return now - dt.timedelta(seconds=int(match[1]) * _SECONDS[match[2]])
        when = dt.datetime.fromisoformat(raw)
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not a time, or one before year 1
        raise UsageError(
            f"since {text!r}: a duration ago such as 30m, 1h, 2d, 1w, or an ISO time such as "
            "2024-02-20T14:30:00+00:00"
        ) from None


def segments(home: Path, since: dt.datetime | None = None) -> list[Path]:
    """The segment files of a home, oldest day first; with `since`, only the days that
    can hold lines at or after it."""
    first = since.astimezone(dt.UTC).date() if since else None
    found = []
    for folder in sorted(logs_dir(home).glob(f"{DAY_PREFIX}*")):
        day = segment_day(folder)
        if day is not None and (first is None or day >= first):
            found.extend(sorted(folder.glob(f"*{SEGMENT_SUFFIX}")))
    return found


def read_logs(home: Path, query: LogQuery | None = None) -> list[LogLine]:
    """The lines of the `logs` table that match, newest first (or oldest with
    order="asc"), at most query.limit after query.offset."""
    import duckdb

    query = query or LogQuery()
    files = []
    for path in segments(home, query.since):
        try:
            if path.stat().st_size:  # a segment is created with its first line; skip none
                files.append(str(path))
        except FileNotFoundError:  # deleted by another process's retention meanwhile
            continue
    if not files:
        return []
    levels = [name for name, number in LEVELS.items() if number >= LEVELS[query.level]]
    direction = "DESC" if query.order == "desc" else "ASC"
    sql = f"{_SELECT} ORDER BY ts {direction} LIMIT ? OFFSET ?"
    params = [json.dumps(dict.fromkeys(_FIXED_KEYS)), files,
              query.symbol, query.symbol, query.stage, query.stage,
              query.run_id, query.run_id, query.since, query.since,
              levels, query.limit, query.offset]  # fmt: skip
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        rows = connection.execute(sql, params).fetchall()
    return [LogLine(*row[:-1], fields=json.loads(row[-1]) if row[-1] else {}) for row in rows]
