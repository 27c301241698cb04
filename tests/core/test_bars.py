from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import bars as core_bars
from stock_assets.core import calendar

DAY = dt.date(2024, 3, 8)  # 14:30Z .. 21:00Z


def make_bars(day=DAY, n=None, drop=(), price=100.0):
    """Simple consistent bars for a session: close rises 0.01 a minute."""
    minutes = calendar.session_minutes(day)[: n or None]
    close = price + 0.01 * np.arange(len(minutes))
    frame = pd.DataFrame(
        {
            "ts": minutes,
            "open": close - 0.005,
            "high": close + 0.02,
            "low": close - 0.02,
            "close": close,
            "volume": 1000.0 + np.arange(len(minutes)),
            "vwap": close,
            "trade_count": 10,
        }  # fmt: skip
    )
    frame = frame.drop(index=list(drop)).reset_index(drop=True)
    return core_bars.conform(frame, source="test")


def test_conform_gives_exact_columns_and_dtypes():
    bars = make_bars(n=3)
    assert list(bars.columns) == core_bars.BAR_COLUMNS
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert str(bars["trade_count"].dtype) == "Int64"
    assert bars["is_filled"].tolist() == [False] * 3
    assert set(bars["source"]) == {"test"}


def test_validation_drops_and_counts_each_bad_row_once():
    bars = make_bars(n=10)
    bars.loc[0, "low"] = bars.loc[0, "close"] + 1  # inconsistent
    bars.loc[1, "open"] = -1.0  # non-positive price (also inconsistent: counted once)
    bars.loc[2, "volume"] = -5  # negative volume
    bars.loc[3, "close"] = np.nan  # missing value
    outside = bars.iloc[[4]].assign(ts=pd.Timestamp("2024-03-08 21:00", tz="UTC"))
    duplicate = bars.iloc[[5]].assign(close=bars.loc[5, "close"] + 0.001)
    frame = pd.concat([bars, outside, duplicate], ignore_index=True)
    clean, report = core_bars.validate_bars(frame)
    assert report.dropped == {
        "missing_values": 1,
        "nonpositive_price": 1,
        "negative_volume": 1,
        "ohlc_inconsistent": 1,
        "outside_session": 1,
        "duplicate_ts": 1,
    }
    assert report.total == 6
    assert len(clean) == 6
    assert clean["ts"].is_unique
    # the first copy of a duplicated minute is the one kept
    kept = clean.loc[clean["ts"] == bars.loc[5, "ts"], "close"].item()
    assert kept == bars.loc[5, "close"]


def test_merge_keeps_stored_real_bars_and_adds_only_missing_ones():
    stored = make_bars(n=5, drop=[2])
    incoming = make_bars(n=5, price=200.0)  # different prices for the same minutes
    merged = core_bars.merge_bars(stored, incoming)
    assert merged["ts"].tolist() == make_bars(n=5)["ts"].tolist()
    assert merged["close"].round(2).tolist() == [100.0, 100.01, 200.02, 100.03, 100.04]


def test_merge_replaces_filled_bars_with_real_ones_but_not_the_reverse():
    real = make_bars(n=3)
    filled = real.assign(close=real["close"] + 5, is_filled=True, source="fill")
    assert core_bars.merge_bars(filled, real)["is_filled"].tolist() == [False] * 3
    assert core_bars.merge_bars(real, filled)["close"].tolist() == real["close"].tolist()


def test_missing_minutes_are_counted_inside_sessions_only():
    bars = make_bars(drop=[0, 100, 389])
    missing = core_bars.missing_minutes(bars, [DAY, dt.date(2024, 3, 9)])  # Saturday
    assert list(missing) == [calendar.session_minutes(DAY)[i] for i in (0, 100, 389)]
    assert core_bars.missing_by_day(bars, [DAY, dt.date(2024, 3, 11)]) == {
        DAY: 3, dt.date(2024, 3, 11): 390
    }  # fmt: skip


def test_fill_gaps_uses_the_mean_of_adjacent_bars_and_flags_them():
    bars = make_bars(n=None, drop=[10])
    filled = core_bars.fill_gaps(bars, [DAY])
    row = filled.iloc[10]
    assert row["is_filled"] and row["source"] == "fill"
    assert row["close"] == pytest.approx((bars.iloc[9]["close"] + bars.iloc[10]["close"]) / 2)
    assert row["volume"] == (bars.iloc[9]["volume"] + bars.iloc[10]["volume"]) / 2
    assert row["trade_count"] == 10
    assert len(filled) == 390 and filled["is_filled"].sum() == 1


