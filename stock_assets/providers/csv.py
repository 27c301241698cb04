"""The `csv` provider: a user's own exported 1-minute bars, so people with data can use it.

A path is one CSV file or a directory of them (`*.csv`, `*.csv.gz`, not recursive). A file
holds one symbol, named by a `symbol` column (several symbols per file), else by the
provider's `symbol` option, else by the file name (`SPY.csv`, `SPY_1min_2024.csv`).
Columns and timestamps are read by `csv_file`; naive timestamps are read in `timezone`;
each row is labelled by its bar's start or end minute (`label`). Rows come back as
bar-open times in UTC, regular-session minutes only, in any source order; duplicates are
kept for the central validator to count.

An import tells the truth about what it left out: rows it cannot read are dropped and
counted, a file it cannot use is skipped with a one-line reason instead of sinking the
rest of the folder, and a file whose times look read in the wrong timezone gets a hint.
All of it is in `last_report` after each fetch (`problems`, `dropped`) and in the logs.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.symbols import normalize_symbol
from stock_assets.logs import get_logger, log_event
from stock_assets.providers.base import ProviderError, empty_raw
from stock_assets.providers.csv_file import (
    COLUMN_NAMES,
    ParsedFile,
    find,
    fixed_symbol,
    name_symbol,
    parse_file,
    read_csv,
)

logger = get_logger(__name__)

SUFFIXES = (".csv", ".csv.gz")


@dataclass
class CsvReport:
    """What one fetch read: files used, bars returned, rows left out, and why.

    `dropped` counts rows of the symbol per reason over the whole of each file read (a
    row without a readable time belongs to no day): `bad_timestamp` (blank, unparseable,
    or a UTC offset beyond +-14:00), `bad_number` (a price or volume that is text, not a
    number; blank cells stay for the validator's `missing_values`), `outside_session` (a
    readable time outside the regular session: extended hours, or a wrong timezone).
    `problems` has one line per file skipped and per note on a file read, naming it.
    """

    files: int = 0
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _CacheEntry:
    """What is known of one file at one (modification time, size).

    `owner` is the one symbol the file holds (by the option or its name); `per_row` says
    a symbol column names each row's; `problem` is why the file cannot be used."""

    key: tuple[int, int]
    examined: bool = False
    owner: str | None = None
    per_row: bool = False
    parsed: ParsedFile | None = None
    problem: str | None = None


