"""The `csv` provider on real exported files (../shared/data/real) and on broken ones.

Expected rows are computed independently of the provider: with the csv module, plain
datetime arithmetic and zoneinfo, never with pandas or the project's calendar.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw
from stock_assets.providers.csv import CsvProvider, CsvReport

ET, UTC = ZoneInfo("America/New_York"), dt.UTC
SPY_2024 = "SPY_1min_2024-02-20_2024-05-17.csv"
WEEK_2019 = (dt.date(2019, 2, 11), dt.date(2019, 2, 15))
OPEN, CLOSE = dt.time(9, 30), dt.time(16, 0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _bar_open_utc(text: str, label_end: bool) -> dt.datetime:
    """The bar-open UTC time of one file row (naive text is ET)."""
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ET)
    if label_end:
        stamp = stamp - dt.timedelta(minutes=1)
    return stamp.astimezone(UTC)


def _regular(stamp: dt.datetime) -> bool:
    return OPEN <= stamp.astimezone(ET).time() < CLOSE


def _expected(path: Path, label_end: bool) -> dict[dt.datetime, dict[str, str]]:
    """Regular-hours rows of a file by bar-open UTC time (these files have no half days)."""
    rows = {_bar_open_utc(row["datetime"], label_end): row for row in _rows(path)}
    return {stamp: row for stamp, row in rows.items() if _regular(stamp)}


def _stamps(bars: pd.DataFrame) -> list[dt.datetime]:
    return [stamp.to_pydatetime() for stamp in bars["ts"]]


def _per_day(stamps: list[dt.datetime]) -> Counter:
    return Counter(stamp.astimezone(ET).date() for stamp in stamps)


def test_2019_end_labels_become_bar_open_times(real_data: Path):
    path = real_data / "SPY_1min_2019-02-11_2019-02-15.csv"
    bars = CsvProvider(path, label="end").fetch("SPY", WEEK_2019[0], WEEK_2019[0])
    assert list(bars.columns) == RAW_COLUMNS and bars.dtypes.equals(empty_raw().dtypes)
    expected = pd.date_range("2019-02-11 14:30", "2019-02-11 20:59", freq="min", tz="UTC")
    assert pd.DatetimeIndex(bars["ts"]).equals(expected)
    by_time = {row["datetime"]: row for row in _rows(path)}
    for index, label in [(0, "2019-02-11 09:31:00"), (389, "2019-02-11 16:00:00")]:
        row = by_time[label]
        got = bars.iloc[index]
        assert [got[k] for k in ["open", "high", "low", "close", "volume"]] == [
            float(row[k]) for k in ["open", "high", "low", "close", "volume"]
        ]
    assert bars["vwap"].isna().all() and bars["trade_count"].isna().all()


@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "AAPL", "MSFT", "TSLA", "VIX", "VXXB"])
def test_2019_files_keep_every_real_minute_and_invent_none(real_data: Path, symbol: str):
    path = real_data / f"{symbol}_1min_2019-02-11_2019-02-15.csv"
    expected = _expected(path, label_end=True)
    bars = CsvProvider(path, label="end").fetch(symbol, *WEEK_2019)
    assert _stamps(bars) == sorted(expected)
    assert bars["close"].tolist() == [float(expected[s]["close"]) for s in sorted(expected)]


def test_vix_real_missing_minutes_are_preserved(real_data: Path):
    bars = CsvProvider(real_data / "VIX_1min_2019-02-11_2019-02-15.csv", label="end").fetch(
        "VIX", *WEEK_2019
    )
    per_day = _per_day(_stamps(bars))
    assert [per_day[dt.date(2019, 2, day)] for day in range(11, 16)] == [387, 383, 386, 381, 386]
    assert bars["ts"].iloc[0] == pd.Timestamp("2019-02-11 14:31", tz="UTC")  # 09:31 ET open
    assert (bars["volume"] == 0).all()


def test_label_start_reads_the_same_rows_as_bar_opens(real_data: Path):
    path = real_data / "SPY_1min_2019-02-11_2019-02-15.csv"
    bars = CsvProvider(path, label="start").fetch("SPY", WEEK_2019[0], WEEK_2019[0])
    assert len(bars) == 389  # 09:31 .. 15:59 as opens; the 16:00 row is after the close
    assert bars["ts"].iloc[0] == pd.Timestamp("2019-02-11 14:31", tz="UTC")


def test_directory_serves_each_symbol_from_its_file_name(real_data: Path, tmp_path: Path):
    for path in real_data.glob("*_1min_2019-02-11_2019-02-15.csv"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not a csv")
    provider = CsvProvider(tmp_path, label="end")
    for symbol in ["QQQ", "vxxb"]:
        path = tmp_path / f"{symbol.upper()}_1min_2019-02-11_2019-02-15.csv"
        bars = provider.fetch(symbol, *WEEK_2019)
        assert _stamps(bars) == sorted(_expected(path, label_end=True))
    assert provider.fetch("IBM", *WEEK_2019).empty


def test_spy_2024_keeps_regular_hours_across_dst_and_holidays(real_data: Path):
    path = real_data / SPY_2024
    expected = _expected(path, label_end=False)
    bars = CsvProvider(path).fetch("SPY", dt.date(2024, 2, 1), dt.date(2024, 6, 1))
    assert _stamps(bars) == sorted(expected)
    per_day = _per_day(_stamps(bars))
    assert per_day == _per_day(list(expected)) and len(per_day) == 63
    assert set(per_day.values()) == {390}
    assert dt.date(2024, 3, 29) not in per_day
    first = {day: min(s for s in expected if s.astimezone(ET).date() == day) for day in per_day}
    assert first[dt.date(2024, 3, 8)].time() == dt.time(14, 30)
    assert first[dt.date(2024, 3, 11)].time() == dt.time(13, 30)
    rows = [expected[s] for s in sorted(expected)]
    assert bars["vwap"].tolist() == [float(row["vwap"]) for row in rows]
    assert bars["trade_count"].tolist() == [float(row["transactions"]) for row in rows]
    assert bars["volume"].tolist() == [float(row["volume"]) for row in rows]


def test_spy_2024_ranges_select_whole_sessions(real_data: Path):
    provider = CsvProvider(real_data / SPY_2024)
    assert provider.fetch("SPY", dt.date(2024, 3, 29), dt.date(2024, 3, 29)).empty
    around_dst = provider.fetch("SPY", dt.date(2024, 3, 8), dt.date(2024, 3, 11))
    assert len(around_dst) == 780
    assert around_dst["ts"].iloc[[0, 389, 390, 779]].tolist() == [
        pd.Timestamp(text, tz="UTC")
        for text in ["2024-03-08 14:30", "2024-03-08 20:59", "2024-03-11 13:30", "2024-03-11 19:59"]
    ]
    assert provider.fetch("SPY", dt.date(2019, 1, 1), dt.date(2019, 12, 31)).empty


def test_parsed_files_are_cached_until_they_change(
    real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "SPY.csv"
    shutil.copy(real_data / SPY_2024, path)
    reads = []
    original = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: reads.append(a) or original(*a, **k))
    provider = CsvProvider(path)
    for day in range(4, 9):
        assert len(provider.fetch("SPY", dt.date(2024, 3, day), dt.date(2024, 3, day))) == 390
    count = len(reads)
    provider.fetch("SPY", dt.date(2024, 4, 1), dt.date(2024, 4, 30))
    assert len(reads) == count
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:100]) + "\n")
    assert provider.fetch("SPY", dt.date(2024, 3, 4), dt.date(2024, 3, 4)).empty
    assert len(reads) > count


def test_any_row_order_gives_sorted_bars(tmp_path: Path):
    lines = [
        "Timestamp,O,H,L,C,V,VW,N",
        "2024-03-05T14:32:00Z,10.2,10.3,10.1,10.2,300,10.2,3",
        "2024-03-05T14:30:00Z,10.0,10.1,9.9,10.0,100,10.0,1",
        "2024-03-05T21:00:00Z,10.0,10.1,9.9,10.0,100,10.0,1",
        "2024-03-05T14:31:00Z,10.1,10.2,10.0,10.1,200,10.1,2",
    ]
    (tmp_path / "ABC_export.csv").write_text("\n".join(lines))
    bars = CsvProvider(tmp_path).fetch("ABC", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert bars["ts"].dt.minute.tolist() == [30, 31, 32]
    assert bars["volume"].tolist() == [100.0, 200.0, 300.0]
    assert bars["trade_count"].tolist() == [1.0, 2.0, 3.0]


def test_split_date_and_time_columns_and_timezone_option(tmp_path: Path):
    path = tmp_path / "prices.csv"
    path.write_text("Date,Time,Open,High,Low,Close,Volume\n2024-03-05,14:30,1,2,1,2,10\n")
    utc = CsvProvider(path, timezone="UTC", symbol="xyz")
    assert utc.fetch("XYZ", dt.date(2024, 3, 5), dt.date(2024, 3, 5))["ts"].tolist() == [
        pd.Timestamp("2024-03-05 14:30", tz="UTC")
    ]
    eastern = CsvProvider(path, symbol="XYZ").fetch("XYZ", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert eastern["ts"].tolist() == [pd.Timestamp("2024-03-05 19:30", tz="UTC")]


def test_symbol_column_serves_each_symbol(tmp_path: Path):
    lines = ["symbol,datetime,open,high,low,close,volume"]
    for minute in range(3):
        stamp = f"2024-03-05 09:3{minute}:00-05:00"
        lines += [f"SPY,{stamp},500,501,499,500.5,{minute + 1}", f"qqq,{stamp},430,431,429,430,7"]
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    day = dt.date(2024, 3, 5)
    for provider in [CsvProvider(path), CsvProvider(tmp_path)]:
        spy, qqq = provider.fetch("SPY", day, day), provider.fetch("QQQ", day, day)
        assert spy["volume"].tolist() == [1.0, 2.0, 3.0] and (spy["open"] == 500).all()
        assert qqq["volume"].tolist() == [7.0] * 3 and (qqq["open"] == 430).all()
        assert spy["ts"].tolist() == qqq["ts"].tolist()
        assert provider.fetch("IWM", day, day).empty


def test_missing_path_raises_provider_error(tmp_path: Path):
    with pytest.raises(ProviderError, match="nowhere"):
        CsvProvider(tmp_path / "nowhere").fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))


def test_corrupt_file_raises_provider_error_naming_it(tmp_path: Path):
    path = tmp_path / "SPY_garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ProviderError, match="SPY_garbage.csv"):
        CsvProvider(path).fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))


def test_missing_column_names_the_column_and_the_file(tmp_path: Path):
    path = tmp_path / "SPY.csv"
    path.write_text("datetime,open,high,low,volume\n2024-03-05 09:30:00,1,2,1,10\n")
    with pytest.raises(ProviderError, match=r"SPY\.csv: no 'close' column"):
        CsvProvider(path).fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    path.write_text("when,open,high,low,close,volume\nmonday,1,2,1,1,10\n")
    with pytest.raises(ProviderError, match=r"SPY\.csv: no timestamp column"):
        CsvProvider(path).fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))


def _write(path: Path, rows: list[str], header: str = "datetime,open,high,low,close,volume"):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


DAY = dt.date(2024, 3, 5)


def test_offsets_on_some_rows_only_make_the_file_unusable(tmp_path: Path):
    stamps = ["2024-03-05 09:30:00-05:00", "2024-03-05 09:31:00"]
    path = _write(tmp_path / "SPY.csv", [f"{s},1,2,1,1,10" for s in stamps])
    with pytest.raises(ProviderError) as caught:
        CsvProvider(path).fetch("SPY", DAY, DAY)
    assert str(caught.value) == "SPY.csv: timestamps mix values with and without UTC offset"


def test_a_file_of_unreadable_timestamps_is_unusable(tmp_path: Path):
    path = _write(tmp_path / "SPY.csv", ["monday,1,2,1,1,10", "tuesday,1,2,1,1,10"])
    with pytest.raises(ProviderError) as caught:
        CsvProvider(path).fetch("SPY", DAY, DAY)
    assert str(caught.value) == (
        "SPY.csv: unparseable timestamps: none of 2 row(s) can be read (first: line 2 'monday')"
    )


def test_rows_with_bad_timestamps_or_numbers_are_dropped_counted_and_named(tmp_path: Path):
    rows = [
        "2024-03-05 09:30:00,1,2,1,1.5,10",
        "not a time,1,2,1,1,10",
        ",1,2,1,1,10",
        "2024-03-05 09:31:00,1,2,1,abc,10",
        "2024-03-05 09:32:00,1,2,1,1.5,",
        "2024/03/05 09:33:00,1,2,1,1.5,30",
        "2024-03-05 09:34:00,1,x,1,y,30",
        "2024-03-05 20:00:00,1,2,1,1.5,30",
    ]
    provider = CsvProvider(_write(tmp_path / "SPY.csv", rows))
    bars = provider.fetch("SPY", DAY, DAY)

    assert bars["ts"].dt.strftime("%H:%M").tolist() == ["14:30", "14:32", "14:33"]
    assert bars["volume"].isna().tolist() == [False, True, False]  # blank: the validator's
    assert provider.dropped == {"bad_timestamp": 2, "bad_number": 2, "outside_session": 1}
    assert provider.problems == [
        "SPY.csv: 1 row(s) dropped: no timestamp (first: line 4 '')",
        "SPY.csv: 1 row(s) dropped: unparseable timestamp (first: line 3 'not a time')",
        "SPY.csv: 1 row(s) dropped: high is not a number (first: line 8 high='x')",
        "SPY.csv: 1 row(s) dropped: close is not a number (first: line 5 close='abc')",
    ]
    assert provider.last_report == CsvReport(
        files=1, rows=3, dropped=provider.dropped, problems=provider.problems
    )


def test_an_offset_beyond_14_hours_drops_its_row(tmp_path: Path):
    stamps = ["2024-03-05 09:30:00-05:00", "2024-03-05 09:31:00+25:00", "2024-03-05 14:32:00Z"]
    provider = CsvProvider(_write(tmp_path / "SPY.csv", [f"{s},1,2,1,1,10" for s in stamps]))

    bars = provider.fetch("SPY", DAY, DAY)

    assert bars["ts"].dt.strftime("%H:%M").tolist() == ["14:30", "14:32"]
    assert provider.dropped == {"bad_timestamp": 1}
    assert provider.problems == [
        "SPY.csv: 1 row(s) dropped: UTC offset beyond +-14:00 "
        "(first: line 3 '2024-03-05 09:31:00+25:00')"
    ]


def test_naive_utc_times_read_as_new_york_time_get_a_timezone_hint(tmp_path: Path, json_logs):
    minutes = pd.date_range("2024-03-05 14:30", "2024-03-05 20:59", freq="min")
    path = _write(tmp_path / "SPY.csv", [f"{t:%Y-%m-%d %H:%M:%S},1,2,1,1,10" for t in minutes])
    hint = (
        "SPY.csv: 300 of 390 rows (76%) fall outside the regular session read as "
        "America/New_York time; read as UTC time, 390 would be inside: pass timezone='UTC' "
        "(--csv-tz UTC)"
    )

    provider = CsvProvider(path)
    assert len(provider.fetch("SPY", DAY, DAY)) == 90
    assert provider.dropped == {"outside_session": 300}
    assert provider.problems == [hint]
    warnings = [line for line in json_logs.getvalue().splitlines() if '"WARNING"' in line]
    assert len(warnings) == 1 and hint in warnings[0]

    utc = CsvProvider(path, timezone="UTC")
    assert len(utc.fetch("SPY", DAY, DAY)) == 390
    assert utc.problems == [] and utc.dropped == {}


def test_offsets_that_put_every_row_outside_the_session_get_a_hint(tmp_path: Path):
    stamps = ["2024-03-05 09:30:00+05:00", "2024-03-05 09:31:00+05:00"]
    provider = CsvProvider(_write(tmp_path / "SPY.csv", [f"{s},1,2,1,1,10" for s in stamps]))

    assert provider.fetch("SPY", DAY, DAY).empty
    assert provider.problems == [
        "SPY.csv: 2 of 2 rows (100%) fall outside the regular session with their UTC "
        "offsets; without them, as America/New_York time, 2 would be inside: check the offsets"
    ]


def test_extended_hours_with_offsets_get_no_hint_and_count_what_is_outside(real_data: Path):
    path = real_data / SPY_2024
    provider = CsvProvider(path)
    bars = provider.fetch("SPY", dt.date(2024, 2, 1), dt.date(2024, 6, 1))

    outside = len(_rows(path)) - len(_expected(path, label_end=False))
    assert provider.problems == []
    assert provider.dropped == {"outside_session": outside}
    assert outside == 25150 and len(bars) == 24570


def test_a_header_only_file_is_a_one_line_reason(tmp_path: Path):
    path = _write(tmp_path / "SPY.csv", [])
    with pytest.raises(ProviderError) as caught:
        CsvProvider(path).fetch("SPY", DAY, DAY)
    assert str(caught.value) == "SPY.csv: no rows after the header"


def test_broken_files_in_a_folder_do_not_sink_the_others(tmp_path: Path):
    good = [f"2024-03-05 09:3{minute}:00,1,2,1,1,10" for minute in range(3)]
    _write(tmp_path / "SPY.csv", good)
    _write(tmp_path / "DIA.csv", [*good, "half past nine,1,2,1,1,10"])
    _write(tmp_path / "QQQ.csv", [])
    _write(tmp_path / "IWM.csv", ["2024-03-05 09:30:00-05:00,1,2,1,1,10", good[1]])
    _write(tmp_path / "2024 export.csv", good)
    (tmp_path / "AAPL_garbage.csv").write_bytes(bytes(range(256)) * 40)
    odd = (
        "2024 export.csv: cannot tell which symbol it holds; name it SYMBOL.csv or "
        "SYMBOL_....csv, add a symbol column, or pass symbol="
    )
    provider = CsvProvider(tmp_path)

    assert len(provider.fetch("SPY", DAY, DAY)) == 3
    assert provider.problems == [odd] and provider.dropped == {}
    assert len(provider.fetch("DIA", DAY, DAY)) == 3
    assert provider.dropped == {"bad_timestamp": 1}
    assert provider.problems == [
        odd,
        "DIA.csv: 1 row(s) dropped: unparseable timestamp (first: line 5 'half past nine')",
    ]
    assert provider.fetch("IBM", DAY, DAY).empty
    assert provider.problems == [odd]
    for symbol, reason in [
        ("QQQ", "QQQ.csv: no rows after the header"),
        ("IWM", "IWM.csv: timestamps mix values with and without UTC offset"),
    ]:
        with pytest.raises(ProviderError) as caught:
            provider.fetch(symbol, DAY, DAY)
        assert str(caught.value) == reason
        assert provider.problems == [odd, reason]
    with pytest.raises(ProviderError, match=r"^AAPL_garbage\.csv: unreadable CSV \("):
        provider.fetch("AAPL", DAY, DAY)


def test_a_symbol_column_file_that_breaks_fails_every_symbol_it_might_hold(tmp_path: Path):
    header = "symbol,datetime,open,high,low,close,volume"
    _write(
        tmp_path / "bars.csv", ["SPY,2024-03-05 09:30:00,1,2,1,1,10", "../x,2024,1,1,1,1,1"], header
    )
    _write(tmp_path / "QQQ.csv", ["2024-03-05 09:30:00,1,2,1,1,10"])
    provider = CsvProvider(tmp_path)
    reason = (
        "bars.csv: bad value in column 'symbol': '../x': symbols are 1-10 of A-Z 0-9 . - "
        "starting with a letter"
    )

    assert len(provider.fetch("QQQ", DAY, DAY)) == 1
    assert provider.problems == [reason]
    with pytest.raises(ProviderError) as caught:
        provider.fetch("SPY", DAY, DAY)
    assert str(caught.value) == reason


def test_file_without_a_symbol_needs_the_option(tmp_path: Path):
    path = tmp_path / "1min_export.csv"
    path.write_text("ts,open,high,low,close,volume\n2024-03-05 09:30:00,1,2,1,1,10\n")
    with pytest.raises(ProviderError, match="cannot tell which symbol"):
        CsvProvider(path).fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    bars = CsvProvider(path, symbol="spy").fetch("SPY", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert len(bars) == 1


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="label"):
        CsvProvider("x.csv", label="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        CsvProvider("x.csv", timezone="Mars/Olympus")
    assert CsvProvider("x.csv").name == "csv"
