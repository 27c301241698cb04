"""Yahoo Finance 1-minute bars through yfinance, within Yahoo's intraday limits.

Yahoo serves 1-minute bars for about the last 30 days only, and at most 8 days a
request. The provider asks only for sessions inside that horizon, in requests of at most
`chunk_days` calendar days; older sessions come back empty with a logged reason, since
no request could answer them. Yahoo labels each bar by its start in exchange time; here
that becomes a UTC bar-open `ts`. Yahoo has no vwap or trade count: those are NaN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.logs import get_logger, log_event, redact
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw

YahooDownload = Callable[[str, dt.date, dt.date], pd.DataFrame]
"""`download(yahoo_symbol, start, end_exclusive)`: a yfinance-shaped frame of 1m bars."""

_PRICE_COLUMNS = {"open": "Open", "high": "High", "low": "Low", "close": "Close"}
_MISSING_DATA_ERRORS = ("YFTickerMissingError",)

logger = get_logger(__name__)


def yfinance_history(symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """yfinance's `Ticker.history` for raw 1-minute regular-session bars, start..end (excl.).

    It returns columns Open, High, Low, Close, Adj Close, Volume on a tz-aware
    America/New_York index named Datetime, labelled by bar start. yfinance hides
    exceptions by default (a failed time-zone lookup even turns a network error into
    "possibly delisted"); they are raised here so a network failure is told from no data.
    """
    import yfinance

    debug = yfinance.config.debug
    hidden = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        return yfinance.Ticker(symbol).history(
            start=start.isoformat(),
            end=end.isoformat(),
            interval="1m",
            prepost=False,
            actions=False,
            auto_adjust=False,
        )
    finally:
        debug.hide_exceptions = hidden


class YahooProvider:
    """1-minute bars from Yahoo Finance for the recent sessions Yahoo still serves.

    `download` defaults to `yfinance_history`; tests inject one returning yfinance-shaped
    frames (flat columns as from `Ticker.history`, or `(Price, Ticker)` columns as from
    `yfinance.download`). `today` gives the exchange-local date the horizon counts from.
    """

    name = "yahoo"

    def __init__(
        self,
        download: YahooDownload | None = None,
        *,
        today: Callable[[], dt.date] | None = None,
        chunk_days: int = 7,
        lookback_days: int = 29,
    ) -> None:
        if not 1 <= chunk_days <= 8:
            raise ValueError(
                f"chunk_days={chunk_days}: Yahoo serves 1..8 days of 1m bars a request"
            )
        self._download = download or yfinance_history
        self._today = today or _exchange_today
        self.chunk_days = chunk_days
        self.lookback_days = lookback_days

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Regular-session 1-minute bars for the sessions start..end still inside the horizon."""
        days = calendar.sessions(start, end)
        today = self._today()
        earliest = today - dt.timedelta(days=self.lookback_days)
        served = [day for day in days if earliest <= day <= today]
        context = {"provider": self.name, "symbol": symbol, "start": str(start), "end": str(end)}
        if len(served) < len(days):
            log_event(
                logger,
                "fetch",
                f"yahoo: 1-minute bars exist only from {earliest} to {today}; "
                f"{len(days) - len(served)} session(s) skipped",
                skipped_sessions=len(days) - len(served),
                **context,
            )
        windows = request_windows(served, self.chunk_days)
        frames = [self._download_window(symbol, first, stop) for first, stop in windows]
        frames = [part for part in frames if len(part)]
        frame = pd.concat(frames, ignore_index=True) if frames else empty_raw()
        if served and len(frame):
            frame = frame.loc[frame["ts"].isin(calendar.sessions_minutes(served))]
            frame = frame.sort_values("ts", kind="stable").drop_duplicates("ts", keep="first")
        frame = frame[RAW_COLUMNS].reset_index(drop=True) if len(frame) else empty_raw()
        log_event(
            logger,
            "fetch",
            "yahoo bars fetched" if len(frame) else "yahoo: no bars (empty)",
            rows=len(frame),
            requests=len(windows),
            **context,
        )
        return frame

    def _download_window(self, symbol: str, first: dt.date, stop: dt.date) -> pd.DataFrame:
        ticker = yahoo_symbol(symbol)
        try:
            raw = self._download(ticker, first, stop)
        except Exception as err:
            reason = redact(f"{type(err).__name__}: {err}")
            if _is_missing_data(err):
                log_event(
                    logger,
                    "fetch",
                    f"yahoo: no data for {ticker} {first}..{stop}: {reason}",
                    symbol=symbol,
                    rows=0,
                )
                return empty_raw()
            message = f"yahoo: {symbol} {first}..{stop} (end excluded): {reason}"
            logger.error(message, extra={"stage": "fetch", "symbol": symbol})
            raise ProviderError(message) from err
        frame = yahoo_frame(raw, ticker)
        log_event(
            logger,
            "fetch",
            "yahoo request",
            symbol=symbol,
            start=str(first),
            end=str(stop),
            rows=len(frame),
        )
        return frame


