"""The `csv` provider: a user's own exported 1-minute bars, so people with data can use it.

A path is one CSV file or a directory of them (`*.csv`, `*.csv.gz`, not recursive). A file
holds one symbol, named by a `symbol` column (several symbols per file), else by the
provider's `symbol` option, else by the file name (`SPY.csv`, `SPY_1min_2024.csv`).
Column names are matched case-insensitively with common aliases; timestamps may carry a
UTC offset or be naive (then read in `timezone`); each row is labelled by its bar's start
or end minute (`label`). Rows come back as bar-open times in UTC, regular-session minutes
only, in any source order; duplicates are kept for the central validator to count.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.bars import session_position
from stock_assets.core.symbols import InvalidSymbol, normalize_symbol
from stock_assets.logs import get_logger, log_event
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw

logger = get_logger(__name__)

TIMESTAMP_NAMES = ["ts", "timestamp", "datetime", "date_time", "t"]
COLUMN_NAMES = {
    "open": ["open", "o"],
    "high": ["high", "h"],
    "low": ["low", "l"],
    "close": ["close", "c"],
    "volume": ["volume", "vol", "v"],
    "vwap": ["vwap", "vw"],
    "trade_count": ["trade_count", "transactions", "trades", "n", "num_trades", "count"],
    "symbol": ["symbol", "ticker"],
}
REQUIRED = ["open", "high", "low", "close", "volume"]
SUFFIXES = (".csv", ".csv.gz")
_OFFSET = r"(?:Z|([+-])(\d{2}):?(\d{2}))$"
_ONE_MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class _ParsedFile:
    """One file's bars per symbol, sorted by ts, with ts as int64 ns for range lookups."""

    by_symbol: dict[str, pd.DataFrame]
    ts_ns: dict[str, np.ndarray]


