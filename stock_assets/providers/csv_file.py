"""One exported CSV file of 1-minute bars read into RAW_COLUMNS frames per symbol, with
what was left out and why.

Column names are matched case-insensitively with common aliases; timestamps may carry a
UTC offset, be naive (read in the caller's timezone) or be epoch numbers. A row that
cannot be read (no or an unparseable timestamp, an offset beyond +-14:00, a price or
volume that is text) is dropped and counted, with a one-line note naming the first one;
a file that cannot be used at all raises ProviderError with a one-line reason.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.bars import session_position
from stock_assets.core.symbols import InvalidSymbol, normalize_symbol
from stock_assets.providers.base import RAW_COLUMNS, ProviderError

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
DROP_REASONS = ("bad_timestamp", "bad_number", "outside_session")
_OFFSET = r"(?:Z|([+-])(\d{2}):?(\d{2}))$"
_MAX_OFFSET_MINUTES = 14 * 60
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
_ONE_MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class ParsedFile:
    """One file's bars per symbol, sorted by ts, with ts as int64 ns for range lookups,
    the rows dropped per symbol and reason, and notes on what was dropped and why."""

    by_symbol: dict[str, pd.DataFrame]
    ts_ns: dict[str, np.ndarray]
    dropped: dict[str, dict[str, int]]
    notes: tuple[str, ...]


def read_csv(file: Path, rows: int | None = None) -> pd.DataFrame:
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


def find(frame: pd.DataFrame, names: list[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def _timestamp_text(frame: pd.DataFrame, file: Path) -> pd.Series:
    """The timestamp column, or `date` + `time` joined when the file splits them."""
    column = find(frame, TIMESTAMP_NAMES)
    if column is not None:
        return frame[column]
    if "date" in frame.columns and "time" in frame.columns:
        return frame["date"].str.strip() + " " + frame["time"].str.strip()
    column = find(frame, ["time", "date"])
    if column is not None:
        return frame[column]
    names = ", ".join(TIMESTAMP_NAMES + ["time", "date"])
    raise ProviderError(
        f"{file.name}: no timestamp column (accepted names: {names}); "
        f"columns are: {', '.join(map(str, frame.columns))}"
    )


@dataclass(frozen=True)
class _Times:
    """A file's timestamps as written, before a timezone is applied to naive ones.

    `wall` is the written time without its offset (NaT where unreadable); `offsets` the
    minutes east of UTC per row (None: no row has one); `unreadable` maps why to rows."""

    wall: pd.DatetimeIndex
    offsets: np.ndarray | None
    epoch: bool
    unreadable: dict[str, np.ndarray]

    def utc(self, timezone: str, ignore_offsets: bool = False) -> pd.DatetimeIndex:
        if self.offsets is not None and not ignore_offsets:
            offsets = (self.offsets * 60_000_000_000).astype("m8[ns]")
            return (self.wall - offsets).tz_localize("UTC")
        # Ambiguous or skipped local times only occur overnight, outside every session.
        wall = self.wall.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        return wall.tz_convert("UTC")


def _read_times(text: pd.Series, file: Path) -> _Times:
    """Timestamps with offsets, naive ones, or epoch numbers; unreadable rows marked."""
    text = text.str.strip()
    blank = text.eq("").to_numpy()
    first = text[~blank].iloc[:1]
    epoch = bool(len(first) and first.str.fullmatch(r"\d{9,19}").all())
    try:
        if epoch:
            return _epoch_times(text, blank)
        local, offsets, has_offset, offset_bad = _split_offsets(text)
        with warnings.catch_warnings():
            # Formats pandas cannot infer are parsed one by one (dateutil): slow, not wrong.
            warnings.simplefilter("ignore", UserWarning)
            wall = pd.to_datetime(local, errors="coerce")
            # Rows in another format than the first one's get a second, per-row chance;
            # only text with a year, so that a lone "09:30" is not read as today.
            retry = wall.isna().to_numpy() & ~blank
            if retry.any():
                retry[retry] = local[retry].str.contains(r"\d{4}").to_numpy()
                wall[retry] = pd.to_datetime(local[retry], errors="coerce", format="mixed")
        wall = pd.DatetimeIndex(wall)
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0].split(". You might want")[0]
        raise ProviderError(f"{file.name}: unparseable timestamps ({reason})") from None
    if wall.tz is not None:
        raise ProviderError(f"{file.name}: unparseable timestamps (unknown zone suffix)")
    wall = wall.as_unit("ns")
    readable = wall.notna() & ~offset_bad
    if offsets is not None and (readable & ~has_offset).any():
        raise ProviderError(f"{file.name}: timestamps mix values with and without UTC offset")
    bad = {
        "no timestamp": blank,
        "UTC offset beyond +-14:00": offset_bad & ~blank,
        "unparseable timestamp": ~readable & ~blank & ~offset_bad,
    }
    return _Times(wall.where(readable, pd.NaT), offsets, False, bad)


def _epoch_times(text: pd.Series, blank: np.ndarray) -> _Times:
    """Epoch numbers (s, ms, us or ns by magnitude) as UTC wall times."""
    digits = text.str.fullmatch(r"\d{9,19}").to_numpy()
    numbers = np.zeros(len(text), dtype=np.int64)
    numbers[digits] = text[digits].astype("int64").to_numpy()
    unit = _epoch_unit(int(np.abs(numbers).max()))
    wall = pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit)).as_unit("ns")
    bad = {"no timestamp": blank, "unparseable timestamp": ~digits & ~blank}
    return _Times(wall.where(digits, pd.NaT), np.zeros(len(text), dtype=np.int64), True, bad)


def _split_offsets(
    text: pd.Series,
) -> tuple[pd.Series, np.ndarray | None, np.ndarray, np.ndarray]:
    """The text without its trailing UTC offsets (`Z`, `+hh:mm`, `+hhmm`); each row's
    offset in minutes east of UTC (0 where none; None when no row has one); the rows
    with one; the rows whose offset is beyond +-14:00. Offsets are read once per distinct
    six-character tail, which keeps a large file with a few offsets fast."""
    codes, tails = pd.factorize(text.str[-6:])
    widths, minutes = np.zeros(len(tails), dtype=np.int64), np.zeros(len(tails), dtype=np.int64)
    wrong = np.zeros(len(tails), dtype=bool)
    for i, tail in enumerate(tails):
        match = re.search(_OFFSET, tail)
        if match is None:
            continue
        widths[i] = len(match.group(0))
        if match.group(0) != "Z":
            sign = -1 if match.group(1) == "-" else 1
            hours, mins = int(match.group(2)), int(match.group(3))
            minutes[i] = sign * (hours * 60 + mins)
            wrong[i] = mins >= 60 or hours * 60 + mins > _MAX_OFFSET_MINUTES
    row_widths = widths[codes]
    has_offset = row_widths > 0
    if not has_offset.any():
        return text, None, has_offset, has_offset
    local = text.copy()
    for width in np.unique(row_widths[has_offset]):
        rows = row_widths == width
        local[rows] = text[rows].str[: -int(width)]
    return local, minutes[codes], has_offset, wrong[codes]


def _epoch_unit(magnitude: int) -> str:
    for unit, limit in (("s", 10**11), ("ms", 10**14), ("us", 10**17)):
        if magnitude < limit:
            return unit
    return "ns"


def name_symbol(file: Path, symbol: str | None) -> str | None:
    """The option, else the file name's prefix as a symbol, else None."""
    if symbol is not None:
        return symbol
    name = file.name
    suffix = next((s for s in (".csv.gz", ".csv", ".gz") if name.lower().endswith(s)), None)
    stem = name[: -len(suffix)] if suffix else file.stem
    try:
        return normalize_symbol(re.split(r"[_\s]", stem, maxsplit=1)[0])
    except InvalidSymbol:
        return None


