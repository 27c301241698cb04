"""The warehouse resource: the Parquet lake plus the DuckDB catalog under STOCK_ASSETS_HOME."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stock_assets import settings
from stock_assets.core import bars as core_bars
from stock_assets.core import calendar
from stock_assets.logs import get_logger, log_event
from stock_assets.storage.catalog import Catalog
from stock_assets.storage.lake import CorruptPartition, Lake, to_frame

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
    [("interval", pa.string()), ("ts", _TS), *_VALUES, ("minutes", pa.int64()),
     ("filled_minutes", pa.int64())]
)  # fmt: skip
DERIVED_INTERVALS = ["5m", "15m", "30m", "1h", "1d"]
log = get_logger(__name__)


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
        """Days whose stored partition has every session minute, none of them made up (an
        unreadable partition is not complete, so it is fetched and replaced)."""
        try:
            stored = self.read_bars(symbol, days)
        except CorruptPartition:  # one by one, leaving the unreadable ones out
            readable = [day for day in days if self._readable(symbol, day) is not None]
            return set().union(*(self.complete_days(symbol, [day]) for day in readable))
        real = stored.loc[~stored["is_filled"]]
        slices = core_bars.day_slices(real["ts"], days)
        return {
            day
            for day, (lo, hi) in slices.items()
            if hi > lo and hi - lo == calendar.session_length(day)
        }

    def store_bars(self, symbol: str, bars: pd.DataFrame, days: list[dt.date]) -> list[StoredDay]:
        """Merge validated bars (sorted, in-session) into each day's partition; only
        missing bars are added, and a partition whose content does not change is not
        rewritten."""
        table = to_table(bars, BARS_SCHEMA)
        slices = core_bars.day_slices(bars["ts"], days)
        results = []
        for day in days:
            lo, hi = slices[day]
            part = table.slice(lo, hi - lo)
            existing = self._readable(symbol, day)
            if existing is not None and existing.num_rows:
                if part.num_rows:
                    merged = core_bars.merge_bars(to_frame(existing), to_frame(part))
                    part = to_table(merged, BARS_SCHEMA)
                else:
                    part = existing
            written = part.num_rows > 0 and self.lake.write("bars_1m", symbol, day, part)
            filled = (pc.sum(part["is_filled"]).as_py() or 0) if part.num_rows else 0
            missing = calendar.session_length(day) - part.num_rows
            results.append(StoredDay(day, part.num_rows, missing, filled, written))
        log_event(
            log, "persist", "bars stored", symbol=symbol, dataset="bars_1m", days=len(days),
            rows=sum(r.rows for r in results), written=sum(r.written for r in results),
        )  # fmt: skip
        return results

    def _readable(self, symbol: str, day: dt.date) -> pa.Table | None:
        """A stored 1-minute partition, or None when there is none or it cannot be read
        (then it is logged, and the next write replaces it)."""
        try:
            return self.lake.read_table("bars_1m", symbol, day)
        except CorruptPartition as error:
            log.warning(str(error), extra={"stage": "persist", "symbol": symbol})
            return None

    def store_by_day(
        self, dataset: str, symbol: str | None, frame: pd.DataFrame, days: list[dt.date]
    ) -> int:
        """Write a frame sorted by in-session `ts` as one partition per day; the number of
        partitions whose content changed."""
        if frame.empty:
            return 0
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        written = 0
        for day, (lo, hi) in core_bars.day_slices(frame["ts"], days).items():
            if hi > lo:
                written += self.lake.write(dataset, symbol, day, table.slice(lo, hi - lo))
        log_event(
            log, "persist", f"{dataset} stored", symbol=symbol, dataset=dataset, days=len(days),
            rows=len(frame), written=written,
        )  # fmt: skip
        return written

    def store_derived(self, symbol: str, days: list[dt.date]) -> dict[str, int]:
        """Recompute the 5m..1d bars of the given days from their 1-minute partitions
        (one file per symbol and day holding every interval); rows per interval."""
        minute_bars = self.read_bars(symbol, days)
        frames = [
            core_bars.resample_bars(minute_bars, interval).assign(interval=interval)
            for interval in DERIVED_INTERVALS
        ]
        derived = pd.concat(frames, ignore_index=True).sort_values(
            ["ts", "interval"], kind="stable"
        )
        derived = derived.reset_index(drop=True)
        table = to_table(derived, DERIVED_SCHEMA)
        written = 0
        for day, (lo, hi) in core_bars.day_slices(derived["ts"], days).items():
            if hi > lo:
                written += self.lake.write("bars_derived", symbol, day, table.slice(lo, hi - lo))
        log_event(
            log, "persist", "derived bars stored", symbol=symbol, dataset="bars_derived",
            days=len(days), rows=len(derived), written=written,
        )  # fmt: skip
        counts = derived["interval"].value_counts()
        return {interval: int(counts.get(interval, 0)) for interval in DERIVED_INTERVALS}