@dataclass
class _CacheEntry:
    """What is known of one file at one (modification time, size)."""

    key: tuple[int, int]
    owner_known: bool = False
    owner: str | None = None
    parsed: _ParsedFile | None = None


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

    def __repr__(self) -> str:
        return (
            f"CsvProvider(path={str(self.path)!r}, label={self.label!r}, "
            f"timezone={self.timezone!r}, symbol={self.symbol!r})"
        )

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """The regular-session bars of `symbol` for the sessions from start to end."""
        symbol = normalize_symbol(symbol)
        files = self._files()
        days = calendar.sessions(start, end)
        parts = []
        if days:
            lo = calendar.session_bounds(days[0])[0].value
            hi = calendar.session_bounds(days[-1])[1].value
            for file in files:
                owner = self._owner(file)
                if owner is not None and owner != symbol:
                    continue
                parsed = self._parsed(file)
                if symbol in parsed.by_symbol:
                    ts_ns = parsed.ts_ns[symbol]
                    first, last = np.searchsorted(ts_ns, [lo, hi], "left")
                    parts.append(parsed.by_symbol[symbol].iloc[first:last])
        parts = [part for part in parts if len(part)]
        if not parts:
            bars = empty_raw()
        else:
            bars = pd.concat(parts, ignore_index=True).sort_values("ts", kind="stable")
            bars = bars.reset_index(drop=True)
        log_event(
            logger,
            "fetch",
            "csv bars read",
            provider=self.name,
            symbol=symbol,
            start=start.isoformat(),
            end=end.isoformat(),
            files=len(files),
            rows=len(bars),
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

    def _entry(self, file: Path) -> _CacheEntry:
        """The file's cache entry, renewed when its modification time or size changed."""
        try:
            stat = file.stat()
        except OSError as exc:
            raise ProviderError(f"{file}: cannot read ({exc.strerror})") from None
        key = (stat.st_mtime_ns, stat.st_size)
        entry = self._cache.get(file)
        if entry is None or entry.key != key:
            entry = self._cache[file] = _CacheEntry(key)
        return entry

    def _owner(self, file: Path) -> str | None:
        """The one symbol a file holds, or None when a symbol column names it per row."""
        entry = self._entry(file)
        if not entry.owner_known:
            header = _read_csv(file, rows=0)
            if _find(header, COLUMN_NAMES["symbol"]) is None:
                entry.owner = _fixed_symbol(file, self.symbol)
            entry.owner_known = True
        return entry.owner

    def _parsed(self, file: Path) -> _ParsedFile:
        entry = self._entry(file)
        if entry.parsed is None:
            entry.parsed = _parse_file(file, self.label, self.timezone, self.symbol)
        return entry.parsed


def _read_csv(file: Path, rows: int | None = None) -> pd.DataFrame:
    """The file with normalized column names (lower case, `_` for spaces); timestamp and
    symbol columns stay text, the others parse as numbers where they are clean."""
    try:
        header = pd.read_csv(file, nrows=0, skipinitialspace=True)
        text = [
            column
            for column in header.columns
            if _normalized(column) in {*TIMESTAMP_NAMES, "time", "date", *COLUMN_NAMES["symbol"]}
        ]
        frame = pd.read_csv(
            file,
            nrows=rows,
            skipinitialspace=True,
            dtype=dict.fromkeys(text, str),
            keep_default_na=False,
        )
    except (ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProviderError(f"{file.name}: unreadable CSV ({reason})") from None
    frame.columns = [_normalized(column) for column in frame.columns]
    return frame


def _normalized(column: object) -> str:
    return re.sub(r"\s+", "_", str(column).strip().lower())


def _find(frame: pd.DataFrame, names: list[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def _timestamp_text(frame: pd.DataFrame, file: Path) -> pd.Series:
    """The timestamp column, or `date` + `time` joined when the file splits them."""
    column = _find(frame, TIMESTAMP_NAMES)
    if column is not None:
        return frame[column]
    if "date" in frame.columns and "time" in frame.columns:
        return frame["date"].str.strip() + " " + frame["time"].str.strip()
    column = _find(frame, ["time", "date"])
    if column is not None:
        return frame[column]
    names = ", ".join(TIMESTAMP_NAMES + ["time", "date"])
    raise ProviderError(
        f"{file.name}: no timestamp column (accepted names: {names}); "
        f"columns are: {', '.join(map(str, frame.columns))}"
    )


def _parse_timestamps(text: pd.Series, timezone: str, file: Path) -> pd.DatetimeIndex:
    """UTC timestamps from text with offsets, naive text in `timezone`, or epoch numbers."""
    text = text.str.strip()
    blank = text.eq("")
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0]) + 2
        raise ProviderError(f"{file.name}: line {row} has no timestamp")
    try:
        if text.iloc[:1].str.fullmatch(r"\d{9,19}").all():
            numbers = text.astype("int64")
            unit = _epoch_unit(int(numbers.abs().max()))
            return pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit, utc=True))
        local, offset_minutes = _split_offsets(text, file)
        with warnings.catch_warnings():
            # Formats pandas cannot infer are parsed one by one (dateutil): slow, not wrong.
            warnings.simplefilter("ignore", UserWarning)
            naive = pd.DatetimeIndex(pd.to_datetime(local))
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0].split(". You might want")[0]
        raise ProviderError(f"{file.name}: unparseable timestamps ({reason})") from None
    if naive.tz is not None:
        raise ProviderError(f"{file.name}: unparseable timestamps (unknown zone suffix)")
    if offset_minutes is not None:
        return (naive - pd.to_timedelta(offset_minutes, unit="min")).tz_localize("UTC")
    # Ambiguous or skipped local times only occur overnight, outside every session.
    return naive.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")


