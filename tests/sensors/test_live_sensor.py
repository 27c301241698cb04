"""The live updater sensor's ticks on a fake clock: skips outside sessions without a
request, reports today's partitions as materializations, raises and clears the stall
alert as the fake server stops and resumes."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.pipelines import alerts
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.live import evaluate
from stock_assets.testing.fake_alpaca import FakeAlpacaServer, FakeClock

KEY, SECRET = "PKSENSORKEY0000", "sensor-secret-value-123"


def at(day: dt.date, hour: int, minute: int, second: int = 30) -> pd.Timestamp:
    local = dt.datetime.combine(day, dt.time(hour, minute, second))
    return pd.Timestamp(local, tz=calendar.EXCHANGE_TZ).tz_convert("UTC")


@pytest.fixture
def live(home, monkeypatch):
    clock = FakeClock(at(dt.date(2024, 3, 11), 9, 30, 0).timestamp())
    with (
        FakeAlpacaServer(api_key=KEY, secret_key=SECRET, clock=clock.time, live=True) as server,
        dg.instance_for_test() as instance,
    ):
        monkeypatch.setenv("ALPACA_API_KEY_ID", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        instance.add_dynamic_partitions("symbols", ["QQQ", "SPY"])
        resources = (
            WarehouseResource(home=str(home)),
            MarketDataResource(providers="alpaca", alpaca_data_url=server.url),
        )
        yield server, clock, instance, resources


def tick(instance, resources, clock, day, hour, minute):
    clock.now = at(day, hour, minute).timestamp()
    return evaluate(instance, *resources, pd.Timestamp(clock.now, unit="s", tz="UTC"))


@pytest.mark.parametrize(
    ("day", "hour", "reason"),
    [
        (dt.date(2024, 3, 9), 11, "2024-03-09 is not an XNYS session"),
        (dt.date(2024, 3, 11), 8, "the 2024-03-11 session opens at 09:30 ET"),
        (dt.date(2024, 3, 11), 17, "the 2024-03-11 session closed at 16:00 ET"),
    ],
)
def test_outside_a_session_it_skips_with_the_reason_and_asks_nothing(live, day, hour, reason):
    server, clock, instance, resources = live
    result = tick(instance, resources, clock, day, hour, 0)
    assert isinstance(result, dg.SkipReason)
    assert reason in result.skip_message
    assert server.requests == []


def test_a_tick_reports_todays_partitions_and_the_stall_alert_follows_the_feed(live, home):
    server, clock, instance, resources = live
    day = dt.date(2024, 3, 11)
    result = tick(instance, resources, clock, day, 9, 40)
    assert isinstance(result, dg.SensorResult)
    found = sorted((e.asset_key.to_user_string(), str(e.partition)) for e in result.asset_events)
    assert found == sorted(
        [(asset, f"2024-03-11|{s}") for asset in ("bars_1m", "derived_bars", "features")
         for s in ("QQQ", "SPY")] + [("market_regimes", "2024-03-11")]
    )  # fmt: skip
    bars = next(e for e in result.asset_events if e.asset_key.path == ["bars_1m"])
    assert bars.metadata["rows_added"].value == 10
    assert bars.metadata["last_bar"].value == "2024-03-11T13:39:00+00:00"
    assert len(server.requests) == 1  # both symbols in one request
    for event in result.asset_events:  # partitions Dagster accepts
        instance.report_runless_asset_event(event)

    store = resources[0].open()
    server.halt()
    assert isinstance(tick(instance, resources, clock, day, 9, 44), dg.SkipReason)
    assert alerts.active(store).empty  # 4 minutes: under the threshold of 5
    skipped = tick(instance, resources, clock, day, 9, 46)
    assert skipped.skip_message == "no new bars through 2024-03-11T13:45:00+00:00"
    firing = alerts.active(store)
    assert firing[["kind", "subject"]].values.tolist() == [["stall", "live_bars_sensor"]]
    assert firing["message"].iloc[0] == (
        "live_bars_sensor has not advanced for 6 minutes (threshold 5)"
    )
    server.resume()
    assert isinstance(tick(instance, resources, clock, day, 9, 47), dg.SensorResult)
    assert alerts.active(store).empty
    stored = store.read_bars("SPY", [day])
    assert len(stored) == 17 and stored["ts"].is_unique
