from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stock_assets.core import calendar

D = dt.date


@pytest.mark.parametrize("day", [D(2024, 7, 3), D(2024, 11, 29), D(2019, 12, 24)])
def test_half_days_have_210_minutes_closing_at_13_et(day):
    minutes = calendar.session_minutes(day)
    assert len(minutes) == 210
    local = minutes.tz_convert("America/New_York")
    assert (local[0].hour, local[0].minute) == (9, 30)
    assert (local[-1].hour, local[-1].minute) == (12, 59)


@pytest.mark.parametrize("day", [D(2024, 3, 29), D(2025, 1, 9), D(2024, 7, 4), D(2024, 3, 9)])
def test_holidays_mourning_days_and_weekends_are_not_sessions(day):
    assert not calendar.is_session(day)
    assert len(calendar.session_minutes(day)) == 0


def test_regular_session_is_390_minutes_labelled_by_bar_start():
    minutes = calendar.session_minutes(D(2024, 3, 8))
    assert len(minutes) == 390
    assert minutes[0] == pd.Timestamp("2024-03-08 14:30", tz="UTC")
    assert minutes[-1] == pd.Timestamp("2024-03-08 20:59", tz="UTC")


def test_march_dst_change_moves_the_utc_open_by_one_hour():
    before = calendar.session_bounds(D(2024, 3, 8))
    after = calendar.session_bounds(D(2024, 3, 11))
    assert before[0] == pd.Timestamp("2024-03-08 14:30", tz="UTC")
    assert after[0] == pd.Timestamp("2024-03-11 13:30", tz="UTC")
    assert after[1] == pd.Timestamp("2024-03-11 20:00", tz="UTC")
    assert len(calendar.session_minutes(D(2024, 3, 11))) == 390


def test_sessions_in_range_skip_holidays_and_weekends():
    days = calendar.sessions(D(2024, 3, 27), D(2024, 4, 2))
    assert days == [D(2024, 3, 27), D(2024, 3, 28), D(2024, 4, 1), D(2024, 4, 2)]
    assert len(calendar.sessions(D(2024, 1, 1), D(2024, 12, 31))) == 252


def test_previous_sessions_are_strictly_before():
    assert calendar.previous_sessions(D(2024, 4, 1), 2) == [D(2024, 3, 27), D(2024, 3, 28)]


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("2024-13-01", "2024-12-31", "YYYY-MM-DD"),
        ("yesterday", "2024-12-31", "YYYY-MM-DD"),
        ("2024-05-02", "2024-05-01", "after end"),
        ("1990-01-02", "2024-05-01", "between"),
    ],
)
def test_bad_dates_raise_invalid_date(start, end, fragment):
    with pytest.raises(calendar.InvalidDate, match=fragment):
        calendar.parse_range(start, end)
