"""Filling gaps: missing session minutes made up from neighbouring bars, flagged
`is_filled`, so they are never passed off as trades. The gap-fill job and the CLI's
backfill call this."""

from __future__ import annotations

import datetime as dt

from stock_assets.core import bars as core_bars
from stock_assets.storage.warehouse import StoredDay, Warehouse


def fill_symbol_gaps(
    warehouse: Warehouse, symbol: str, first: dt.date, last: dt.date, max_iterations: int
) -> tuple[list[StoredDay], int]:
    """Fill the stored days of one symbol between first and last, re-derive the changed
    days; returns each day's StoredDay and the number of minutes filled."""
    days = [d for d in warehouse.bar_days(symbol) if first <= d <= last]
    stored = warehouse.read_bars(symbol, days)
    filled = core_bars.fill_gaps(stored, days, max_iterations)
    new = filled.loc[filled["is_filled"] & ~filled["ts"].isin(stored["ts"])]
    results = warehouse.store_bars(symbol, new, days)
    warehouse.store_derived(symbol, [r.day for r in results if r.written])
    return results, len(new)
