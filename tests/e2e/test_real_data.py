"""Real bars through the whole pipeline: CSV import (both label styles) -> lake -> derived
bars, checked against an aggregation written here from the raw files."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from stock_assets.cli import main
from stock_assets.storage.warehouse import Warehouse

ET = ZoneInfo("America/New_York")
UTC = dt.UTC


def raw_minutes(path, label_end, days):
    """{bar-open UTC datetime: (o, h, l, c, v)} for regular-session rows of the given days."""
    out = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            stamp = dt.datetime.fromisoformat(row["datetime"])
            local = stamp.replace(tzinfo=ET) if stamp.tzinfo is None else stamp.astimezone(ET)
            if label_end:
                local -= dt.timedelta(minutes=1)
            if local.date() not in days or not dt.time(9, 30) <= local.time() < dt.time(16, 0):
                continue
            values = tuple(float(row[k]) for k in ("open", "high", "low", "close", "volume"))
            out[local.astimezone(UTC)] = values
    return out


def reference(minutes, width):
    """Buckets of `width` minutes from 09:30 ET (None: the whole day)."""
    buckets = defaultdict(list)
    for ts in sorted(minutes):
        local = ts.astimezone(ET)
        open_ = local.replace(hour=9, minute=30)
        offset = int((local - open_).total_seconds() // 60)
        start = open_ if width is None else open_ + dt.timedelta(minutes=offset - offset % width)
        buckets[start.astimezone(UTC)].append(minutes[ts])
    return {
        start: (rows[0][0], max(r[1] for r in rows), min(r[2] for r in rows), rows[-1][3],
                sum(r[4] for r in rows), len(rows))
        for start, rows in buckets.items()
    }  # fmt: skip


CASES = [
    ("SPY_1min_2019-02-11_2019-02-15.csv", "SPY", "end", "2019-02-11", "2019-02-15"),
    ("VIX_1min_2019-02-11_2019-02-15.csv", "VIX", "end", "2019-02-11", "2019-02-13"),
    ("SPY_1min_2024-02-20_2024-05-17.csv", "SPY", "start", "2024-03-07", "2024-03-12"),
]


@pytest.mark.parametrize(("name", "symbol", "label", "start", "end"), CASES)
def test_csv_import_and_derived_bars_match_reference(home, real_data, name, symbol, label,
                                                     start, end):  # fmt: skip
    code = main(["ingest", symbol, "--start", start, "--end", end, "--provider", "csv",
                 "--csv", str(real_data / name), "--csv-label", label])  # fmt: skip
    assert code == 0
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = {first + dt.timedelta(d) for d in range((last - first).days + 1)}
    minutes = raw_minutes(real_data / name, label == "end", days)
    warehouse = Warehouse(home)
    stored = warehouse.read_bars(symbol, sorted(days))
    assert len(stored) == len(minutes)
    assert [t.to_pydatetime() for t in stored["ts"]] == sorted(minutes)
    for interval, width in [("5m", 5), ("1h", 60), ("1d", None)]:
        expected = reference(minutes, width)
        derived = warehouse.lake.read_days("bars_derived", symbol, sorted(days))
        derived = derived.loc[derived["interval"] == interval]
        assert [t.to_pydatetime() for t in derived["ts"]] == sorted(expected)
        for row in derived.itertuples():
            o, h, lo, c, v, n = expected[row.ts.to_pydatetime()]
            assert (row.open, row.high, row.low, row.close, row.minutes) == (o, h, lo, c, n)
            assert row.volume == pytest.approx(v, rel=1e-12)
