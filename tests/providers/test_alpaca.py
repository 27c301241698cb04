"""AlpacaProvider through the real alpaca-py client against the local fake Alpaca server."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import socket
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stock_assets.core import calendar
from stock_assets.providers.alpaca import (
    AlpacaProvider,
    RetryPolicy,
    alpaca_keys_from_env,
    bars_frame,
    normalize_data_url,
    parse_feed,
)
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw
from stock_assets.testing import FakeAlpacaServer, FakeClock, Fault, generated_bars

KEY, SECRET = "PKTEST7QX2KEYID", "sEcReT-9f8e7d6c5b4a"
# Five sessions across the 2024 DST change (Mar 10): opens at 14:30 UTC, then 13:30 UTC.
START, END = dt.date(2024, 3, 6), dt.date(2024, 3, 12)


def extended_bars(symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return generated_bars(symbol, start, end, extended_hours=True)


def expected_bars(
    server: FakeAlpacaServer, symbol: str, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """The server's own bars for the sessions' window, regular-session minutes only."""
    days = calendar.sessions(start, end)
    window = calendar.session_bounds(days[0])[0], calendar.session_bounds(days[-1])[1]
    source = server.source(symbol, *window)
    inside = source["ts"].isin(calendar.sessions_minutes(days))
    return source.loc[inside, RAW_COLUMNS].reset_index(drop=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[FakeAlpacaServer]:
    with FakeAlpacaServer(
        api_key=KEY, secret_key=SECRET, bars_for=extended_bars, clock=clock.time, max_page_size=500
    ) as fake:
        yield fake


def make_provider(
    url: str, clock: FakeClock, key: str = KEY, secret: str = SECRET, **policy: float
) -> AlpacaProvider:
    return AlpacaProvider(
        key,
        secret,
        data_url=url,
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=clock.sleep,
        clock=clock.time,
        rng=random.Random(7),
    )


def test_pages_arrive_exactly_once_and_only_regular_session_minutes_remain(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    frame = make_provider(server.url, clock).fetch("SPY", START, END)

    pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
    assert len(frame) == 5 * 390 and frame["ts"].is_unique
    pages = server.requests
    assert len(pages) >= 4 and all(page.status == 200 for page in pages)
    tokens = [page.params.get("page_token") for page in pages]
    assert tokens[0] is None and len(set(tokens)) == len(tokens)
    assert clock.sleeps == []


def test_fetch_sends_the_window_feed_and_raw_minute_bars(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    make_provider(server.url, clock).fetch("SPY", START, END)

    params = server.requests[0].params
    assert server.requests[0].path == "/v2/stocks/bars"
    assert params == {
        "symbols": "SPY",
        "timeframe": "1Min",
        "adjustment": "raw",
        "feed": "iex",
        "start": "2024-03-06T14:30:00+00:00",
        "end": "2024-03-12T19:59:00+00:00",
        "limit": "10000",
    }


def test_429_and_a_500_mid_way_are_retried_without_losing_or_repeating_pages(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {2: Fault(429, retry_after=2), 4: Fault(500)}

    frame = make_provider(server.url, clock).fetch("SPY", START, END)

    pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
    log = server.requests
    assert [r.status for r in log[:5]] == [200, 429, 200, 500, 200]
    assert log[1].params["page_token"] == log[2].params["page_token"]
    assert log[3].params["page_token"] == log[4].params["page_token"]
    assert clock.sleeps[0] == 2.0  # Retry-After, to the second
    assert 0.25 <= clock.sleeps[1] < 0.5  # first backoff: 0.5 s with jitter in [0.5, 1)
    assert len(clock.sleeps) == 2


def test_a_page_cut_short_mid_body_is_requested_again(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {2: Fault(cut_body=True)}

    frame = make_provider(server.url, clock).fetch("SPY", START, END)

    pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
    log = server.requests
    assert log[1].params["page_token"] == log[2].params["page_token"]
    assert len(clock.sleeps) == 1


def test_a_malformed_json_page_is_requested_again_and_no_page_is_lost_or_doubled(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {1: Fault(malformed=True), 3: Fault(malformed=True)}

    frame = make_provider(server.url, clock).fetch("SPY", START, END)

    pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
    log = server.requests
    tokens = [r.params.get("page_token") for r in log]
    assert tokens[0] is None and tokens[1] is None
    assert tokens[2] == tokens[3] and tokens[2] is not None
    assert len(tokens) == len(set(tokens)) + 2
    assert len(clock.sleeps) == 2


def test_malformed_pages_until_retries_run_out_fail_with_the_reason(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {n: Fault(malformed=True) for n in range(1, 20)}

    with pytest.raises(ProviderError) as caught:
        make_provider(server.url, clock, max_retries=2).fetch("SPY", START, END)

    message = str(caught.value)
    assert message.startswith(
        "alpaca: SPY 2024-03-06..2024-03-12: HTTP 200 after 3 attempt(s): malformed JSON page ("
    )
    assert message.endswith("); retries exhausted")
    assert KEY not in message and SECRET not in message
    assert len(server.requests) == 3 and len(clock.sleeps) == 2


def test_a_page_trickled_past_its_request_deadline_is_requested_again(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {2: Fault(trickle_s=0.05)}
    provider = make_provider(server.url, clock, request_deadline_s=0.5)

    began = time.monotonic()
    frame = provider.fetch("SPY", START, END)
    elapsed = time.monotonic() - began

    pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
    log = server.requests
    assert log[1].params["page_token"] == log[2].params["page_token"]
    assert len(clock.sleeps) == 1
    assert 0.5 <= elapsed < 10  # cut at its deadline: the whole body would take hours


def test_a_trickling_server_fails_the_fetch_cleanly_within_its_deadline(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {n: Fault(trickle_s=0.05) for n in range(1, 20)}
    provider = make_provider(
        server.url, clock, request_deadline_s=0.8, fetch_deadline_s=2.0, backoff_base_s=0.05
    )

    began = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.fetch("SPY", START, END)
    elapsed = time.monotonic() - began

    assert 2.0 <= elapsed <= 2.0 * 1.1
    assert str(caught.value) == (
        "alpaca: SPY 2024-03-06..2024-03-12: no answer after 3 attempt(s): the fetch deadline "
        "of 2 s passed (0 page(s) received); raise RetryPolicy.fetch_deadline_s or fetch "
        "fewer days at a time"
    )
    log = server.requests
    assert len(log) == 3 and {r.params.get("page_token") for r in log} == {None}
    assert len(clock.sleeps) == 2


def test_a_read_waiting_for_the_next_byte_is_cut_at_the_fetch_deadline(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    provider = make_provider(server.url, clock, request_deadline_s=60, fetch_deadline_s=2.0)
    assert len(provider.fetch("SPY", START, START)) == 390  # warm: the deadline is all I/O
    server.faults = {2: Fault(trickle_s=1.5)}  # bytes at 0 s, 1.5 s, 3 s

    began = time.monotonic()
    with pytest.raises(ProviderError, match=r"no answer after 1 attempt\(s\): the fetch deadline"):
        provider.fetch("SPY", START, END)

    assert 2.0 <= time.monotonic() - began <= 2.0 * 1.1
    assert clock.sleeps == []


def test_a_wait_past_the_fetch_deadline_fails_at_once_instead_of_sleeping(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {1: Fault(429, retry_after=10)}

    with pytest.raises(ProviderError) as caught:
        make_provider(server.url, clock, fetch_deadline_s=5).fetch("SPY", START, END)

    assert str(caught.value).startswith(
        "alpaca: SPY 2024-03-06..2024-03-12: HTTP 429 after 1 attempt(s): the wait before "
        "retrying (10.0 s) would pass the fetch deadline of 5 s ("
    )
    assert clock.sleeps == []


def test_spent_rate_limit_pauses_until_reset_before_the_next_request(clock: FakeClock) -> None:
    with FakeAlpacaServer(
        api_key=KEY, secret_key=SECRET, clock=clock.time, max_page_size=400, rate_limit=2
    ) as server:
        frame = make_provider(server.url, clock).fetch("SPY", START, END)
        log = server.requests

    assert len(frame) == 5 * 390
    assert all(r.status == 200 for r in log)  # paused instead of hitting 429
    assert clock.sleeps == [60.0] * ((len(log) - 1) // 2)


def test_server_side_429_waits_retry_after_when_the_client_does_not_pace(
    clock: FakeClock,
) -> None:
    with FakeAlpacaServer(
        api_key=KEY, secret_key=SECRET, clock=clock.time, max_page_size=400, rate_limit=2
    ) as server:
        provider = make_provider(server.url, clock, rate_limit_reserve=-1)
        frame = provider.fetch("SPY", START, END)
        pd.testing.assert_frame_equal(frame, expected_bars(server, "SPY", START, END))
        statuses = [r.status for r in server.requests]

    assert statuses[:4] == [200, 200, 429, 200]
    assert clock.sleeps[0] == 60.0


def test_symbol_without_bars_is_empty_not_an_error(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    frame = make_provider(server.url, clock).fetch("VIX", START, END)

    pd.testing.assert_frame_equal(frame, empty_raw())
    assert [r.status for r in server.requests] == [200]


def test_days_without_sessions_make_no_request(server: FakeAlpacaServer, clock: FakeClock) -> None:
    frame = make_provider(server.url, clock).fetch("SPY", dt.date(2024, 3, 9), dt.date(2024, 3, 10))

    assert frame.empty and list(frame.columns) == RAW_COLUMNS
    assert server.requests == []


def test_half_day_keeps_its_210_minutes(server: FakeAlpacaServer, clock: FakeClock) -> None:
    start, end = dt.date(2024, 11, 27), dt.date(2024, 12, 2)
    frame = make_provider(server.url, clock).fetch("QQQ", start, end)

    pd.testing.assert_frame_equal(frame, expected_bars(server, "QQQ", start, end))
    assert len(frame) == 390 + 210 + 390


def test_retries_are_bounded_and_the_error_names_status_symbol_and_attempts(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {n: Fault(500) for n in range(1, 20)}

    with pytest.raises(ProviderError) as caught:
        make_provider(server.url, clock, max_retries=3).fetch("SPY", START, END)

    message = str(caught.value)
    assert "SPY" in message and "HTTP 500" in message and "4 attempt(s)" in message
    assert KEY not in message and SECRET not in message
    assert len(server.requests) == 4
    for retry, slept in enumerate(clock.sleeps):
        assert 0.5 * 2**retry * 0.5 <= slept < 0.5 * 2**retry
    assert len(clock.sleeps) == 3


def test_a_wait_over_the_budget_fails_at_once_instead_of_sleeping(
    server: FakeAlpacaServer, clock: FakeClock
) -> None:
    server.faults = {1: Fault(429, retry_after=1000)}

    with pytest.raises(ProviderError, match="wait budget"):
        make_provider(server.url, clock, max_total_wait_s=300).fetch("SPY", START, END)
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("key", "secret", "status"), [("PKWRONG00KEY", SECRET, 401), (KEY, "wrong-secret-xyz", 403)]
)
def test_bad_keys_fail_at_once_with_a_hint_and_no_secret(
    server: FakeAlpacaServer, clock: FakeClock, key: str, secret: str, status: int
) -> None:
    with pytest.raises(ProviderError) as caught:
        make_provider(server.url, clock, key=key, secret=secret).fetch("SPY", START, END)

    message = str(caught.value)
    assert f"HTTP {status}" in message and "ALPACA_API_KEY_ID" in message
    for secret_text in (key, secret, KEY, SECRET):
        assert secret_text not in message
    assert len(server.requests) == 1 and clock.sleeps == []


@pytest.mark.parametrize("status", [302, 400, 422])
def test_answers_a_retry_cannot_fix_fail_at_once(
    server: FakeAlpacaServer, clock: FakeClock, status: int
) -> None:
    server.faults = {1: Fault(status)}

    with pytest.raises(ProviderError, match=f"HTTP {status} after 1 attempt"):
        make_provider(server.url, clock).fetch("SPY", START, END)
    assert len(server.requests) == 1 and clock.sleeps == []


def test_unreachable_host_is_retried_then_reported(clock: FakeClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = make_provider(f"http://127.0.0.1:{port}", clock, max_retries=2)

    with pytest.raises(ProviderError, match=r"no answer after 3 attempt\(s\): ConnectionError"):
        provider.fetch("SPY", START, END)
    assert len(clock.sleeps) == 2


def test_logs_are_json_lines_with_context_and_no_secret(
    server: FakeAlpacaServer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: io.StringIO,
) -> None:
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "APCA_API_KEY_ID"):
        monkeypatch.delenv(name, raising=False)  # redaction must not be what hides them
    server.faults = {2: Fault(503)}
    make_provider(server.url, clock).fetch("SPY", START, END)
    with pytest.raises(ProviderError):
        make_provider(server.url, clock, secret="wrong-secret-xyz").fetch("SPY", START, END)

    text = json_logs.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    assert KEY not in text and SECRET not in text and "wrong-secret-xyz" not in text
    fetched = next(e for e in events if e["message"] == "alpaca bars fetched")
    assert fetched["stage"] == "fetch" and fetched["symbol"] == "SPY"
    assert fetched["rows"] == 5 * 390 and fetched["retries"] == 1
    retry = next(e for e in events if e["message"] == "alpaca request failed; retrying")
    assert retry["status"] == 503 and retry["symbol"] == "SPY"
    assert any(e["level"] == "ERROR" and "HTTP 403" in e["message"] for e in events)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    page_size=st.integers(min_value=50, max_value=900),
    faults=st.dictionaries(
        st.integers(min_value=1, max_value=12),
        st.sampled_from(
            [
                Fault(429, retry_after=1),
                Fault(500),
                Fault(502),
                Fault(503),
                Fault(cut_body=True),
                Fault(malformed=True),
            ]
        ),
        max_size=5,
    ),
)
def test_any_page_size_and_fault_schedule_delivers_every_bar_once(
    page_size: int, faults: dict[int, Fault]
) -> None:
    clock = FakeClock()
    start, end = dt.date(2024, 3, 8), dt.date(2024, 3, 11)
    with FakeAlpacaServer(
        api_key=KEY,
        secret_key=SECRET,
        bars_for=extended_bars,
        clock=clock.time,
        max_page_size=page_size,
        faults=faults,
    ) as server:
        frame = make_provider(server.url, clock, max_retries=5).fetch("AAPL", start, end)
        pd.testing.assert_frame_equal(frame, expected_bars(server, "AAPL", start, end))


@pytest.mark.parametrize(
    "env",
    [
        {"ALPACA_API_KEY_ID": "k1", "ALPACA_API_SECRET_KEY": "s1"},
        {"ALPACA_KEY_ID": "k1", "ALPACA_SECRET_KEY": "s1"},
        {"APCA_API_KEY_ID": "k1", "APCA_API_SECRET_KEY": "s1"},
        {"ALPACA_API_KEY_ID": "k1", "APCA_API_KEY_ID": "k2", "APCA_API_SECRET_KEY": "s1"},
    ],
)
def test_keys_come_from_any_alias_pair(env: dict[str, str]) -> None:
    assert alpaca_keys_from_env(env) == ("k1", "s1")


def test_no_keys_is_none_and_half_a_pair_is_an_error_without_the_value() -> None:
    assert alpaca_keys_from_env({}) is None
    with pytest.raises(ValueError, match="ALPACA_API_SECRET_KEY") as caught:
        alpaca_keys_from_env({"ALPACA_KEY_ID": "PKHALFKEY"})
    assert "PKHALFKEY" not in str(caught.value)


def test_from_env_uses_data_url_and_feed(server: FakeAlpacaServer) -> None:
    env = {
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "ALPACA_DATA_URL": server.url + "/v2/",
        "ALPACA_FEED": " SIP ",
    }
    provider = AlpacaProvider.from_env(env)

    assert len(provider.fetch("SPY", START, START)) == 390
    assert server.requests[0].params["feed"] == "sip"
    assert SECRET not in repr(provider) and KEY not in repr(provider)


def test_invalid_feed_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="iex, sip, delayed_sip"):
        AlpacaProvider.from_env(
            {"ALPACA_KEY_ID": KEY, "ALPACA_SECRET_KEY": SECRET, "ALPACA_FEED": "x"}
        )
    assert parse_feed("delayed_sip").value == "delayed_sip"


def test_from_env_without_keys_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY"):
        AlpacaProvider.from_env({})


def test_data_url_is_the_base_alpaca_py_appends_v2_to() -> None:
    assert normalize_data_url("https://data.alpaca.markets/v2/") == "https://data.alpaca.markets"
    assert normalize_data_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert normalize_data_url("") is None


def test_bars_frame_parses_other_time_forms_missing_fields_and_duplicates() -> None:
    bars = [
        {"t": "2024-03-06T14:31:00.000Z", "o": 2, "h": 2, "l": 2, "c": 2, "v": 5},
        {"t": "2024-03-06T09:30:00-05:00", "o": 1, "h": 1, "l": 1, "c": 1, "v": 3, "vw": 1.0},
        {"t": "2024-03-06T14:31:00Z", "o": 9, "h": 9, "l": 9, "c": 9, "v": 9, "n": 1, "vw": 9},
    ]
    frame = bars_frame(bars)

    assert list(frame.columns) == RAW_COLUMNS
    assert list(frame["ts"]) == [
        pd.Timestamp("2024-03-06 14:30", tz="UTC"),
        pd.Timestamp("2024-03-06 14:31", tz="UTC"),
    ]
    assert frame["open"].tolist() == [1.0, 2.0]  # first of a duplicated minute wins
    assert frame["trade_count"].isna().all() and frame["vwap"].tolist()[0] == 1.0
