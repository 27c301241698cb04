"""The synthetic generator and the `synthetic` provider: deterministic, realistic bars."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import calendar
from stock_assets.core.bars import conform, validate_bars
from stock_assets.core.synthetic import (
    PROFILES,
    REFERENCE_DAY,
    generate_bars,
    generate_range,
    market_state,
    symbol_profile,
)
from stock_assets.providers.base import RAW_COLUMNS, empty_raw
from stock_assets.providers.synthetic import SyntheticProvider

ET = calendar.EXCHANGE_TZ


def _digest(frame: pd.DataFrame) -> str:
    """A hash of the frame's exact values (pandas' row hash uses a fixed key)."""
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _daily(frame: pd.DataFrame) -> pd.DataFrame:
    day = frame["ts"].dt.tz_convert(ET).dt.date
    return frame.groupby(day).agg(open=("open", "first"), close=("close", "last"))


def test_generate_range_has_raw_columns_and_dtypes():
    bars = generate_range("SPY", dt.date(2024, 3, 4), dt.date(2024, 3, 8))
    assert list(bars.columns) == RAW_COLUMNS
    assert bars.dtypes.equals(empty_raw().dtypes)
    assert bars["ts"].is_monotonic_increasing and bars["ts"].is_unique


def test_a_day_is_bit_identical_in_any_range_and_order():
    days = calendar.sessions(dt.date(2024, 5, 1), dt.date(2024, 8, 30))
    for symbol in ["SPY", "VIXY", "ZZTOP"]:
        whole = generate_range(symbol, days[0], days[-1], seed=7)
        one_by_one = [generate_bars(symbol, day, seed=7) for day in reversed(days)]
        assert whole.equals(pd.concat(one_by_one[::-1], ignore_index=True))
        for first, last in [(1, 2), (3, 40), (40, 41), (10, len(days) - 1)]:
            part = generate_range(symbol, days[first], days[last], seed=7)
            lo, hi = calendar.session_bounds(days[first])[0], calendar.session_bounds(days[last])[1]
            expected = whole[(whole["ts"] >= lo) & (whole["ts"] < hi)].reset_index(drop=True)
            assert part.equals(expected)


def test_bars_are_identical_in_a_fresh_process():
    code = (
        "import datetime as dt, hashlib, pandas as pd\n"
        "from stock_assets.core.synthetic import generate_range\n"
        "frame = generate_range('AAPL', dt.date(2024, 2, 26), dt.date(2024, 3, 8), 3)\n"
        "rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()\n"
        "print(hashlib.sha256(rows.tobytes()).hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    local = _digest(generate_range("AAPL", dt.date(2024, 2, 26), dt.date(2024, 3, 8), 3))
    assert result.stdout.strip() == local


def test_seed_and_symbol_change_the_bars_and_case_does_not():
    day = dt.date(2024, 3, 5)
    base = generate_bars("AAPL", day)
    assert base.equals(generate_bars("aapl", day))
    assert not base["close"].equals(generate_bars("AAPL", day, seed=1)["close"])
    assert not base["close"].equals(generate_bars("MSFT", day)["close"])


def test_non_session_days_are_empty():
    for day in [dt.date(2024, 7, 4), dt.date(2024, 3, 29), dt.date(2024, 3, 9)]:
        bars = generate_bars("SPY", day)
        assert bars.empty and list(bars.columns) == RAW_COLUMNS
        assert bars.dtypes.equals(empty_raw().dtypes)
    assert generate_range("SPY", dt.date(2024, 3, 9), dt.date(2024, 3, 10)).empty


@pytest.mark.parametrize(
    ("day", "minutes"), [(dt.date(2024, 7, 3), 210), (dt.date(2024, 7, 2), 390)]
)
def test_session_minutes_exact_less_at_most_three_missing(day, minutes):
    full = generate_bars("QQQ", day, missing=False)
    assert len(full) == minutes
    assert pd.DatetimeIndex(full["ts"]).equals(calendar.session_minutes(day).rename(None))
    bars = generate_bars("QQQ", day)
    assert minutes - 3 <= len(bars) <= minutes
    assert bars["ts"].iloc[0] == full["ts"].iloc[0]
    assert bars["ts"].iloc[-1] == full["ts"].iloc[-1]
    kept = full[full["ts"].isin(bars["ts"])].reset_index(drop=True)
    assert kept.equals(bars)


def test_a_few_minutes_go_missing_every_month():
    days = calendar.sessions(dt.date(2024, 4, 1), dt.date(2024, 4, 30))
    for symbol in ["SPY", "AAPL", "VIXY"]:
        bars = generate_range(symbol, days[0], days[-1])
        per_day = bars.groupby(bars["ts"].dt.tz_convert(ET).dt.date).size()
        missing = 390 - per_day
        assert len(per_day) == len(days)
        assert missing.between(0, 3).all()
        assert 5 <= missing.sum() <= 3 * len(days)
        assert (missing == 0).any()


def test_days_join_into_one_price_path():
    for symbol, typical, worst in [
        ("SPY", 0.005, 0.04),
        ("AAPL", 0.008, 0.06),
        ("VIXY", 0.02, 0.15),
    ]:
        daily = _daily(generate_range(symbol, dt.date(2023, 1, 1), dt.date(2024, 12, 31)))
        gap = np.abs(np.log(daily["open"] / daily["close"].shift())).dropna()
        assert len(gap) == 501
        assert gap.median() < typical and gap.max() < worst


def test_profile_price_is_the_reference_day_close():
    assert generate_bars("SPY", REFERENCE_DAY)["close"].iloc[-1] == PROFILES["SPY"].price
    assert generate_bars("AAPL", REFERENCE_DAY)["close"].iloc[-1] == PROFILES["AAPL"].price
    unknown = symbol_profile("ZZTOP")
    assert unknown == symbol_profile("zztop")
    assert 10 <= unknown.price <= 400 and 0.7 <= unknown.beta <= 1.5
    assert PROFILES["VIXY"].beta < 0 < PROFILES["VIXY"].mean_reversion


symbols = st.one_of(
    st.sampled_from(sorted(PROFILES)), st.from_regex(r"[A-Z][A-Z0-9.\-]{0,9}", fullmatch=True)
)
days = st.dates(min_value=dt.date(2000, 1, 3), max_value=dt.date(2026, 12, 31))


@settings(max_examples=40, deadline=None)
@given(symbol=symbols, day=days, seed=st.integers(0, 2**31))
def test_bars_are_consistent_for_any_symbol_and_day(symbol, day, seed):
    bars = generate_bars(symbol, day, seed)
    if not calendar.is_session(day):
        assert bars.empty
        return
    o, h, low, c, v = (bars[k].to_numpy() for k in ["open", "high", "low", "close", "volume"])
    assert (low > 0).all()
    assert (low <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    assert ((bars["vwap"] >= low) & (bars["vwap"] <= h)).all()
    assert np.array_equal(
        np.round(bars[["open", "high", "low", "close"]], 2), bars[["open", "high", "low", "close"]]
    )
    trades = bars["trade_count"].to_numpy()
    least = 1 if symbol_profile(symbol).daily_volume > 0 else 0  # VIX, an index: no volume
    assert (v >= least).all() and (trades >= least).all() and (trades <= v).all()
    assert (v == np.round(v)).all() and (trades == np.round(trades)).all()
    kept, report = validate_bars(conform(bars, source="synthetic"))
    assert report.total == 0 and len(kept) == len(bars)


def test_symbols_follow_the_market_factor():
    start, end = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
    market = market_state(start, end)["market_return"]
    correlation = {}
    for symbol in ["SPY", "QQQ", "AAPL", "VIXY"]:
        daily = _daily(generate_range(symbol, start, end))
        returns = np.log(daily["close"]).diff().dropna()
        correlation[symbol] = np.corrcoef(returns, market.loc[returns.index])[0, 1]
    assert correlation["SPY"] > 0.9 and correlation["QQQ"] > 0.8
    assert correlation["AAPL"] > 0.4
    assert correlation["VIXY"] < -0.4


def test_intraday_volume_is_u_shaped():
    bars = generate_range("SPY", dt.date(2024, 2, 1), dt.date(2024, 3, 29))
    local = bars["ts"].dt.tz_convert(ET)
    minute = local.dt.hour * 60 + local.dt.minute - (9 * 60 + 30)
    profile = bars.groupby(minute)["volume"].mean()
    midday = profile.loc[150:239].mean()
    assert profile.loc[:29].mean() > 1.5 * midday
    assert profile.loc[360:].mean() > 1.2 * midday


def test_volatile_regime_is_more_volatile_and_persists():
    start, end = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
    state = market_state(start, end)
    assert set(state["regime"]) == {"calm", "volatile"}
    spells = (state["regime"] != state["regime"].shift()).sum()
    assert len(state) / spells > 5
    bars = generate_range("QQQ", start, end)
    minute_returns = np.log(bars["close"] / bars["open"])
    realized = minute_returns.groupby(bars["ts"].dt.tz_convert(ET).dt.date).std()
    by_regime = realized.groupby(state["regime"].reindex(realized.index).to_numpy()).mean()
    assert by_regime["volatile"] > 1.6 * by_regime["calm"]
    assert state.groupby("regime")["market_volatility"].first().to_dict() == {
        "calm": 0.0075,
        "volatile": 0.018,
    }


def test_provider_serves_generate_range_and_simulates_empty_symbols():
    provider = SyntheticProvider(seed=5, empty_symbols=["iwm"])
    assert provider.name == "synthetic"
    start, end = dt.date(2024, 3, 4), dt.date(2024, 3, 6)
    assert provider.fetch("spy", start, end).equals(generate_range("SPY", start, end, 5))
    empty = provider.fetch("IWM", start, end)
    assert empty.empty and list(empty.columns) == RAW_COLUMNS
    assert SyntheticProvider().fetch("SPY", dt.date(2024, 3, 9), dt.date(2024, 3, 10)).empty
