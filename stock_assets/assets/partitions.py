"""Partitions shared by the lake assets: a dynamic `symbol` dimension x XNYS trading days.

The date dimension has one key per XNYS session (weekends and exchange holidays are
excluded) from STOCK_ASSETS_FIRST_DAY (default 2016-01-04) to today. Dagster advises at
most ~100,000 partitions per asset: tens of symbols over ten years fit; hundreds of
symbols call for a later first day.

The holidays come from the exchange calendar, which is slow to load; every process that
loads the definitions (each run and step subprocess) reads them from a small cache under
STOCK_ASSETS_HOME instead, rebuilt once a day and whenever exchange_calendars changes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from importlib.metadata import version

import dagster as dg

from stock_assets import settings
from stock_assets.core.symbols import check_symbol_key

FIRST_DAY = settings.first_partition_day()
EXCHANGE_TZ = "America/New_York"


def xnys_holidays(first: dt.date) -> list[str]:
    """The weekdays from `first` to the calendar's last day that are not XNYS sessions."""
    cache = settings.home() / "cache" / f"xnys-holidays-{first}.json"
    key = {
        "exchange_calendars": version("exchange_calendars"),
        "built": dt.date.today().isoformat(),
    }
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return cached["holidays"]
    except (OSError, ValueError, KeyError):
        pass
    import pandas as pd

    from stock_assets.core import calendar

    sessions = set(calendar.sessions(first, calendar.last_day()))
    weekdays = pd.bdate_range(first, calendar.last_day()).date
    holidays = [d.isoformat() for d in weekdays if d not in sessions]
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"key": key, "holidays": holidays}))
    os.replace(temporary, cache)
    return holidays


symbols_partitions = dg.DynamicPartitionsDefinition(name="symbols")
trading_days_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=FIRST_DAY.isoformat(),
    fmt="%Y-%m-%d",
    timezone=EXCHANGE_TZ,
    end_offset=1,
    exclusions=[dt.datetime.fromisoformat(day) for day in xnys_holidays(FIRST_DAY)],
)
bars_partitions = dg.MultiPartitionsDefinition(
    {"date": trading_days_partitions, "symbol": symbols_partitions}
)


def partition_key(symbol: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "symbol": symbol})


def days_by_symbol(keys: list[str]) -> dict[str, list[dt.date]]:
    """Partition keys `2024-01-02|SPY` grouped as {symbol: [days, oldest first]}; a symbol
    key that is not canonical (`msft`, `../x`) is refused, naming the canonical form."""
    grouped: dict[str, list[dt.date]] = defaultdict(list)
    for key in keys:
        day, symbol = str(key).split("|")
        grouped[check_symbol_key(symbol)].append(dt.date.fromisoformat(day))
    return {symbol: sorted(days) for symbol, days in sorted(grouped.items())}
