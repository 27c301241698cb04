"""The live updater against the fake Alpaca server on a fake clock: a whole session run in
seconds, checked bar for bar against a one-shot ingest of the same day afterwards."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.ratelimit import RateBudget
from stock_assets.pipelines.features import DEFAULT_FOLD, build_features, build_regimes
from stock_assets.pipelines.ingest import ingest_symbol
from stock_assets.pipelines.live import LiveWindow, live_tick, live_window
from stock_assets.providers.alpaca import AlpacaProvider, RetryPolicy
from stock_assets.storage.warehouse import Warehouse
from stock_assets.testing.fake_alpaca import FakeAlpacaServer, FakeClock, Fault

KEY, SECRET = "PKLIVEKEYID0000", "live-secret-value-123"
DAY = dt.date(2024, 3, 11)
HISTORY = calendar.previous_sessions(DAY, 2)
SYMBOLS = ["AAPL", "QQQ", "SPY", "VIXY"]
BUDGET = 3  # requests per minute: the 8-minute catch-ups below need pages beyond it


def at(hour: int, minute: int, second: int = 30) -> pd.Timestamp:
    local = pd.Timestamp(dt.datetime(2024, 3, 11, hour, minute, second), tz=calendar.EXCHANGE_TZ)
    return local.tz_convert("UTC")


def provider(server: FakeAlpacaServer, clock: FakeClock, budget: RateBudget) -> AlpacaProvider:
    return AlpacaProvider(
        KEY, SECRET, data_url=server.url, sleep=clock.sleep, clock=clock.time,
        rng=random.Random(7), budget=budget, policy=RetryPolicy(max_total_wait_s=3600),
    )  # fmt: skip


def one_shot(root, server: FakeAlpacaServer, clock: FakeClock) -> Warehouse:
    """The same history and day, ingested after the close in one go, with features."""
    warehouse = Warehouse(root)
    chain = [provider(server, clock, RateBudget(10_000))]
    now = at(17, 0)
    for symbol in SYMBOLS:
        ingest_symbol(symbol, [*HISTORY, DAY], chain, warehouse, now=now)
        warehouse.store_derived(symbol, [DAY])
    build_regimes(warehouse, [DAY])
    for symbol in SYMBOLS:
        build_features(warehouse, symbol, [DAY], [DEFAULT_FOLD])
    return warehouse


def windows_asked(requests, symbol: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The distinct (start, end) windows asked for a symbol (a retry or a page repeats one)."""
    found = []
    for request in requests:
        if symbol in request.params.get("symbols", "").split(",") and "start" in request.params:
            window = (pd.Timestamp(request.params["start"]), pd.Timestamp(request.params["end"]))
            if window not in found:
                found.append(window)
    return found


@pytest.fixture
def session(home):
    """A fake clock at the open of DAY, the history ingested before it, and a live fake
    server on that clock whose session requests meet a 429 storm (one tick's request gives
    up), 500s and a cut body."""
    clock = FakeClock(at(9, 30, 0).timestamp())
    faults = {n: Fault(429, retry_after=1) for n in range(8, 14)}
    faults |= {20: Fault(500), 21: Fault(503), 30: Fault(cut_body=True)}
    with FakeAlpacaServer(
        api_key=KEY, secret_key=SECRET, clock=clock.time, live=True, max_page_size=60,
        rate_limit=200,
    ) as server:  # fmt: skip
        warehouse = Warehouse(home)
        history = provider(server, clock, RateBudget(10_000))
        for symbol in SYMBOLS:
            ingest_symbol(symbol, HISTORY, [history], warehouse, now=at(9, 30, 0))
        server._log.clear()  # request numbers (and faults) count from the session's first
        server.faults = faults
        yield server, clock, warehouse


