"""Partitions shared by the lake assets: a dynamic `symbol` dimension x XNYS trading days.

The date dimension has one key per XNYS session (weekends and exchange holidays are
excluded) from STOCK_ASSETS_FIRST_DAY (default 2016-01-04) to today. Dagster advises at
most ~100,000 partitions per asset: tens of symbols over ten years fit; hundreds of
symbols call for a later first day.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict

import dagster as dg
import pandas as pd

from stock_assets.core import calendar

FIRST_DAY = dt.date.fromisoformat(os.environ.get("STOCK_ASSETS_FIRST_DAY", "2016-01-04"))


def _holidays() -> list[dt.datetime]:
    sessions = set(calendar.sessions(FIRST_DAY, calendar.last_day()))
    weekdays = pd.bdate_range(FIRST_DAY, calendar.last_day()).date
    return [dt.datetime(d.year, d.month, d.day) for d in weekdays if d not in sessions]


symbols_partitions = dg.DynamicPartitionsDefinition(name="symbols")
trading_days_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=FIRST_DAY.isoformat(),
    fmt="%Y-%m-%d",
    timezone=calendar.EXCHANGE_TZ,
    end_offset=1,
    exclusions=_holidays(),
)
bars_partitions = dg.MultiPartitionsDefinition(
    {"date": trading_days_partitions, "symbol": symbols_partitions}
)


def partition_key(symbol: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "symbol": symbol})


def days_by_symbol(keys: list[str]) -> dict[str, list[dt.date]]:
    """Partition keys `2024-01-02|SPY` grouped as {symbol: [days, oldest first]}."""
    grouped: dict[str, list[dt.date]] = defaultdict(list)
    for key in keys:
        day, symbol = str(key).split("|")
        grouped[symbol].append(dt.date.fromisoformat(day))
    return {symbol: sorted(days) for symbol, days in sorted(grouped.items())}


def range_tags(symbol: str, start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags that make one run over one symbol's days from start to end."""
    return {
        "dagster/asset_partition_range_start": f"{start.isoformat()}|{symbol}",
        "dagster/asset_partition_range_end": f"{end.isoformat()}|{symbol}",
    }
