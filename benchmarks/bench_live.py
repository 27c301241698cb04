"""Live updater benchmark: one tick of `live_bars_sensor` for many symbols against the fake
Alpaca server on a fake clock.

Run: ``uv run python benchmarks/bench_live.py`` (``--symbols 50``; ``--profile`` prints where the
steady tick spends its time).
Prints one line per figure: ``name value unit (params)``.

Setup: a fresh home; `--symbols` symbols (QQQ and VIXY among them, so regimes follow too)
with 5 earlier sessions ingested and their features built, and today's session ingested
up to a minute (so each symbol has a feature carry for today). Then the sensor's
evaluation (`sensors.live.evaluate`, what the daemon calls each minute) runs at a later
minute, through the real alpaca-py client against the fake server, in two cases:
`steady` (one new minute per symbol, the normal tick) and `catchup` (30 new minutes, a
tick after a stall). Figures per tick: wall time of the evaluation, the time Dagster
takes to store the materializations it reports (what the daemon does with them), HTTP
requests, runs launched and events.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import itertools
import logging
import os
import pstats
import string
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="cProfile the steady tick")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-live-")
    os.environ.update(STOCK_ASSETS_HOME=home, DAGSTER_HOME=os.path.join(home, "dagster"),
                      STOCK_ASSETS_LOG_STORE="0", ALPACA_API_KEY_ID="PKBENCHKEY000",
                      ALPACA_API_SECRET_KEY="bench-secret-key-000")  # fmt: skip
    logging.getLogger("stock_assets").setLevel(logging.WARNING)

    import dagster as dg
    import pandas as pd

    from stock_assets.core import calendar
    from stock_assets.pipelines.features import DEFAULT_FOLD, build_features, build_regimes
    from stock_assets.pipelines.live import live_tick, live_window
    from stock_assets.resources.market_data import MarketDataResource
    from stock_assets.resources.warehouse import WarehouseResource
    from stock_assets.sensors.live import evaluate
    from stock_assets.testing.fake_alpaca import FakeAlpacaServer, FakeClock

    day = dt.date(2024, 3, 11)
    history = calendar.previous_sessions(day, 5)
    letters = ("".join(p) for p in itertools.product(string.ascii_uppercase, repeat=3))
    names = ["QQQ", "VIXY", *itertools.islice(letters, args.symbols - 2)]

    def at(hour: int, minute: int, second: int = 30) -> pd.Timestamp:
        local = dt.datetime.combine(day, dt.time(hour, minute, second))
        return pd.Timestamp(local, tz=calendar.EXCHANGE_TZ).tz_convert("UTC")

    clock = FakeClock(at(10, 0).timestamp())
    with (
        FakeAlpacaServer(api_key=os.environ["ALPACA_API_KEY_ID"],
                         secret_key=os.environ["ALPACA_API_SECRET_KEY"], clock=clock.time,
                         live=True) as server,
        dg.instance_for_test() as instance,
    ):  # fmt: skip
        server.preload(names, history[0], day)
        warehouse = WarehouseResource(home=home)
        market = MarketDataResource(providers="alpaca", alpaca_data_url=server.url)
        store = warehouse.open()
        started = time.perf_counter()
        for symbol in names:  # the history, as the history sensor's runs leave it
            store.store_bars(symbol, _bars(server, symbol, history), history)
            store.store_derived(symbol, history)
        build_regimes(store, history)
        for symbol in names:
            build_features(store, symbol, history, [DEFAULT_FOLD])
        now = pd.Timestamp(clock.now, unit="s", tz="UTC")
        live_tick(store, market.chain(), names, live_window(now), now)  # today until 09:59
        instance.add_dynamic_partitions("symbols", names)
        print(f"setup {time.perf_counter() - started:.1f} s ({len(names)} symbols)")

        for case, minutes in (("steady", 1), ("catchup", 30)):
            clock.now += minutes * 60
            before = len(server.requests)
            runs = instance.get_runs_count()
            profile = cProfile.Profile() if args.profile and case == "steady" else None
            started = time.perf_counter()
            if profile:
                profile.enable()
            result = evaluate(instance, warehouse, market, pd.Timestamp(clock.now, unit="s",
                                                                        tz="UTC"))  # fmt: skip
            tick_s = time.perf_counter() - started
            if profile:
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            events = list(getattr(result, "asset_events", []))
            started = time.perf_counter()
            for event in events:
                instance.report_runless_asset_event(event)
            store_s = time.perf_counter() - started
            params = f"({len(names)} symbols, {minutes} new minute(s) each)"
            print(f"live_tick_{case}_wall {tick_s:.2f} s {params}")
            print(f"live_tick_{case}_events_store {store_s:.2f} s {params}")
            print(f"live_tick_{case}_requests {len(server.requests) - before} requests {params}")
            print(f"live_tick_{case}_runs {instance.get_runs_count() - runs} runs {params}")
            print(f"live_tick_{case}_events {len(events)} events {params}")


def _bars(server, symbol, days):
    """The server's bars for whole sessions, as the ingest stores them."""
    from stock_assets.core import bars as core_bars
    from stock_assets.core import calendar

    first, _ = calendar.session_bounds(days[0])
    _, last = calendar.session_bounds(days[-1])
    raw = server.bars_for(symbol, first, last)
    clean, _ = core_bars.validate_bars(core_bars.conform(raw, source="alpaca"))
    return clean


if __name__ == "__main__":
    main()
