"""The warehouse: the Parquet lake plus the DuckDB catalog under one home, behind typed
methods. Callers never name a dataset or a path; reads never take a lock."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stock_assets import settings
from stock_assets.core import bars as core_bars
from stock_assets.core import calendar
from stock_assets.logs import get_logger, log_event
from stock_assets.storage.catalog import Catalog
from stock_assets.storage.lake import (
    BARS_1M,
    BARS_DERIVED,
    FEATURES,
    MARKET_REGIMES,
    CorruptPartition,
    Lake,
    to_frame,
)

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
log = get_logger(__name__)


def to_table(frame: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """A frame as an Arrow table (of exactly `schema` when given), with no pandas metadata,
    so equal content always makes equal bytes."""
    if schema is None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    else:
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


class Warehouse:
    """The lake (`<root>/lake`) and the catalog (`<root>/warehouse.duckdb`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.root / "lake")

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.root / "warehouse.duckdb", self.lake, settings.catalog_url())

    # --- bars -------------------------------------------------------------------------

    def bar_days(self, symbol: str) -> list[dt.date]:
        """The days with a stored 1-minute partition, oldest first."""
        return self.lake.days(BARS_1M, symbol)

    def read_bars(self, symbol: str, days: list[dt.date]) -> pd.DataFrame:
        """The stored 1-minute bars of the given days (an empty frame when none)."""
        stored = self.lake.read_days(BARS_1M, symbol, days)
        return core_bars.empty_bars() if stored is None else stored[core_bars.BAR_COLUMNS]

    def latest_bars(self, symbol: str, interval: str = "1m", limit: int = 20) -> pa.Table | None:
        """The newest `limit` bars of one symbol at an interval (1m or a derived one),
        oldest first, read from its newest partitions only."""
        return self.lake.latest_bars(symbol, interval, limit)

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
            written = part.num_rows > 0 and self.lake.write(BARS_1M, symbol, day, part)
            filled = (pc.sum(part["is_filled"]).as_py() or 0) if part.num_rows else 0
            missing = calendar.session_length(day) - part.num_rows
            results.append(StoredDay(day, part.num_rows, missing, filled, written))
        log_event(
            log, "persist", "bars stored", symbol=symbol, dataset=BARS_1M, days=len(days),
            rows=sum(r.rows for r in results), written=sum(r.written for r in results),
        )  # fmt: skip
        return results

    def _readable(self, symbol: str, day: dt.date) -> pa.Table | None:
        """A stored 1-minute partition, or None when there is none or it cannot be read
        (then it is quarantined, and the write that follows rebuilds it)."""
        try:
            return self.lake.read_table(BARS_1M, symbol, day)
        except CorruptPartition as error:
            self.lake.quarantine(error)
            return None

    def store_derived(
        self, symbol: str, days: list[dt.date], minute_bars: pd.DataFrame | None = None
    ) -> dict[str, int]:
        """Recompute the 5m..1d bars of the given days from their 1-minute partitions
        (one file per symbol and day holding every interval); rows per interval. A caller
        that has just read those partitions (`read_bars(symbol, days)`) passes them as
        `minute_bars`, so they are not read twice."""
        if minute_bars is None:
            minute_bars = self.read_bars(symbol, days)
        frames = [
            core_bars.resample_bars(minute_bars, interval).assign(interval=interval)
            for interval in core_bars.DERIVED_INTERVALS
        ]
        derived = pd.concat(frames, ignore_index=True).sort_values(
            ["ts", "interval"], kind="stable"
        )
        derived = derived.reset_index(drop=True)
        self._store_by_day(BARS_DERIVED, symbol, to_table(derived, DERIVED_SCHEMA), days)
        counts = derived["interval"].value_counts()
        return {interval: int(counts.get(interval, 0)) for interval in core_bars.DERIVED_INTERVALS}

    # --- features and regimes ---------------------------------------------------------

    def feature_days(self, symbol: str) -> list[dt.date]:
        return self.lake.days(FEATURES, symbol)

    def read_features(
        self, symbol: str, start: dt.date | None = None, end: dt.date | None = None
    ) -> pd.DataFrame | None:
        """The stored feature rows of one symbol between start and end (all when None)."""
        days = [
            day
            for day in self.feature_days(symbol)
            if (start is None or day >= start) and (end is None or day <= end)
        ]
        return self.lake.read_days(FEATURES, symbol, days)

    def features_carry_day(self, symbol: str, day: dt.date) -> pd.DataFrame | None:
        """The stored features of one day, to continue from; an unreadable partition is
        quarantined and reads as missing (the build then starts from the history)."""
        try:
            return self.read_features(symbol, day, day)
        except CorruptPartition as error:
            self.lake.quarantine(error)
            return None

    def unreadable(self) -> list[CorruptPartition]:
        """Every lake partition whose file cannot be read (footers only)."""
        datasets = (BARS_1M, BARS_DERIVED, FEATURES, MARKET_REGIMES)
        return [error for dataset in datasets for error in self.lake.unreadable(dataset)]

    def feature_checksum(self, symbol: str) -> str:
        """SHA-256 over the symbol's feature partitions (day and content of each): the
        data part of a model fingerprint."""
        digest = hashlib.sha256()
        for day in self.feature_days(symbol):
            digest.update(day.isoformat().encode())
            path = self.lake.partition_path(FEATURES, symbol, day)
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def latest_features(self, symbol: str, limit: int) -> pd.DataFrame | None:
        table = self.lake.latest(FEATURES, symbol, limit)
        return None if table is None else to_frame(table)

    def store_features(self, symbol: str, frame: pd.DataFrame, days: list[dt.date]) -> int:
        """One partition per day; the number of partitions whose content changed."""
        return self._store_by_day(FEATURES, symbol, frame, days)

    def read_regimes(self, days: list[dt.date]) -> pd.DataFrame | None:
        return self.lake.read_days(MARKET_REGIMES, None, days)

    def store_regimes(self, frame: pd.DataFrame, days: list[dt.date]) -> int:
        return self._store_by_day(MARKET_REGIMES, None, frame, days)

    def _store_by_day(
        self,
        dataset: str,
        symbol: str | None,
        data: pd.DataFrame | pa.Table,
        days: list[dt.date],
    ) -> int:
        """Write rows sorted by in-session `ts` as one partition per day; the number of
        partitions whose content changed."""
        if len(data) == 0:
            return 0
        table = data if isinstance(data, pa.Table) else to_table(data)
        ts = table.column("ts").to_pandas()
        written = 0
        for day, (lo, hi) in core_bars.day_slices(ts, days).items():
            if hi > lo:
                written += self.lake.write(dataset, symbol, day, table.slice(lo, hi - lo))
        log_event(
            log, "persist", f"{dataset} stored", symbol=symbol, dataset=dataset, days=len(days),
            rows=len(table), written=written,
        )  # fmt: skip
        return written
