"""YahooProvider with an injected download returning frames shaped exactly like yfinance 1.7's."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from yfinance.exceptions import YFPricesMissingError, YFTzMissingError

from stock_assets.core import calendar
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw
from stock_assets.providers.yahoo import (
    YahooProvider,
    request_windows,
    yahoo_frame,
)
from stock_assets.testing import generated_bars

ET = calendar.EXCHANGE_TZ
TODAY = dt.date(2024, 3, 20)
# Fourteen sessions across the DST change of 2024-03-10.
START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 20)


def source_bars(ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Bars from midnight ET of start to midnight ET of end (excluded), with extended hours."""
    lo = pd.Timestamp(start, tz=ET).tz_convert("UTC")
    hi = pd.Timestamp(end, tz=ET).tz_convert("UTC") - pd.Timedelta(1)
    return generated_bars(ticker, lo, hi, extended_hours=True)


def history_shape(bars: pd.DataFrame) -> pd.DataFrame:
    """As `Ticker.history(interval="1m", auto_adjust=False, actions=False)` returns it."""
    index = pd.DatetimeIndex(bars["ts"]).tz_convert(ET).rename("Datetime")
    return pd.DataFrame(
        {
            "Open": bars["open"].to_numpy(),
            "High": bars["high"].to_numpy(),
            "Low": bars["low"].to_numpy(),
            "Close": bars["close"].to_numpy(),
            "Adj Close": bars["close"].to_numpy(),
            "Volume": bars["volume"].to_numpy().astype("int64"),
        },
        index=index,
    )


