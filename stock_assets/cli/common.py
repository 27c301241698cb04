"""What every command shares: exit codes, the Dagster instance and job runs, trading-day
ranges from options, and printing rows as a table, CSV or JSON."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from stock_assets import settings
from stock_assets.core.errors import UsageError

if TYPE_CHECKING:  # heavy imports happen inside the functions that need them
    import pandas as pd
    import pyarrow as pa

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def echo(text: str = "") -> None:
    print(text, flush=True)


def dagster_instance():
    """The Dagster instance under DAGSTER_HOME (one per home in this process)."""
    return _instance_at(str(settings.use_dagster_home()))


@lru_cache(maxsize=4)
def _instance_at(home: str):
    import dagster as dg

    return dg.DagsterInstance.from_config(home)


def launch(request):
    """Run a `Launch` through the project's launcher (in process, or submitted to the
    Dagster webserver at STOCK_ASSETS_DAGSTER_URL) and return its outcome."""
    from stock_assets.jobs.launcher import launcher

    return launcher(dagster_instance()).launch(request)


def repair_command(error) -> str:
    """The command that rebuilds an unreadable partition (a CorruptPartition)."""
    day = error.day.isoformat()
    if error.dataset in ("bars_1m", "bars_derived"):
        return f"stock-assets ingest {error.symbol} --start {day} --end {day} --refetch"
    symbol = error.symbol or "SPY"
    return f"stock-assets features build {symbol} --start {day} --end {day}"


def open_warehouse():
    from stock_assets.storage.warehouse import Warehouse

    return Warehouse(settings.home())


def trading_days(
    start: str | None, end: str | None, default_days: int | None = None
) -> list[dt.date]:
    import pandas as pd

    from stock_assets.core import calendar

    today = pd.Timestamp.now(calendar.EXCHANGE_TZ).date()
    if start is None and default_days:
        last = calendar.last_session_on_or_before(today)
        return [*calendar.previous_sessions(last, default_days - 1), last]
    if start is None:
        raise UsageError("--start is required (YYYY-MM-DD)")
    first, last = calendar.parse_range(start, end or today.isoformat())
    if last > today:
        raise UsageError(f"end {last} is in the future (today is {today})")
    if first < settings.first_partition_day():
        raise UsageError(
            f"start {first} is before the first partition day {settings.first_partition_day()}"
        )
    days = calendar.sessions(first, last)
    if not days:
        raise UsageError(f"no XNYS session between {first} and {last}")
    return days


def emit(data: pa.Table | pd.DataFrame, fmt: str, first: dict[str, str] | None = None) -> None:
    """Print rows as an aligned table, CSV or JSON records, with constant leading columns
    `first`. Arrow tables print without importing pandas (a fast `bars`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = pc.cast(table.column(i), pa.timestamp("s", tz="UTC"), safe=False)
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S+00:00")
            table = table.set_column(i, field.name, text)
    names = [*(first or {}), *table.column_names]
    rows = [{**(first or {}), **row} for row in table.to_pylist()]
    if fmt == "json":
        records = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        sys.stdout.write(json.dumps(records, default=_text, allow_nan=False) + "\n")
        return
    cells = [[_text(row[name], short=fmt == "table") for name in names] for row in rows]
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([names, *cells])
        return
    if not cells:
        echo("(no rows)")
        return
    widths = [max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(names)]
    for row in [names, *cells]:
        echo("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _text(value: object, short: bool = False) -> str:
    """A cell: full precision, or with `short` floats rounded to 6 decimals for reading."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        if short and math.isfinite(value) and abs(value) >= 1e-3:
            value = round(value, 6)
        return repr(value) if not short or abs(value) >= 1e-3 or value == 0 else f"{value:.6g}"
    return str(value)


def _json_value(value: object) -> object:
    """JSON has no NaN or infinity: NaN becomes null, infinities the strings inf/-inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def floats(text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise UsageError(f"{text!r}: comma-separated numbers, e.g. 0,0.001") from None