class CsvProvider:
    """1-minute bars read from CSV files; parsed files are cached until they change."""

    name = "csv"

    def __init__(
        self,
        path: str | Path,
        label: Literal["start", "end"] = "start",
        timezone: str = calendar.EXCHANGE_TZ,
        symbol: str | None = None,
    ) -> None:
        if label not in ("start", "end"):
            raise ValueError(f"label {label!r}: choose 'start' (bar-open) or 'end' (bar-close)")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {timezone!r}: use an IANA name such as 'America/New_York'"
            ) from None
        self.path = Path(path)
        self.label = label
        self.timezone = timezone
        self.symbol = None if symbol is None else normalize_symbol(symbol)
        self._cache: dict[Path, _CacheEntry] = {}
        self._local = threading.local()

    def __repr__(self) -> str:
        return (
            f"CsvProvider(path={str(self.path)!r}, label={self.label!r}, "
            f"timezone={self.timezone!r}, symbol={self.symbol!r})"
        )

    @property
    def last_report(self) -> CsvReport:
        """What this thread's last fetch read, dropped and skipped (empty before one)."""
        return getattr(self._local, "report", None) or CsvReport()

    @property
    def problems(self) -> list[str]:
        """One line per file skipped or noted by the last fetch (see CsvReport)."""
        return self.last_report.problems

    @property
    def dropped(self) -> dict[str, int]:
        """Rows of the last fetch's symbol left out, per reason (see CsvReport)."""
        return self.last_report.dropped

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """The regular-session bars of `symbol` for the sessions from start to end.

        A file that cannot be used is skipped and reported; ProviderError only when no bar
        was found and a file that may hold the symbol could not be read, or the path is a
        single file that could not be used: then "no bars" would not be the truth.
        """
        symbol = normalize_symbol(symbol)
        files = self._files()
        report = self._local.report = CsvReport()
        days = calendar.sessions(start, end)
        window = None
        if days:
            window = (
                calendar.session_bounds(days[0])[0].value,
                calendar.session_bounds(days[-1])[1].value,
            )
        single = self.path.is_file()
        parts, unusable = [], []
        for file in files:
            entry = self._examine(file)
            if entry.owner is not None and entry.owner != symbol:
                continue  # another symbol's file
            candidate = entry.per_row or entry.owner == symbol
            if candidate:
                self._parse(file, entry)
            if entry.problem is not None:
                report.problems.append(entry.problem)
                if candidate or single:
                    unusable.append(entry.problem)
                continue
            parsed = entry.parsed
            if parsed is None or symbol not in parsed.dropped:
                continue
            report.files += 1
            report.problems.extend(parsed.notes)
            for reason, count in parsed.dropped[symbol].items():
                report.dropped[reason] = report.dropped.get(reason, 0) + count
            if window is not None and symbol in parsed.by_symbol:
                first, last = np.searchsorted(parsed.ts_ns[symbol], window, "left")
                parts.append(parsed.by_symbol[symbol].iloc[first:last])
        parts = [part for part in parts if len(part)]
        if not parts and unusable:
            raise ProviderError("; ".join(unusable))
        if not parts:
            bars = empty_raw()
        else:
            bars = pd.concat(parts, ignore_index=True).sort_values("ts", kind="stable")
            bars = bars.reset_index(drop=True)
        report.rows = len(bars)
        log_event(
            logger,
            "fetch",
            "csv bars read",
            provider=self.name,
            symbol=symbol,
            start=start.isoformat(),
            end=end.isoformat(),
            files=report.files,
            rows=len(bars),
            dropped=report.dropped,
            problems=len(report.problems),
        )
        return bars

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            return sorted(
                entry
                for entry in self.path.iterdir()
                if entry.is_file() and entry.name.lower().endswith(SUFFIXES)
            )
        raise ProviderError(f"{self.path}: no such file or directory of CSV bars")

    def _examine(self, file: Path) -> _CacheEntry:
        """The file's cache entry with its owner known (renewed when the file changed)."""
        try:
            stat = file.stat()
        except OSError as exc:
            entry = _CacheEntry((0, 0), examined=True)
            entry.problem = f"{file.name}: cannot read ({exc.strerror})"
            _warn(entry.problem, file)
            return entry
        key = (stat.st_mtime_ns, stat.st_size)
        entry = self._cache.get(file)
        if entry is None or entry.key != key:
            entry = self._cache[file] = _CacheEntry(key)
        if not entry.examined:
            entry.examined = True
            try:
                header = read_csv(file, rows=0)
                entry.per_row = find(header, COLUMN_NAMES["symbol"]) is not None
                if not entry.per_row:
                    entry.owner = fixed_symbol(file, self.symbol)
            except ProviderError as exc:
                entry.problem = str(exc)
                if not entry.per_row and entry.owner is None:  # unreadable: the name may say
                    entry.owner = name_symbol(file, self.symbol)
                _warn(entry.problem, file)
        return entry

    def _parse(self, file: Path, entry: _CacheEntry) -> None:
        if entry.parsed is not None or entry.problem is not None:
            return
        try:
            entry.parsed = parse_file(file, self.label, self.timezone, self.symbol)
        except ProviderError as exc:
            entry.problem = str(exc)
            _warn(entry.problem, file)
            return
        for note in entry.parsed.notes:
            _warn(note, file)


def _warn(line: str, file: Path) -> None:
    logger.warning(line, extra={"stage": "fetch", "provider": "csv", "file": file.name})