def test_a_session_of_ticks_equals_a_one_shot_ingest_and_asks_no_minute_twice(session, tmp_path):
    server, clock, warehouse = session
    budget = RateBudget(BUDGET, 60.0)
    chain = [provider(server, clock, budget)]
    ticks = 0
    last_minutes = at(15, 55).timestamp()
    while True:  # mostly 17-minute gaps (catch-ups), minute by minute at the end
        big = min(17 * 60, max(60.0, last_minutes - clock.now))
        clock.now += 60 if ticks % 5 == 0 or clock.now >= last_minutes else big
        now = pd.Timestamp(clock.now, unit="s", tz="UTC")
        window = live_window(now)
        if isinstance(window, str):
            break
        before = len(server.requests)
        stored = {s: warehouse.read_bars(s, [DAY])["ts"].max() for s in SYMBOLS}
        live_tick(warehouse, chain, SYMBOLS, window, now)
        ticks += 1
        new = server.requests[before:]
        for symbol in SYMBOLS:
            for start, _ in windows_asked(new, symbol):
                assert pd.isna(stored[symbol]) or start > stored[symbol], (symbol, start)
    assert "closed" in window

    statuses = [r.status for r in server.requests]
    assert statuses.count(429) >= 6 and 500 in statuses and 503 in statuses
    assert ticks > 25

    reference = one_shot(tmp_path / "reference", server, clock)
    for symbol in SYMBOLS:
        live = warehouse.read_bars(symbol, [DAY])
        once = reference.read_bars(symbol, [DAY])
        assert len(live) == calendar.session_length(DAY) == 390
        pd.testing.assert_frame_equal(live, once)
        live_features = warehouse.read_features(symbol, DAY, DAY)
        pd.testing.assert_frame_equal(live_features, reference.read_features(symbol, DAY, DAY))
        derived_live = warehouse.lake.read_days("bars_derived", symbol, [DAY])
        derived_once = reference.lake.read_days("bars_derived", symbol, [DAY])
        pd.testing.assert_frame_equal(derived_live, derived_once)
    status = warehouse.catalog.ingest_status("SPY")
    today = status[status["date"] == pd.Timestamp(DAY)].iloc[0]
    assert (today["status"], today["rows"], today["missing_minutes"]) == ("partial", 390, 0)
    assert today["message"] == "session open: bars through 15:59 ET"


def test_requests_never_exceed_the_shared_budget_per_minute(session):
    server, clock, warehouse = session
    server.faults = {}
    budget = RateBudget(BUDGET, 60.0)
    chain = [provider(server, clock, budget)]
    server._log.clear()
    sent: list[float] = []
    original = server._admit

    def admit():
        sent.append(clock.time())
        return original()

    server._admit = admit
    clock.now = at(11, 0, 5).timestamp()  # 90 minutes to catch up: 4 symbols x 90 / 60 pages
    now = pd.Timestamp(clock.now, unit="s", tz="UTC")
    tick = live_tick(warehouse, chain, SYMBOLS, live_window(now), now)
    assert tick.added == {symbol: 90 for symbol in SYMBOLS}
    assert len(sent) == 6  # 360 bars in 60-bar pages, all in one multi-symbol request
    for first in sent:
        assert sum(first <= t < first + 60 for t in sent) <= BUDGET
    assert sent[-1] - sent[0] >= 60  # the budget made it wait


def test_a_feed_that_stops_adds_nothing_and_resumes_without_gaps(session):
    server, clock, warehouse = session
    server.faults = {}
    chain = [provider(server, clock, RateBudget(200))]
    clock.now = at(10, 0).timestamp()
    now = pd.Timestamp(clock.now, unit="s", tz="UTC")
    assert live_tick(warehouse, chain, SYMBOLS, live_window(now), now).added["SPY"] == 30
    server.halt()
    for minute in (5, 10):
        clock.now = at(10, minute).timestamp()
        now = pd.Timestamp(clock.now, unit="s", tz="UTC")
        tick = live_tick(warehouse, chain, SYMBOLS, live_window(now), now)
        assert tick.advanced == []
        assert tick.last_bar["SPY"] == at(9, 59, 0)
    status = warehouse.catalog.ingest_status("SPY").iloc[-1]
    assert (status["rows"], status["missing_minutes"]) == (30, 360)
    server.resume()
    clock.now = at(10, 12).timestamp()
    now = pd.Timestamp(clock.now, unit="s", tz="UTC")
    tick = live_tick(warehouse, chain, SYMBOLS, live_window(now), now)
    assert tick.added["SPY"] == 12 and tick.last_bar["SPY"] == at(10, 11, 0)
    assert warehouse.read_bars("SPY", [DAY])["ts"].is_unique


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        (dt.datetime(2024, 3, 9, 11, 0), "2024-03-09 is not an XNYS session"),
        (dt.datetime(2024, 3, 11, 9, 30, 20), "opens at 09:30 ET; no bar has closed yet"),
        (dt.datetime(2024, 3, 11, 16, 2, 1), "closed at 16:00 ET"),
        (dt.datetime(2024, 11, 29, 13, 2, 30), "closed at 13:00 ET"),  # a half day
    ],
)
def test_outside_a_session_there_is_no_window(local, reason):
    found = live_window(pd.Timestamp(local, tz=calendar.EXCHANGE_TZ))
    assert isinstance(found, str) and reason in found


def test_the_window_ends_at_the_last_closed_minute_and_at_the_close():
    assert live_window(at(10, 20, 30)) == LiveWindow(DAY, at(9, 30, 0), at(10, 19, 0))
    assert live_window(at(16, 1, 0)) == LiveWindow(DAY, at(9, 30, 0), at(15, 59, 0))
