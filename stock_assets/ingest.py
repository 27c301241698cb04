"""Ingesting one symbol over a set of days: fetch through the provider chain, persist,
record the outcome of each day. The bars_1m asset and the benchmark call this."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime

import pandas as pd

from stock_assets.logs import get_logger, log_event
from stock_assets.resources.market_data import DayOutcome, MarketDataResource, day_outcomes
from stock_assets.resources.warehouse import StoredDay, WarehouseResource

log = get_logger(__name__)


def ingest_symbol(
    symbol: str,
    days: list[dt.date],
    market_data: MarketDataResource,
    warehouse: WarehouseResource,
    *,
    providers: str | None = None,
    refetch: bool = False,
) -> list[tuple[DayOutcome, StoredDay | None]]:
    """Fetch the days that are not complete yet (all of them with `refetch`), merge them
    into the lake and record each day's status in `ingest_status`.

    Days already complete are left untouched and reported `ok` with `written=False`.
    """
    complete = set() if refetch else warehouse.complete_days(symbol, days)
    wanted = [day for day in days if day not in complete]
    results: list[tuple[DayOutcome, StoredDay | None]] = [
        (DayOutcome(day, "ok", None, "already complete"), None) for day in sorted(complete)
    ]
    if not wanted:
        return results
    fetched = market_data.fetch(symbol, wanted, providers)
    stored = warehouse.store_bars(symbol, fetched.bars, wanted)
    if fetched.dropped:
        log_event(log, "validate", "invalid rows dropped", symbol=symbol, **fetched.dropped)
    outcomes = day_outcomes(
        fetched,
        symbol,
        {s.day: s.rows for s in stored},
        {s.day: s.missing_minutes + s.filled_minutes for s in stored},
    )
    now = datetime.now(UTC)
    status_rows = pd.DataFrame(
        {
            "symbol": symbol,
            "date": [o.day for o in outcomes],
            "status": [o.status for o in outcomes],
            "provider": [o.provider for o in outcomes],
            "rows": [s.rows for s in stored],
            "missing_minutes": [s.missing_minutes + s.filled_minutes for s in stored],
            "message": [o.message for o in outcomes],
            "updated_at": now,
        }
    )
    warehouse.catalog.upsert_ingest_status(status_rows)
    results += list(zip(outcomes, stored, strict=True))
    return sorted(results, key=lambda pair: pair[0].day)
