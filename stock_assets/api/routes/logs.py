"""Operations: the central log store (every process's JSON log lines, the `logs` table),
filtered by symbol, stage, time, level and run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from stock_assets import settings
from stock_assets.api import common
from stock_assets.api.common import Limit, Offset
from stock_assets.api.errors import responses
from stock_assets.storage.logstore import LEVELS, LogQuery, parse_since, read_logs

router = APIRouter(tags=["operations"], responses=responses(422))
SINCE = "30m, 1h, 2d, 1w ago, or an ISO 8601 time (UTC when it names no zone)."
Level = Literal[tuple(LEVELS)]  # type: ignore[valid-type]


class LogEntry(BaseModel):
    ts: str = Field(description="When it was logged, ISO 8601 UTC.")
    level: str
    logger: str | None
    message: str | None
    run_id: str | None = Field(description="The Dagster run (or MLflow run) it belongs to.")
    asset: str | None
    symbol: str | None
    stage: str | None = Field(description="fetch, validate, persist, train, evolve...")
    fields: dict[str, Any] = Field(description="The line's other fields: counts, error...")


class LogsPage(BaseModel):
    limit: int
    offset: int
    order: str
    lines: list[LogEntry]


@router.get("/logs")
def logs(
    symbol: Annotated[str | None, Query(json_schema_extra=common.SYMBOL_SCHEMA)] = None,
    stage: Annotated[str | None, Query(max_length=64, description="Only this stage.")] = None,
    since: Annotated[str | None, Query(max_length=64, description=SINCE)] = None,
    level: Annotated[Level, Query(description="This level and above.")] = "INFO",
    run_id: Annotated[str | None, Query(max_length=128, description="Only this run.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    order: Annotated[Literal["desc", "asc"], Query(description="desc: newest first.")] = "desc",
) -> LogsPage:
    """Log lines of every process (CLI, API, Dagster runs and daemon), secrets masked."""
    query = LogQuery(
        symbol=symbol, stage=stage, since=parse_since(since) if since else None, level=level,
        run_id=run_id, limit=limit, offset=offset, order=order,
    )  # fmt: skip
    found = read_logs(settings.home(), query)
    lines = [LogEntry(**{**line.to_json(), "fields": _plain(line.fields)}) for line in found]
    return LogsPage(limit=limit, offset=offset, order=order, lines=lines)


def _plain(value: object) -> Any:
    """JSON-safe: a logged NaN or infinity (which JSON lacks) as common.json_value has it."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return common.json_value(value)
