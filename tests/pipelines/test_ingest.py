"""The provider chain and the day outcomes, driven directly with stand-in providers."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.ingest import last_completed_minute, parse_provider_order
from stock_assets.pipelines.ingest import fetch_chain, ingest_symbol
from stock_assets.providers.base import ProviderError, empty_raw
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.storage.warehouse import Warehouse

DAYS = [dt.date(2024, 3, 7), dt.date(2024, 3, 8)]
LATER = pd.Timestamp("2030-01-01", tz="UTC")


class Fixed:
    """A provider that answers with given bars (or raises), and records what it was asked."""

    def __init__(self, name: str, bars: pd.DataFrame | None = None, error: str | None = None):
        self.name, self.bars, self.error, self.asked = name, bars, error, []

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        self.asked.append((start, end))
        if self.error:
            raise ProviderError(self.error)
        return empty_raw() if self.bars is None else self.bars


def synthetic(days: list[dt.date]) -> pd.DataFrame:
    """A bar for every session minute of the days (price 100 + minute number)."""
    ts = calendar.sessions_minutes(days)
    price = 100.0 + pd.RangeIndex(len(ts)) / 100
    return pd.DataFrame(
        {
            "ts": ts,
            "open": price,
            "high": price + 0.05,
            "low": price - 0.05,
            "close": price,
            "volume": 1000.0,
            "vwap": price,
            "trade_count": 10,
        }
    )


def test_the_next_provider_is_asked_only_for_days_still_missing_minutes():
    full = synthetic(DAYS)
    first_day_only = full[full["ts"] < calendar.session_bounds(DAYS[1])[0]]
    first = Fixed("alpaca", error="status 500 after 6 attempts")
    second = Fixed("yahoo", first_day_only)
    third = Fixed("synthetic", full)
    fetched = fetch_chain([first, second, third], "SPY", DAYS, now=LATER)
    assert first.asked == [(DAYS[0], DAYS[1])]
    assert second.asked == [(DAYS[0], DAYS[1])]
    assert third.asked == [(DAYS[1], DAYS[1])]
    assert fetched.notes[0] == "alpaca: status 500 after 6 attempts"
    assert fetched.providers_by_day == {DAYS[0]: ["yahoo"], DAYS[1]: ["synthetic"]}
    pd.testing.assert_series_equal(
        fetched.bars["ts"].reset_index(drop=True), full["ts"].reset_index(drop=True)
    )


def test_outcomes_ok_partial_empty_and_failed(tmp_path):
    warehouse = Warehouse(tmp_path)
    full = synthetic(DAYS)
    one_day = full[full["ts"] < calendar.session_bounds(DAYS[1])[0]]
    gappy = one_day.drop(one_day.index[10:13])  # three minutes missing on the first day
    outcomes = ingest_symbol("SPY", DAYS, [Fixed("csv", gappy)], warehouse, now=LATER).days
    assert [(o.day, o.status) for o, _ in outcomes] == [(DAYS[0], "partial"), (DAYS[1], "empty")]
    assert outcomes[0][0].message == "3 session minutes without a real bar from csv"
    assert outcomes[1][0].message == f"no bars for {DAYS[1]} from csv"
    assert outcomes[1][0].provider == "csv"

    failed = ingest_symbol("QQQ", DAYS, [Fixed("alpaca", error="401 unauthorized")], warehouse).days
    assert {o.status for o, _ in failed} == {"failed"}
    assert failed[0][0].message == "no provider has data for QQQ: alpaca: 401 unauthorized"

    repaired = ingest_symbol("SPY", DAYS, [Fixed("synthetic", full)], warehouse, now=LATER).days
    assert [o.status for o, _ in repaired] == ["ok", "ok"]
    status = warehouse.catalog.ingest_status()
    assert status[["symbol", "status", "rows"]].values.tolist() == [
        ["QQQ", "failed", 0], ["QQQ", "failed", 0], ["SPY", "ok", 390], ["SPY", "ok", 390],
    ]  # fmt: skip


def test_no_bar_that_opens_after_the_last_completed_minute_is_kept(tmp_path):
    now = calendar.session_bounds(DAYS[1])[0] + pd.Timedelta(minutes=49, seconds=30)
    assert last_completed_minute(now) == now.floor("min") - pd.Timedelta(minutes=1)
    fetched = fetch_chain([Fixed("csv", synthetic(DAYS))], "SPY", DAYS, now=now)
    assert fetched.bars["ts"].max() == last_completed_minute(now)
    assert fetched.dropped == {"future": 390 - 49}  # 09:30 .. 10:18 have closed by 10:19:30
    stored = ingest_symbol(
        "SPY", DAYS, [SyntheticProvider(seed=3)], Warehouse(tmp_path), now=now
    ).days
    assert Warehouse(tmp_path).read_bars("SPY", DAYS)["ts"].max() <= last_completed_minute(now)
    assert stored[1][1].rows + stored[1][1].missing_minutes == 390


def test_provider_order_auto_depends_on_keys_and_unknown_names_are_refused():
    assert parse_provider_order("auto", has_alpaca_keys=False) == ["synthetic"]
    assert parse_provider_order("auto", has_alpaca_keys=True) == ["alpaca", "yahoo"]
    assert parse_provider_order(" Alpaca , csv ", has_alpaca_keys=False) == ["alpaca", "csv"]
    with pytest.raises(ValueError, match="provider order 'iexcloud'"):
        parse_provider_order("iexcloud", has_alpaca_keys=False)
