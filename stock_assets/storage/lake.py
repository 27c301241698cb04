"""The Parquet lake: the one place that knows where partitions live and how they are written.

Layout (hive-style): `<home>/lake/<dataset>/symbol=SPY/date=2024-03-04/part.parquet`.
A partition is written to a hidden temporary file in its directory, flushed to disk and
moved into place with `os.replace`, so readers see the old file or the new one, never a
half-written one. A write whose content equals the stored file is skipped, so re-runs
leave partitions byte-identical.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from stock_assets.core.symbols import normalize_symbol

if TYPE_CHECKING:
    import pandas as pd

PART_NAME = "part.parquet"
# The lake's datasets: bars per symbol-day (1-minute, and 5m..1d in one file with an
# `interval` column), features per symbol-day, market regimes per day.
BARS_1M, BARS_DERIVED, FEATURES, MARKET_REGIMES = (
    "bars_1m", "bars_derived", "features", "market_regimes"
)  # fmt: skip


class CorruptPartition(RuntimeError):
    """A stored partition file that cannot be read; the message names the file."""


class Lake:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / dataset

    def partition_path(self, dataset: str, symbol: str | None, day: dt.date) -> Path:
        """`<dataset>/symbol=S/date=D/part.parquet`, or `<dataset>/date=D/part.parquet` for
        datasets partitioned by day alone (symbol None)."""
        base = self.root / dataset
        if symbol is not None:
            base = base / f"symbol={normalize_symbol(symbol)}"
        return base / f"date={day.isoformat()}" / PART_NAME

    def glob(self, dataset: str) -> str:
        """The DuckDB glob of a dataset's partitions."""
        return str(self.root / dataset / "**" / PART_NAME)

    def has_files(self, dataset: str) -> bool:
        return any(self.dataset_dir(dataset).glob(f"**/{PART_NAME}"))

    def days(self, dataset: str, symbol: str | None) -> list[dt.date]:
        """The days stored for one symbol (or for a day-partitioned dataset), oldest first."""
        base = self.root / dataset
        if symbol is not None:
            base = base / f"symbol={normalize_symbol(symbol)}"
        if not base.is_dir():
            return []
        found = [
            dt.date.fromisoformat(entry.name.removeprefix("date="))
            for entry in base.iterdir()
            if entry.name.startswith("date=") and (entry / PART_NAME).is_file()
        ]
        return sorted(found)

    def read_table(self, dataset: str, symbol: str | None, day: dt.date) -> pa.Table | None:
        """One partition as an Arrow table, None when it does not exist."""
        path = self.partition_path(dataset, symbol, day)
        if not path.is_file():
            return None
        try:
            return pq.ParquetFile(path).read()
        except (OSError, pa.ArrowException) as error:
            raise CorruptPartition(f"{path}: unreadable partition ({error})") from error

    def read(self, dataset: str, symbol: str | None, day: dt.date) -> pd.DataFrame | None:
        """One partition as a frame, None when it does not exist."""
        table = self.read_table(dataset, symbol, day)
        return None if table is None else to_frame(table)

    def read_days(
        self, dataset: str, symbol: str | None, days: list[dt.date]
    ) -> pd.DataFrame | None:
        """The stored partitions of the given days, concatenated in order (None if none)."""
        paths = [self.partition_path(dataset, symbol, day) for day in sorted(days)]
        paths = [str(path) for path in paths if path.is_file()]
        if not paths:
            return None
        try:
            table = pq.ParquetDataset(paths).read()
        except (OSError, pa.ArrowException) as error:
            raise CorruptPartition(f"{dataset}/{symbol}: unreadable partition ({error})") from error
        return to_frame(table)

    def write(self, dataset: str, symbol: str | None, day: dt.date, table: pa.Table) -> bool:
        """Store one partition atomically; False when the stored one was already equal."""
        path = self.partition_path(dataset, symbol, day)
        if path.is_file():
            try:
                if pq.read_table(path).equals(table):
                    return False
            except (OSError, pa.ArrowException):
                pass  # a corrupt stored file is simply replaced
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{PART_NAME}.*.tmp"):  # left by a killed writer
            stale.unlink(missing_ok=True)
        temporary = path.parent / f".{PART_NAME}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temporary, "wb") as handle:
                pq.write_table(table, handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    def latest(self, dataset: str, symbol: str, limit: int, where=None) -> pa.Table | None:
        """The newest `limit` rows of one symbol, oldest first, read from its newest
        partitions only (no catalog, no scan); `where` filters each partition's rows."""
        parts, rows = [], 0
        for day in reversed(self.days(dataset, symbol)):
            part = self.read_table(dataset, symbol, day)
            part = part.filter(where(part)) if where is not None else part
            parts.append(part)
            rows += part.num_rows
            if rows >= limit:
                break
        if not rows:
            return None
        table = pa.concat_tables(parts[::-1])
        return table.slice(max(0, table.num_rows - limit))


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a frame, integer columns as nullable Int64."""
    import pandas as pd

    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