def download_shape(bars: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """As `yfinance.download(ticker, interval="1m")` returns it: (Price, Ticker) columns."""
    flat = history_shape(bars).drop(columns="Adj Close")
    data = pd.concat({ticker: flat}, axis=1, names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


def expected(ticker: str, days: list[dt.date]) -> pd.DataFrame:
    bars = source_bars(ticker, days[0], days[-1] + dt.timedelta(days=1))
    bars = bars.loc[bars["ts"].isin(calendar.sessions_minutes(days))].reset_index(drop=True)
    bars["vwap"] = float("nan")
    bars["trade_count"] = float("nan")
    return bars[RAW_COLUMNS]


class FakeYahoo:
    """A download function that records its calls and answers from `source_bars`."""

    def __init__(self, shape: str = "history", error: Exception | None = None) -> None:
        self.shape, self.error = shape, error
        self.calls: list[tuple[str, dt.date, dt.date]] = []

    def __call__(self, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        self.calls.append((ticker, start, end))
        if self.error is not None:
            raise self.error
        bars = source_bars(ticker, start, end)
        if self.shape == "download":
            return download_shape(bars, ticker)
        if self.shape == "naive":
            return history_shape(bars).tz_localize(None)
        return history_shape(bars)


@pytest.mark.parametrize("shape", ["history", "download", "naive"])
def test_yfinance_frames_become_utc_bar_open_regular_session_bars(shape: str) -> None:
    download = FakeYahoo(shape)
    frame = YahooProvider(download, today=lambda: TODAY).fetch("SPY", START, END)

    days = calendar.sessions(START, END)
    pd.testing.assert_frame_equal(frame, expected("SPY", days))
    assert len(frame) == 14 * 390
    assert frame["ts"].iloc[0] == pd.Timestamp("2024-03-01 14:30", tz="UTC")  # EST open
    assert frame["ts"].iloc[-1] == pd.Timestamp("2024-03-20 19:59", tz="UTC")  # EDT close
    assert download.calls == [
        ("SPY", dt.date(2024, 3, 1), dt.date(2024, 3, 8)),
        ("SPY", dt.date(2024, 3, 8), dt.date(2024, 3, 15)),
        ("SPY", dt.date(2024, 3, 15), dt.date(2024, 3, 21)),
    ]


def test_sessions_older_than_the_horizon_are_empty_with_a_logged_reason(
    json_logs: io.StringIO,
) -> None:
    download = FakeYahoo()
    frame = YahooProvider(download, today=lambda: TODAY).fetch(
        "SPY", dt.date(2024, 1, 2), dt.date(2024, 1, 31)
    )

    pd.testing.assert_frame_equal(frame, empty_raw())
    assert download.calls == []
    events = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    skipped = next(e for e in events if "skipped" in e["message"])
    assert "2024-02-20" in skipped["message"] and skipped["skipped_sessions"] == 21
    assert skipped["stage"] == "fetch" and skipped["symbol"] == "SPY"


def test_a_range_straddling_the_horizon_fetches_only_its_recent_sessions() -> None:
    download = FakeYahoo()
    frame = YahooProvider(download, today=lambda: TODAY).fetch(
        "QQQ", dt.date(2024, 2, 1), dt.date(2024, 2, 23)
    )

    served = calendar.sessions(dt.date(2024, 2, 20), dt.date(2024, 2, 23))
    pd.testing.assert_frame_equal(frame, expected("QQQ", served))
    assert download.calls == [("QQQ", dt.date(2024, 2, 20), dt.date(2024, 2, 24))]


def test_network_errors_are_provider_errors() -> None:
    download = FakeYahoo(error=requests.ConnectionError("connection reset by peer"))

    with pytest.raises(ProviderError, match=r"yahoo: SPY 2024-03-01\.\.2024-03-08.*reset"):
        YahooProvider(download, today=lambda: TODAY).fetch("SPY", START, END)
    assert len(download.calls) == 1


@pytest.mark.parametrize(
    "error", [YFPricesMissingError("VIX", ""), YFTzMissingError("VIX")], ids=["prices", "tz"]
)
def test_a_ticker_yahoo_has_no_data_for_is_empty(error: Exception) -> None:
    download = FakeYahoo(error=error)
    frame = YahooProvider(download, today=lambda: TODAY).fetch("VIX", START, END)

    pd.testing.assert_frame_equal(frame, empty_raw())
    assert len(download.calls) == 3


def test_share_classes_use_yahoo_spelling() -> None:
    download = FakeYahoo("download")
    frame = YahooProvider(download, today=lambda: TODAY).fetch("BRK.B", END, END)

    assert download.calls == [("BRK-B", END, END + dt.timedelta(days=1))]
    pd.testing.assert_frame_equal(frame, expected("BRK-B", [END]))


def test_rows_yfinance_padded_with_nan_are_dropped() -> None:
    bars = source_bars("SPY", END, END + dt.timedelta(days=1))
    padded = download_shape(bars, "SPY")
    padded.iloc[5:10] = float("nan")

    frame = yahoo_frame(padded, "SPY")

    assert len(frame) == len(bars) - 5 and frame["open"].notna().all()


def test_an_answer_for_another_ticker_is_an_error() -> None:
    bars = source_bars("SPY", END, END + dt.timedelta(days=1))
    with pytest.raises(ProviderError, match="no columns for QQQ"):
        yahoo_frame(download_shape(bars, "SPY"), "QQQ")


def test_chunk_days_must_fit_yahoos_limit() -> None:
    with pytest.raises(ValueError, match="1..8"):
        YahooProvider(FakeYahoo(), chunk_days=10)


@given(
    start=st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2024, 12, 1)),
    span=st.integers(min_value=0, max_value=60),
    chunk_days=st.integers(min_value=1, max_value=8),
)
def test_request_windows_cover_each_session_once_within_chunk_days(
    start: dt.date, span: int, chunk_days: int
) -> None:
    days = calendar.sessions(start, start + dt.timedelta(days=span))
    windows = request_windows(days, chunk_days)

    covered = [day for first, stop in windows for day in days if first <= day < stop]
    assert covered == days
    assert all(0 < (stop - first).days <= chunk_days for first, stop in windows)
    assert all(a[1] <= b[0] for a, b in zip(windows, windows[1:], strict=False))
