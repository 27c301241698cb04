"""Symbols (the Dagster partitions), bars, gaps and ingest outcomes: reads of the lake and
the catalog's mirrors, and the partition list of the instance."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from stock_assets.api import common
from stock_assets.api.common import Day, Limit, Mutating, Offset, Symbol
from stock_assets.api.errors import NotFound, responses
from stock_assets.api.schemas import (
    Bars,
    GapDay,
    Gaps,
    IngestStatusPage,
    IngestStatusRow,
    SymbolChange,
    SymbolEntry,
    SymbolsPage,
)
from stock_assets.core.intervals import INTERVALS
from stock_assets.core.symbols import normalize_symbol

router = APIRouter(responses=responses(422))
Interval = Literal[tuple(INTERVALS)]  # type: ignore[valid-type]
MAX_BARS = 10_000


@router.get("/symbols", tags=["data"])
def list_symbols(limit: Limit = 100, offset: Offset = 0) -> SymbolsPage:
    """The `symbols` partitions; a key added elsewhere that is no symbol is flagged."""
    from stock_assets.core.symbols import InvalidSymbol, check_symbol_key

    keys = sorted(common.instance().get_dynamic_partitions("symbols"))
    entries = []
    for key in common.page(keys, limit, offset):
        try:
            entries.append(SymbolEntry(symbol=check_symbol_key(key), valid=True))
        except InvalidSymbol as error:
            entries.append(SymbolEntry(symbol=key, valid=False, error=str(error)))
    return SymbolsPage(total=len(keys), limit=limit, offset=offset, symbols=entries)


@router.post("/symbols/{symbol:path}", tags=["data"], dependencies=Mutating,
             responses=responses(401))  # fmt: skip
def add_symbol(symbol: Symbol) -> SymbolChange:
    """Add a symbol to the `symbols` partitions (nothing changes when it is there)."""
    symbol = normalize_symbol(symbol)
    instance = common.instance()
    new = symbol not in instance.get_dynamic_partitions("symbols")
    if new:
        instance.add_dynamic_partitions("symbols", [symbol])
    return SymbolChange(symbol=symbol, changed=new)


@router.delete("/symbols/{symbol:path}", tags=["data"], dependencies=Mutating,
               responses=responses(401, 404))  # fmt: skip
def remove_symbol(symbol: Symbol) -> SymbolChange:
    """Remove a symbol from the partitions; its stored bars stay in the lake. A key stored
    as typed (an invalid one added in the UI) is removed as typed, as the CLI does."""
    instance = common.instance()
    known = set(instance.get_dynamic_partitions("symbols"))
    key = symbol if symbol in known else normalize_symbol(symbol)
    if key not in known:
        raise NotFound(f"{key} is not a symbol partition (GET /symbols)")
    instance.delete_dynamic_partition("symbols", key)
    return SymbolChange(symbol=key, changed=True)


@router.get("/bars/{symbol:path}", tags=["data"], responses=responses(404))
def bars(
    symbol: Symbol,
    interval: Interval = "1m",
    limit: Annotated[int, Query(ge=1, le=MAX_BARS, description="Newest N bars.")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Skip the newest N.")] = 0,
    start: Day = None,
    end: Day = None,
) -> Bars:
    """The newest stored bars of a symbol (between start and end when given), oldest
    first; `offset` pages back in time."""
    symbol = normalize_symbol(symbol)
    first, last = _range(start, end)
    store = common.warehouse()
    if first is None and last is None:
        table = store.latest_bars(symbol, interval, limit + offset)
    else:
        table = _bars_between(store, symbol, interval, first, last, limit + offset)
    if table is None or table.num_rows <= offset:
        raise NotFound(f"no {interval} bars stored for {symbol}" + _between(start, end))
    table = table.slice(0, table.num_rows - offset)
    rows = common.records(table.slice(max(0, table.num_rows - limit)))
    return Bars(symbol=symbol, interval=interval, count=len(rows), bars=rows)


def _range(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    from stock_assets.core import calendar

    first = calendar.parse_date(start) if start else None
    last = calendar.parse_date(end) if end else None
    if first and last:
        calendar.parse_range(first, last)
    return first, last


def _between(start: str | None, end: str | None) -> str:
    return f" between {start or 'the first day'} and {end or 'the last'}" if start or end else ""


def _bars_between(store, symbol: str, interval: str, first, last, count: int):
    """The newest `count` bars of the stored days from first to last (either open), read
    from the newest day back, oldest first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from stock_assets.storage.lake import BARS_1M, BARS_DERIVED

    dataset = BARS_1M if interval == "1m" else BARS_DERIVED
    days = [d for d in store.lake.days(dataset, symbol)
            if (first is None or d >= first) and (last is None or d <= last)]  # fmt: skip
    parts, rows = [], 0
    for day in reversed(days):
        part = store.lake.read_table(dataset, symbol, day)
        if interval != "1m":
            part = part.filter(pc.equal(part["interval"], interval)).drop_columns(["interval"])
        parts.append(part)
        rows += part.num_rows
        if rows >= count:
            break
    if not rows:
        return None
    table = pa.concat_tables(parts[::-1])
    return table.slice(max(0, table.num_rows - count))


@router.get("/gaps/{symbol:path}", tags=["data"], responses=responses(404))
def gaps(symbol: Symbol, start: Day = None, end: Day = None, limit: Limit = 100,
         offset: Offset = 0) -> Gaps:  # fmt: skip
    """Sessions with missing or filled minutes, or not stored, between start and end
    (default: the stored days), as `stock-assets gaps`."""
    symbol = normalize_symbol(symbol)
    store = common.warehouse()
    stored_days = store.bar_days(symbol)
    if not stored_days:
        raise NotFound(f"no bars stored for {symbol}")
    report = gap_report(store, symbol, start or stored_days[0], end or stored_days[-1])
    days = report.pop("days")
    return Gaps(**report, total=len(days), limit=limit, offset=offset,
                days=common.page(days, limit, offset))  # fmt: skip


def gap_report(store, symbol: str, start, end) -> dict:
    """Missing and filled minutes per session of a symbol from start to end, and totals."""
    from stock_assets.core import calendar
    from stock_assets.pipelines.gaps import gap_report as report

    first, last = calendar.parse_range(start, end)
    days = calendar.sessions(first, last)
    rows, missing, filled = report(store, symbol, days)
    return {"symbol": symbol, "start": first.isoformat(), "end": last.isoformat(),
            "sessions": len(days), "missing_minutes": missing, "filled_minutes": filled,
            "days": [GapDay(**row) for row in rows]}  # fmt: skip


@router.get("/ingest-status/{symbol:path}", tags=["data"], responses=responses(404))
def ingest_status(symbol: Symbol, start: Day = None, end: Day = None, limit: Limit = 100,
                  offset: Offset = 0) -> IngestStatusPage:  # fmt: skip
    """Each stored day's ingest outcome (ok, partial, empty, failed), oldest first."""
    symbol = normalize_symbol(symbol)
    first, last = _range(start, end)
    status = common.warehouse().catalog.ingest_status(symbol)
    if status.empty:
        raise NotFound(f"no ingest recorded for {symbol}")
    days = status["date"].dt.date
    status = status[(days >= (first or dt.date.min)) & (days <= (last or dt.date.max))]
    status = status.assign(date=status["date"].dt.date)
    rows = [IngestStatusRow(**row) for row in common.records(status)]
    return IngestStatusPage(symbol=symbol, total=len(rows), limit=limit, offset=offset,
                            days=common.page(rows, limit, offset))  # fmt: skip
