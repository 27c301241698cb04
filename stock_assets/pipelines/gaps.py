"""Gaps: the report of missing and filled minutes per session (the CLI's `gaps`, the API's
`/gaps`), and filling them: missing session minutes made up from neighbouring bars,
flagged `is_filled`, so they are never passed off as trades (the gap-fill job and the
CLI's backfill)."""

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


def gap_report(
    warehouse: Warehouse, symbol: str, days: list[dt.date]
) -> tuple[list[dict], int, int]:
    """The sessions among `days` with missing or filled minutes or no stored bars (date,
    missing_minutes, filled_minutes, stored), and the totals of missing and filled minutes."""
    import pandas as pd

    stored = set(warehouse.bar_days(symbol))
    bars = warehouse.read_bars(symbol, days)
    missing = core_bars.missing_by_day(bars, days)
    filled = pd.Series(bars["is_filled"].to_numpy()).groupby(core_bars.bar_days(bars["ts"])).sum()
    rows = [
        {"date": day.isoformat(), "missing_minutes": int(missing[day]),
         "filled_minutes": int(filled.get(day, 0)), "stored": day in stored}
        for day in days
        if missing[day] or filled.get(day, 0) or day not in stored
    ]  # fmt: skip
    return rows, int(sum(missing.values())), int(filled.sum())
