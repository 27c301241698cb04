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
from stock_assets.logs import get_logger

if TYPE_CHECKING:
    import pandas as pd

PART_NAME = "part.parquet"
# The lake's datasets: bars per symbol-day (1-minute, and 5m..1d in one file with an
# `interval` column), features per symbol-day, market regimes per day.
BARS_1M, BARS_DERIVED, FEATURES, MARKET_REGIMES = (
    "bars_1m", "bars_derived", "features", "market_regimes"
)  # fmt: skip


log = get_logger(__name__)


class CorruptPartition(RuntimeError):
    """A stored partition file that cannot be read; the message names the file."""

    def __init__(self, path: Path, dataset: str, symbol: str | None, day: dt.date, reason: str):
        first_line = (reason.strip().splitlines() or ["unknown error"])[0][:200]
        super().__init__(f"{path}: unreadable partition ({first_line})")
        self.path, self.dataset, self.symbol, self.day = path, dataset, symbol, day


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

    def mtimes(self, dataset: str, symbol: str | None) -> dict[dt.date, int]:
        """The modification time (ns) of each stored partition of one symbol (or of a
        day-partitioned dataset), oldest day first: one stat call per partition, no reads."""
        base = self.root / dataset
        if symbol is not None:
            base = base / f"symbol={normalize_symbol(symbol)}"
        found = {}
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return {}
        for entry in entries:
            if not entry.name.startswith("date="):
                continue
            try:
                stat = os.stat(os.path.join(entry.path, PART_NAME))
            except FileNotFoundError:  # a day directory whose file was moved aside
                continue
            found[dt.date.fromisoformat(entry.name.removeprefix("date="))] = stat.st_mtime_ns
        return dict(sorted(found.items()))

    def read_table(self, dataset: str, symbol: str | None, day: dt.date) -> pa.Table | None:
        """One partition as an Arrow table, None when it does not exist."""
        path = self.partition_path(dataset, symbol, day)
        if not path.is_file():
            return None
        try:
            return pq.ParquetFile(path).read()
        except (OSError, pa.ArrowException) as error:
            raise CorruptPartition(path, dataset, symbol, day, str(error)) from None

    def quarantine(self, error: CorruptPartition) -> Path:
        """Move an unreadable partition aside (never delete it), under
        `<home>/quarantine/<dataset>/...`, so the next run of its asset rebuilds it."""
        relative = error.path.relative_to(self.root)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.root.parent / "quarantine" / relative.parent / f"part.{stamp}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(error.path, target)
        except FileNotFoundError:  # another process moved it first
            return target
        log.warning(
            f"{error} moved to {target}; the next run of its asset rebuilds it",
            extra={"stage": "quarantine", "dataset": error.dataset, "symbol": error.symbol},
        )
        return target

    def unreadable(self, dataset: str) -> list[CorruptPartition]:
        """The partitions of a dataset whose Parquet footer cannot be read (a truncated or
        overwritten file); a scan of footers, not of every page."""
        found = []
        for path in sorted(self.dataset_dir(dataset).glob(f"**/{PART_NAME}")):
            try:
                pq.read_metadata(path)
            except (OSError, pa.ArrowException) as error:
                found.append(_corrupt_at(self.root, path, str(error)))
        return found

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
            for day in sorted(days):  # name the first file that cannot be read
                self.read_table(dataset, symbol, day)
            raise CorruptPartition(Path(paths[0]), dataset, symbol, min(days), str(error)) from None
        return to_frame(table)

    def write(self, dataset: str, symbol: str | None, day: dt.date, table: pa.Table) -> bool:
        """Store one partition atomically; False when the stored one was already equal."""
        path = self.partition_path(dataset, symbol, day)
        if path.is_file():
            try:
                if pq.read_table(path).equals(table):
                    return False
            except (OSError, pa.ArrowException) as error:  # kept aside, then replaced
                self.quarantine(CorruptPartition(path, dataset, symbol, day, str(error)))
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

    def latest_bars(self, symbol: str, interval: str, limit: int) -> pa.Table | None:
        """The newest `limit` bars of one symbol at an interval (1m or a derived one),
        oldest first. Reads with pyarrow alone, so `stock-assets bars` starts fast."""
        if interval == "1m":
            return self.latest(BARS_1M, symbol, limit)
        import pyarrow.compute as pc

        table = self.latest(
            BARS_DERIVED, symbol, limit, lambda t: pc.equal(t["interval"], interval)
        )
        return table.drop_columns(["interval"]) if table is not None else None

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


def _corrupt_at(root: Path, path: Path, reason: str) -> CorruptPartition:
    """The CorruptPartition of a file found by path: dataset, symbol and day from it."""
    parts = path.relative_to(root).parts
    symbol = next((p.removeprefix("symbol=") for p in parts if p.startswith("symbol=")), None)
    day = next(
        dt.date.fromisoformat(p.removeprefix("date=")) for p in parts if p.startswith("date=")
    )
    return CorruptPartition(path, parts[0], symbol, day, reason)


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