def _split_offsets(text: pd.Series, file: Path) -> tuple[pd.Series, np.ndarray | None]:
    """The text without its trailing UTC offsets (`Z`, `+hh:mm`, `+hhmm`) and each row's
    offset in minutes, or None when no row has one. Offsets are read once per distinct
    six-character tail, which keeps a large file with a few offsets fast."""
    codes, tails = pd.factorize(text.str[-6:])
    widths, minutes = np.zeros(len(tails), dtype=np.int64), np.zeros(len(tails), dtype=np.int64)
    for i, tail in enumerate(tails):
        match = re.search(_OFFSET, tail)
        if match is not None:
            widths[i] = len(match.group(0))
            if match.group(0) != "Z":
                sign = -1 if match.group(1) == "-" else 1
                minutes[i] = sign * (int(match.group(2)) * 60 + int(match.group(3)))
    row_widths = widths[codes]
    if not row_widths.any():
        return text, None
    if not row_widths.all():
        raise ProviderError(f"{file.name}: timestamps mix values with and without UTC offset")
    local = text.copy()
    for width in np.unique(row_widths):
        rows = row_widths == width
        local[rows] = text[rows].str[: -int(width)]
    return local, minutes[codes]


def _epoch_unit(magnitude: int) -> str:
    for unit, limit in (("s", 10**11), ("ms", 10**14), ("us", 10**17)):
        if magnitude < limit:
            return unit
    return "ns"


def _fixed_symbol(file: Path, symbol: str | None) -> str:
    """The symbol of a file without a symbol column: the option, else the file name's
    prefix (`SPY.csv`, `SPY_1min_2024.csv`)."""
    if symbol is not None:
        return symbol
    name = file.name
    suffix = next((s for s in (".csv.gz", ".csv", ".gz") if name.lower().endswith(s)), None)
    stem = name[: -len(suffix)] if suffix else file.stem
    try:
        return normalize_symbol(re.split(r"[_\s]", stem, maxsplit=1)[0])
    except InvalidSymbol:
        raise ProviderError(
            f"{file.name}: cannot tell which symbol it holds; name it SYMBOL.csv or "
            "SYMBOL_....csv, add a symbol column, or pass symbol="
        ) from None


def _parse_file(file: Path, label: str, timezone: str, symbol: str | None) -> _ParsedFile:
    """Read, check and normalize one file into RAW_COLUMNS frames per symbol."""
    frame = _read_csv(file)
    columns = {target: _find(frame, names) for target, names in COLUMN_NAMES.items()}
    for required in REQUIRED:
        if columns[required] is None:
            raise ProviderError(
                f"{file.name}: no {required!r} column (accepted names: "
                f"{', '.join(COLUMN_NAMES[required])}); columns are: {', '.join(frame.columns)}"
            )
    ts = _parse_timestamps(_timestamp_text(frame, file), timezone, file)
    if label == "end":
        ts = ts - _ONE_MINUTE
    out = pd.DataFrame({"ts": ts.as_unit("ns")})
    for target in RAW_COLUMNS[1:]:
        source = columns[target]
        values = frame[source] if source is not None else pd.Series(np.nan, index=frame.index)
        out[target] = pd.to_numeric(values, errors="coerce").astype("float64")
    out["symbol"] = _row_symbols(frame, columns["symbol"], symbol, file)
    _, inside = session_position(out["ts"].fillna(pd.Timestamp(0, tz="UTC")))
    out = out.loc[inside & out["ts"].notna().to_numpy()]
    out = out.sort_values(["symbol", "ts"], kind="stable")
    by_symbol = {
        name: group[RAW_COLUMNS].reset_index(drop=True)
        for name, group in out.groupby("symbol", sort=False)
    }
    ts_ns = {name: pd.DatetimeIndex(group["ts"]).asi8 for name, group in by_symbol.items()}
    return _ParsedFile(by_symbol, ts_ns)


def _row_symbols(
    frame: pd.DataFrame, column: str | None, symbol: str | None, file: Path
) -> np.ndarray:
    """Each row's symbol: the `symbol` column, else the option, else the file name."""
    if column is None:
        return np.full(len(frame), _fixed_symbol(file, symbol), dtype=object)
    raw = frame[column].str.strip()
    codes, uniques = pd.factorize(raw, sort=False)
    try:
        names = np.array([normalize_symbol(value) for value in uniques], dtype=object)
    except InvalidSymbol as exc:
        raise ProviderError(f"{file.name}: bad value in column {column!r}: {exc}") from None
    return names[codes]