def fixed_symbol(file: Path, symbol: str | None) -> str:
    """The symbol of a file without a symbol column: the option, else the file name's
    prefix (`SPY.csv`, `SPY_1min_2024.csv`)."""
    owner = name_symbol(file, symbol)
    if owner is None:
        raise ProviderError(
            f"{file.name}: cannot tell which symbol it holds; name it SYMBOL.csv or "
            "SYMBOL_....csv, add a symbol column, or pass symbol="
        )
    return owner


def parse_file(file: Path, label: str, timezone: str, symbol: str | None) -> ParsedFile:
    """Read, check and normalize one file into RAW_COLUMNS frames per symbol."""
    frame = read_csv(file)
    if frame.empty:
        raise ProviderError(f"{file.name}: no rows after the header")
    columns = {target: find(frame, names) for target, names in COLUMN_NAMES.items()}
    for required in REQUIRED:
        if columns[required] is None:
            raise ProviderError(
                f"{file.name}: no {required!r} column (accepted names: "
                f"{', '.join(COLUMN_NAMES[required])}); columns are: {', '.join(frame.columns)}"
            )
    text = _timestamp_text(frame, file)
    times = _read_times(text, file)
    unreadable = np.logical_or.reduce(list(times.unreadable.values()))
    if unreadable.all():
        raise ProviderError(
            f"{file.name}: unparseable timestamps: none of {len(frame):,} row(s) can be read "
            f"(first: line 2 {text.iloc[0]!r})"
        )
    shift = _ONE_MINUTE if label == "end" else pd.Timedelta(0)
    out = pd.DataFrame({"ts": times.utc(timezone) - shift})
    notes = [
        _dropped_note(file, why, mask, lambda row: repr(text.iloc[row]))
        for why, mask in times.unreadable.items()
    ]
    bad_number = np.zeros(len(frame), dtype=bool)
    for target in RAW_COLUMNS[1:]:
        source = columns[target]
        values = frame[source] if source is not None else pd.Series(np.nan, index=frame.index)
        out[target] = pd.to_numeric(values, errors="coerce").astype("float64")
        if target in REQUIRED and not pd.api.types.is_numeric_dtype(values):
            cells = values.astype(str).str.strip()
            wrong = (out[target].isna() & ~cells.str.lower().isin(_MISSING)).to_numpy()
            wrong &= ~unreadable & ~bad_number  # a row is counted once, for its first fault
            bad_number |= wrong
            notes.append(
                _dropped_note(
                    file,
                    f"{target} is not a number",
                    wrong,
                    lambda row, c=cells, n=source: f"{n}={c.iloc[row]!r}",
                )
            )
    out["symbol"] = _row_symbols(frame, columns["symbol"], symbol, file)
    usable = ~unreadable & ~bad_number
    _, inside = session_position(out["ts"])
    notes.append(_timezone_hint(file, times, timezone, shift, usable, inside))
    dropped = _counts(out["symbol"], unreadable, bad_number, usable & ~inside)
    out = out.loc[usable & inside].sort_values(["symbol", "ts"], kind="stable")
    by_symbol = {
        name: group[RAW_COLUMNS].reset_index(drop=True)
        for name, group in out.groupby("symbol", sort=False)
    }
    ts_ns = {name: pd.DatetimeIndex(group["ts"]).asi8 for name, group in by_symbol.items()}
    return ParsedFile(by_symbol, ts_ns, dropped, tuple(n for n in notes if n is not None))