def test_fill_gaps_closes_runs_from_both_ends_per_iteration():
    bars = make_bars(drop=range(20, 25))  # a run of five
    one = core_bars.fill_gaps(bars, [DAY], max_iterations=1)
    assert one["is_filled"].sum() == 2
    two = core_bars.fill_gaps(bars, [DAY], max_iterations=2)
    assert two["is_filled"].sum() == 4
    full = core_bars.fill_gaps(bars, [DAY], max_iterations=3)
    assert full["is_filled"].sum() == 5
    assert core_bars.missing_minutes(full, [DAY]).empty
    # iterations continue from a partly filled frame: 1 + 2 == 3
    assert core_bars.fill_gaps(one, [DAY], max_iterations=2).equals(full)


def test_fill_gaps_is_idempotent_and_never_crosses_sessions():
    friday = make_bars(drop=[389])  # last minute of Friday
    monday = make_bars(day=dt.date(2024, 3, 11), drop=[0])  # first minute of Monday
    both = pd.concat([friday, monday], ignore_index=True)
    days = [DAY, dt.date(2024, 3, 11)]
    once = core_bars.fill_gaps(both, days)
    assert once.loc[once["is_filled"], "close"].tolist() == [
        friday.iloc[388]["close"], monday.iloc[0]["close"]
    ]  # fmt: skip
    assert core_bars.fill_gaps(once, days).equals(once)
    assert core_bars.validate_bars(once)[1].total == 0


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 389), max_size=60), st.integers(1, 400))
def test_fills_are_ohlc_consistent_and_inside_the_session(dropped, iterations):
    bars = make_bars(drop=sorted(dropped))
    filled = core_bars.fill_gaps(bars, [DAY], max_iterations=iterations)
    _, report = core_bars.validate_bars(filled)
    assert report.total == 0
    if len(dropped) < 390:
        assert len(filled) + len(core_bars.missing_minutes(filled, [DAY])) == 390


def reference_resample(bars, minutes):
    """A straightforward aggregation: walk the bars, start a new bucket at every boundary."""
    out = {}
    for row in bars.itertuples():
        open_ = calendar.session_bounds(row.ts.tz_convert("America/New_York").date())[0]
        if minutes is None:
            start = open_
        else:
            offset = int((row.ts - open_).total_seconds() // 60)
            start = open_ + pd.Timedelta(minutes=offset - offset % minutes)
        b = out.setdefault(start, {"open": row.open, "high": row.high, "low": row.low,
                                   "volume": 0.0, "pv": 0.0, "n": 0})  # fmt: skip
        b["high"], b["low"] = max(b["high"], row.high), min(b["low"], row.low)
        b["close"] = row.close
        b["volume"] += row.volume
        b["pv"] += row.vwap * row.volume
        b["n"] += 1
    return out


@pytest.mark.parametrize(
    ("interval", "minutes"), [("5m", 5), ("15m", 15), ("1h", 60), ("1d", None)]
)
def test_resample_matches_reference_aggregation(interval, minutes):
    days = [DAY, dt.date(2024, 3, 11), dt.date(2024, 7, 3)]  # DST change and a half day
    bars = pd.concat([make_bars(day=d, drop=[3, 4, 200]) for d in days], ignore_index=True)
    derived = core_bars.resample_bars(bars, interval)
    expected = reference_resample(bars, minutes)
    assert derived["ts"].tolist() == sorted(expected)
    for row in derived.itertuples():
        b = expected[row.ts]
        assert (row.open, row.high, row.low, row.close) == (
            b["open"],
            b["high"],
            b["low"],
            b["close"],
        )
        assert row.volume == pytest.approx(b["volume"], rel=1e-12)
        assert row.vwap == pytest.approx(b["pv"] / b["volume"], rel=1e-12)
        assert row.minutes == b["n"]


def test_hourly_buckets_start_at_half_past_and_half_day_ends_early():
    derived = core_bars.resample_bars(make_bars(day=dt.date(2024, 7, 3)), "1h")
    local = derived["ts"].dt.tz_convert("America/New_York").dt.strftime("%H:%M").tolist()
    assert local == ["09:30", "10:30", "11:30", "12:30"]
    assert derived["minutes"].tolist() == [60, 60, 60, 30]


def test_day_slices_and_missing_counts_ignore_non_sessions():
    bars = pd.concat([make_bars(drop=[0]), make_bars(day=dt.date(2024, 3, 11))], ignore_index=True)
    saturday, monday = dt.date(2024, 3, 9), dt.date(2024, 3, 11)
    slices = core_bars.day_slices(bars["ts"], [DAY, saturday, monday])
    assert (slices[DAY], slices[monday]) == ((0, 389), (389, 779))
    assert slices[saturday][0] == slices[saturday][1]  # empty
    assert core_bars.missing_by_day(bars, [DAY, saturday, monday]) == {
        DAY: 1,
        saturday: 0,
        monday: 0,
    }
