"""The warehouse resource: the Parquet lake plus the DuckDB catalog under STOCK_ASSETS_HOME."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from stock_assets import settings
from stock_assets.core import bars as core_bars
from stock_assets.resources.catalog import Catalog
from stock_assets.resources.lake import Lake

_TS = pa.timestamp("ns", tz="UTC")
_VALUES = [
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("volume", pa.float64()),
    ("vwap", pa.float64()),
    ("trade_count", pa.int64()),
]
BARS_SCHEMA = pa.schema([("ts", _TS), *_VALUES, ("source", pa.string()), ("is_filled", pa.bool_())])
DERIVED_SCHEMA = pa.schema(
    [("ts", _TS), *_VALUES, ("minutes", pa.int64()), ("filled_minutes", pa.int64())]
)
DERIVED_INTERVALS = ["5m", "15m", "30m", "1h", "1d"]


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame as an Arrow table of exactly `schema`, with no pandas metadata, so equal
    content always makes equal bytes."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


@dataclass(frozen=True)
class StoredDay:
    """What persisting one (symbol, day) partition did."""

    day: dt.date
    rows: int
    missing_minutes: int
    filled_minutes: int
    written: bool


class WarehouseResource(dg.ConfigurableResource):
    """The lake (`<home>/lake`) and the catalog (`<home>/warehouse.duckdb`).

    `home` defaults to STOCK_ASSETS_HOME as it is when the resource is first used.
    """

    home: str | None = None

    @cached_property
    def root(self) -> Path:
        return Path(self.home) if self.home else settings.home()

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.root / "lake")

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.root / "warehouse.duckdb", self.lake)

    def read_bars(self, symbol: str, days: list[dt.date]) -> pd.DataFrame:
        """The stored 1-minute bars of the given days (an empty frame when none)."""
        stored = self.lake.read_days("bars_1m", symbol, days)
        return core_bars.empty_bars() if stored is None else stored[core_bars.BAR_COLUMNS]

    def complete_days(self, symbol: str, days: list[dt.date]) -> set[dt.date]:
        """Days whose stored partition has every session minute, none of them made up."""
        stored = self.read_bars(symbol, days)
        if stored.empty:
            return set()
        day_of_bar = core_bars.bar_days(stored["ts"])
        complete = set()
        for day in days:
            mask = day_of_bar == day
            real = int(mask.sum() - stored["is_filled"].to_numpy()[mask].sum())
            if real and real == len(core_bars.expected_minutes([day])):
                complete.add(day)
        return complete

    def store_bars(self, symbol: str, bars: pd.DataFrame, days: list[dt.date]) -> list[StoredDay]:
        """Merge validated bars into each day's partition; only missing bars are added."""
        day_of_bar = core_bars.bar_days(bars["ts"]) if len(bars) else np.array([])
        stored_days = []
        for day in days:
            incoming = bars.loc[day_of_bar == day] if len(bars) else bars
            existing = self.lake.read("bars_1m", symbol, day)
            merged = core_bars.merge_bars(
                core_bars.empty_bars() if existing is None else existing, incoming
            )
            written = False
            if len(merged):
                written = self.lake.write("bars_1m", symbol, day, to_table(merged, BARS_SCHEMA))
            missing = core_bars.missing_minutes(merged, [day])
            stored_days.append(
                StoredDay(day, len(merged), len(missing), int(merged["is_filled"].sum()), written)
            )
        return stored_days

    def store_derived(self, symbol: str, day: dt.date) -> dict[str, int]:
        """Recompute the 5m..1d bars of one day from its 1-minute partition; rows per interval."""
        minute_bars = self.lake.read("bars_1m", symbol, day)
        counts = {}
        for interval in DERIVED_INTERVALS:
            if minute_bars is None or minute_bars.empty:
                counts[interval] = 0
                continue
            derived = core_bars.resample_bars(minute_bars, interval)
            self.lake.write(f"bars_{interval}", symbol, day, to_table(derived, DERIVED_SCHEMA))
            counts[interval] = len(derived)
        return counts

    def latest_bars(self, symbol: str, interval: str = "1m", limit: int = 20) -> pd.DataFrame:
        """The newest `limit` bars of one symbol, oldest first, read from the newest
        partitions only (no catalog, no full scan)."""
        dataset = "bars_1m" if interval == "1m" else f"bars_{interval}"
        days = self.lake.days(dataset, symbol)
        frames, rows = [], 0
        for day in reversed(days):
            frame = self.lake.read(dataset, symbol, day)
            if frame is not None and len(frame):
                frames.append(frame)
                rows += len(frame)
            if rows >= limit:
                break
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames[::-1], ignore_index=True).tail(limit).reset_index(drop=True)
        out.insert(0, "symbol", symbol)
        return out