def _counts(
    symbols: pd.Series, bad_timestamp: np.ndarray, bad_number: np.ndarray, outside: np.ndarray
) -> dict[str, dict[str, int]]:
    """Rows per symbol and reason (zero counts left out; every symbol present)."""
    names = pd.unique(symbols)
    counts: dict[str, dict[str, int]] = {name: {} for name in names}
    for reason, mask in zip(DROP_REASONS, (bad_timestamp, bad_number, outside), strict=True):
        per_symbol = (
            {names[0]: int(mask.sum())} if len(names) == 1 else symbols[mask].value_counts()
        )
        for name, count in per_symbol.items():
            if count:
                counts[name][reason] = int(count)
    return counts


def _dropped_note(
    file: Path, why: str, mask: np.ndarray, shown: Callable[[int], str]
) -> str | None:
    """ "SPY.csv: 2 row(s) dropped: unparseable timestamp (first: line 3 'x')", or None."""
    if not mask.any():
        return None
    row = int(np.flatnonzero(mask)[0])
    count = int(mask.sum())
    return f"{file.name}: {count:,} row(s) dropped: {why} (first: line {row + 2} {shown(row)})"


def _timezone_hint(
    file: Path,
    times: _Times,
    timezone: str,
    shift: pd.Timedelta,
    usable: np.ndarray,
    inside: np.ndarray,
) -> str | None:
    """A hint when most usable rows fall outside the regular session and another reading
    of the same times (naive ones in UTC, or offsets ignored) puts more inside, as naive
    UTC times read as New York time do. Extended-hours files also have most rows outside,
    but no other reading does better for them, so they get no hint."""
    total, kept = int(usable.sum()), int((usable & inside).sum())
    outside = total - kept
    if times.epoch or outside <= kept:
        return None
    tz = calendar.EXCHANGE_TZ
    other = ("UTC" if timezone != "UTC" else tz) if times.offsets is None else tz
    alternative = times.utc(other, ignore_offsets=True)
    _, other_inside = session_position(alternative - shift)
    better = int((other_inside & usable).sum())
    if better <= kept:
        return None
    share = f"{outside:,} of {total:,} rows ({100 * outside // total}%)"
    if times.offsets is None:
        return (
            f"{file.name}: {share} fall outside the regular session read as {timezone} "
            f"time; read as {other} time, {better:,} would be inside: pass "
            f"timezone={other!r} (--csv-tz {other})"
        )
    return (
        f"{file.name}: {share} fall outside the regular session with their UTC offsets; "
        f"without them, as {tz} time, {better:,} would be inside: check the offsets"
    )


def _row_symbols(
    frame: pd.DataFrame, column: str | None, symbol: str | None, file: Path
) -> np.ndarray:
    """Each row's symbol: the `symbol` column, else the option, else the file name."""
    if column is None:
        return np.full(len(frame), fixed_symbol(file, symbol), dtype=object)
    raw = frame[column].str.strip()
    codes, uniques = pd.factorize(raw, sort=False)
    try:
        names = np.array([normalize_symbol(value) for value in uniques], dtype=object)
    except InvalidSymbol as exc:
        raise ProviderError(f"{file.name}: bad value in column {column!r}: {exc}") from None
    return names[codes]