def request_windows(days: list[dt.date], chunk_days: int) -> list[tuple[dt.date, dt.date]]:
    """(start, end exclusive) per request: runs of sessions within `chunk_days` calendar days."""
    windows: list[tuple[dt.date, dt.date]] = []
    index = 0
    while index < len(days):
        first, last = days[index], index
        while last + 1 < len(days) and days[last + 1] < first + dt.timedelta(days=chunk_days):
            last += 1
        windows.append((first, days[last] + dt.timedelta(days=1)))
        index = last + 1
    return windows


def yahoo_frame(raw: pd.DataFrame | None, ticker: str) -> pd.DataFrame:
    """RAW_COLUMNS from a yfinance frame: flat or (Price, Ticker) columns, any index tz.

    A tz-naive index (yfinance's `ignore_tz=True`) is exchange-local wall time. Rows
    without prices (yfinance pads multi-ticker downloads with NaN) are dropped.
    """
    if raw is None or raw.empty:
        return empty_raw()
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):
        levels = [frame.columns.get_level_values(n) for n in range(frame.columns.nlevels)]
        level = next((n for n, values in enumerate(levels) if ticker in set(values)), None)
        if level is None:
            raise ProviderError(f"yahoo: {ticker}: the answer has no columns for {ticker}")
        frame = frame.xs(ticker, axis=1, level=level)
    missing = sorted({*_PRICE_COLUMNS.values(), "Volume"} - set(frame.columns))
    if missing:
        raise ProviderError(f"yahoo: {ticker}: the answer lacks columns {missing}")
    index = pd.DatetimeIndex(frame.index)
    if index.tz is None:
        index = index.tz_localize(calendar.EXCHANGE_TZ, ambiguous="NaT", nonexistent="NaT")
    out = pd.DataFrame({"ts": index.tz_convert("UTC").as_unit("ns")})
    for column, source in _PRICE_COLUMNS.items():
        out[column] = frame[source].to_numpy(dtype="float64")
    out["volume"] = frame["Volume"].to_numpy(dtype="float64")
    out["vwap"] = np.nan
    out["trade_count"] = np.nan
    prices = out[list(_PRICE_COLUMNS)].notna().all(axis=1) & out["ts"].notna()
    return out.loc[prices, RAW_COLUMNS].reset_index(drop=True)


def yahoo_symbol(symbol: str) -> str:
    """Yahoo's spelling of a ticker: share classes with `-` (BRK.B -> BRK-B)."""
    return symbol.replace(".", "-")


def _is_missing_data(err: Exception) -> bool:
    """yfinance's "possibly delisted; no price data / no timezone" errors mean no data."""
    return any(cls.__name__ in _MISSING_DATA_ERRORS for cls in type(err).__mro__)


def _exchange_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(calendar.EXCHANGE_TZ)).date()
