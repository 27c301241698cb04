"""The history agent (symbol_history_sensor) and features_follow_sensor: exact run
requests and cursors, a re-ingested day rebuilt equal to a full rebuild, and a symbol
added to a running daemon getting its history and features with no other command."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time

import dagster as dg
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.calendar import last_closed_session as last_complete_session
from stock_assets.jobs import JOBS
from stock_assets.jobs import launcher as launches
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.follow import features_follow_sensor
from stock_assets.sensors.history import (
    HISTORY_SESSIONS_ENV,
    InvalidHistoryDepth,
    symbol_history_sensor,
)
from stock_assets.storage.lake import BARS_1M, FEATURES, MARKET_REGIMES

REASON = "stock_assets/reason"
START, END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def et(text: str) -> dt.datetime:
    return pd.Timestamp(text, tz="America/New_York").to_pydatetime()


def evaluate(sensor, instance, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource()}
    )
    return sensor(context)


def execute(instance, request: dg.RunRequest) -> None:
    job = {job.name: job for job in JOBS}[request.job_name]
    launch = launches.Launch(job, request.run_config, dict(request.tags), request.partition_key)
    outcome = launches.InProcessLauncher(instance).launch(launch)
    assert outcome.success, outcome.failure_reason()


# --- symbol_history_sensor ------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last"),
    [
        ("2024-07-03 12:59", "2024-07-02"),  # half day, still open
        ("2024-07-03 13:00", "2024-07-03"),  # half day, closed
        ("2024-07-04 11:00", "2024-07-03"),  # holiday
        ("2024-07-06 11:00", "2024-07-05"),  # Saturday
        ("2024-07-08 09:00", "2024-07-05"),  # Monday before the open
    ],
)
def test_last_complete_session_leaves_out_the_session_in_progress(now, last):
    assert last_complete_session(et(now)) == dt.date.fromisoformat(last)


def test_history_sensor_requests_ranged_ingest_runs_once_per_new_symbol(home, monkeypatch):
    monkeypatch.setenv(HISTORY_SESSIONS_ENV, "130")
    last = last_complete_session(dt.datetime.now(dt.UTC))
    days = calendar.previous_sessions(last, 129) + [last]
    chunks = [(days[0], days[62]), (days[63], days[125]), (days[126], days[129])]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["MSFT"])
        result = evaluate(symbol_history_sensor, instance, cursor="[]")
        assert [r.run_key for r in result.run_requests] == [
            f"history-MSFT-{a}-{b}" for a, b in chunks
        ]
        assert [(r.tags[START], r.tags[END]) for r in result.run_requests] == [
            (f"{a}|MSFT", f"{b}|MSFT") for a, b in chunks
        ]
        assert {r.job_name for r in result.run_requests} == {"ingest_job"}
        assert result.run_requests[0].tags[REASON] == "history: MSFT's last 130 sessions"
        assert json.loads(result.cursor) == ["MSFT"]

        again = evaluate(symbol_history_sensor, instance, cursor=result.cursor)
        assert not again.run_requests and json.loads(again.cursor) == ["MSFT"]

        instance.delete_dynamic_partition("symbols", "MSFT")
        removed = evaluate(symbol_history_sensor, instance, cursor=result.cursor)
        assert not removed.run_requests and json.loads(removed.cursor) == []


def test_history_sensor_first_evaluation_backfills_only_symbols_without_bars(home, monkeypatch):
    monkeypatch.setenv(HISTORY_SESSIONS_ENV, "1")
    last = last_complete_session(dt.datetime.now(dt.UTC))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY", "AAPL"])
        execute(instance, launches.ingest("SPY", dt.date(2024, 3, 4)).run_request())
        result = evaluate(symbol_history_sensor, instance, cursor=None)
    assert [(r.run_key, r.partition_key) for r in result.run_requests] == [
        (f"history-AAPL-{last}-{last}", f"{last}|AAPL")  # one session: a partition run
    ]
    assert json.loads(result.cursor) == ["AAPL", "SPY"]


@pytest.mark.parametrize("raw", ["-3", "abc", "1.5", "100000"])
def test_history_sensor_refuses_a_bad_depth(home, monkeypatch, raw):
    monkeypatch.setenv(HISTORY_SESSIONS_ENV, raw)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY"])
        with pytest.raises(InvalidHistoryDepth, match=HISTORY_SESSIONS_ENV):
            evaluate(symbol_history_sensor, instance, cursor="[]")


def test_history_sensor_with_depth_zero_records_new_symbols_without_runs(home, monkeypatch):
    monkeypatch.setenv(HISTORY_SESSIONS_ENV, "0")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY"])
        result = evaluate(symbol_history_sensor, instance, cursor="[]")
    assert not result.run_requests and json.loads(result.cursor) == ["SPY"]


# --- features_follow_sensor -----------------------------------------------------------

DAYS = calendar.sessions(dt.date(2024, 3, 4), dt.date(2024, 3, 13))  # 8 sessions


def newest(store, symbol: str, day: dt.date) -> int:
    """The run-key stamp of a features run of `symbol` from `day`: its newest input."""
    datasets = [(BARS_1M, symbol), (BARS_1M, "QQQ"), (BARS_1M, "VIXY"), (MARKET_REGIMES, None)]
    return max(
        ns
        for dataset, owner in datasets
        for d, ns in store.lake.mtimes(dataset, owner).items()
        if day <= d <= DAYS[-1]
    )


def change_bars(store, symbol: str, day: dt.date) -> None:
    """Re-ingest one past day with different bars (prices 1% higher)."""
    time.sleep(0.05)  # file times are as coarse as a clock tick
    bars = store.read_bars(symbol, [day])
    prices = ["open", "high", "low", "close", "vwap"]
    bars[prices] = bars[prices] * 1.01
    store.lake.partition_path(BARS_1M, symbol, day).unlink()
    store.store_bars(symbol, bars, [day])


def full_rebuild(home, symbol: str) -> pd.DataFrame:
    """The symbol's features built from scratch over the same bars in another warehouse."""
    from stock_assets.assets.features import DEFAULT_FOLDS
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import build_features, build_regimes
    from stock_assets.storage.warehouse import Warehouse

    other = Warehouse(home.parent / "rebuild")
    shutil.rmtree(other.root / "lake", ignore_errors=True)  # the catalog holds no features
    shutil.copytree(home / "lake" / BARS_1M, other.root / "lake" / BARS_1M)
    build_regimes(other, DAYS)
    build_features(other, symbol, DAYS, [FoldConfig.parse(text) for text in DEFAULT_FOLDS])
    return other.read_features(symbol)


def test_follow_sensor_rebuilds_regimes_then_features_after_a_changed_day(home):
    store = WarehouseResource().open()
    symbols = ["AAA", "QQQ", "VIXY"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", symbols)
        for symbol in symbols:
            execute(instance, launches.ingest(symbol, DAYS[0], DAYS[-1]).run_request())

        # regimes first: features wait for them
        first = evaluate(features_follow_sensor, instance)
        market = max(max(store.lake.mtimes(BARS_1M, s).values()) for s in ("QQQ", "VIXY"))
        regimes_key = f"regimes-{DAYS[0]}-{DAYS[-1]}-{market}"
        assert [(r.job_name, r.run_key) for r in first.run_requests] == [
            ("regimes_job", regimes_key)
        ]
        assert first.run_requests[0].tags[START] == DAYS[0].isoformat()
        assert first.run_requests[0].tags[END] == DAYS[-1].isoformat()
        assert json.loads(first.cursor) == {"regimes": regimes_key}
        execute(instance, first.run_requests[0])

        second = evaluate(features_follow_sensor, instance, first.cursor)
        requested = [
            (r.job_name, r.run_key, r.tags[START], r.tags[END]) for r in second.run_requests
        ]
        assert requested == [
            ("features_job", f"features-{s}-{DAYS[0]}-{DAYS[-1]}-{newest(store, s, DAYS[0])}",
             f"{DAYS[0]}|{s}", f"{DAYS[-1]}|{s}")
            for s in ["AAA", "QQQ", "VIXY"]
        ]  # fmt: skip
        for request in second.run_requests:
            execute(instance, request)
        # features written after their bars do not trigger again
        third = evaluate(features_follow_sensor, instance, second.cursor)
        assert not third.run_requests and "current" in third.skip_reason.skip_message

        # a past day re-ingested with other bars: that day and every later one rebuilt
        before = {d: store.lake.partition_path(FEATURES, "AAA", d).stat().st_mtime_ns
                  for d in DAYS}  # fmt: skip
        changed = DAYS[4]
        change_bars(store, "AAA", changed)
        fourth = evaluate(features_follow_sensor, instance, third.cursor)
        assert [(r.run_key, r.tags[START], r.tags[END]) for r in fourth.run_requests] == [
            (f"features-AAA-{changed}-{DAYS[-1]}-{newest(store, 'AAA', changed)}",
             f"{changed}|AAA", f"{DAYS[-1]}|AAA")
        ]  # fmt: skip
        execute(instance, fourth.run_requests[0])
        after = {d: store.lake.partition_path(FEATURES, "AAA", d).stat().st_mtime_ns
                 for d in DAYS}  # fmt: skip
        assert [d for d in DAYS if after[d] != before[d]] == DAYS[4:]  # earlier days untouched
        pd.testing.assert_frame_equal(
            store.read_features("AAA").reset_index(drop=True),
            full_rebuild(home, "AAA").reset_index(drop=True),
        )
        assert not evaluate(features_follow_sensor, instance, fourth.cursor).run_requests

        # a QQQ day changed: regimes from it on, then every symbol's features from it on
        change_bars(store, "QQQ", DAYS[6])
        fifth = evaluate(features_follow_sensor, instance, fourth.cursor)
        assert [(r.job_name, r.tags[START]) for r in fifth.run_requests] == [
            ("regimes_job", DAYS[6].isoformat())
        ]
        execute(instance, fifth.run_requests[0])
        sixth = evaluate(features_follow_sensor, instance, fifth.cursor)
        assert [r.tags[START] for r in sixth.run_requests] == [
            f"{DAYS[6]}|{s}" for s in ["AAA", "QQQ", "VIXY"]
        ]
        for request in sixth.run_requests:
            execute(instance, request)
        pd.testing.assert_frame_equal(
            store.read_features("AAA").reset_index(drop=True),
            full_rebuild(home, "AAA").reset_index(drop=True),
        )
        assert not evaluate(features_follow_sensor, instance, sixth.cursor).run_requests


def test_follow_sensor_counts_an_unchanged_rebuild_as_current(home):
    store = WarehouseResource().open()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["AAA"])
        execute(instance, launches.ingest("AAA", DAYS[0], DAYS[2]).run_request())
        first = evaluate(features_follow_sensor, instance)  # no QQQ/VIXY: no regimes
        assert [r.job_name for r in first.run_requests] == ["features_job"]
        execute(instance, first.run_requests[0])
        time.sleep(0.05)
        path = store.lake.partition_path(BARS_1M, "AAA", DAYS[1])
        os.utime(path)  # rewritten with the same bars: the rebuild writes nothing
        second = evaluate(features_follow_sensor, instance, first.cursor)
        assert [r.tags[START] for r in second.run_requests] == [f"{DAYS[1]}|AAA"]
        features_file = store.lake.partition_path(FEATURES, "AAA", DAYS[1])
        written = features_file.stat().st_mtime_ns
        execute(instance, second.run_requests[0])
        assert features_file.stat().st_mtime_ns == written < path.stat().st_mtime_ns
        third = evaluate(features_follow_sensor, instance, second.cursor)
        assert not third.run_requests


def test_follow_sensor_waits_for_runs_in_flight(home):
    from dagster._core.test_utils import create_run_for_test

    store = WarehouseResource().open()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["AAA", "BBB"])
        for symbol in ("AAA", "BBB"):
            execute(instance, launches.ingest(symbol, DAYS[0], DAYS[1]).run_request())
        tags = launches.symbol_days_tags("AAA", DAYS[1], DAYS[2])
        run = create_run_for_test(
            instance, job_name="ingest_job", tags=tags, status=dg.DagsterRunStatus.STARTED
        )
        waiting = evaluate(features_follow_sensor, instance)
        assert [r.tags[START] for r in waiting.run_requests] == [f"{DAYS[0]}|BBB"]
        instance.report_run_canceled(run)
        ready = evaluate(features_follow_sensor, instance)
        assert [r.tags[START] for r in ready.run_requests] == [
            f"{DAYS[0]}|AAA",
            f"{DAYS[0]}|BBB",
        ]
        assert store.feature_days("AAA") == []


def test_follow_sensor_evaluates_50_symbols_of_a_year_quickly(home):
    store = WarehouseResource().open()
    last = last_complete_session(dt.datetime.now(dt.UTC))
    days = calendar.previous_sessions(last, 251) + [last]
    symbols = [f"S{i:02d}" for i in range(48)] + ["QQQ", "VIXY"]
    for dataset, owners in [(BARS_1M, symbols), (MARKET_REGIMES, [None]), (FEATURES, symbols)]:
        time.sleep(0.05)  # each dataset written after its inputs
        for owner in owners:
            for day in days:
                path = store.lake.partition_path(dataset, owner, day)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", symbols)
        started = time.perf_counter()
        result = evaluate(features_follow_sensor, instance)
        seconds = time.perf_counter() - started
    assert not result.run_requests
    print(f"features_follow_sensor_evaluation {seconds * 1000:.0f} ms (50 symbols x 252 days)")
    assert seconds < 5


# --- with the daemon ------------------------------------------------------------------


@pytest.mark.slow
def test_added_symbol_gets_history_and_features_from_the_daemon(home, monkeypatch):
    from stock_assets.cli import main
    from tests.conftest import running_dagster_dev

    monkeypatch.setenv(HISTORY_SESSIONS_ENV, "3")
    store = WarehouseResource().open()
    last = last_complete_session(dt.datetime.now(dt.UTC))
    days = calendar.previous_sessions(last, 2) + [last]
    with running_dagster_dev():
        assert main(["symbols", "add", "XYZ"]) == 0
        deadline, found = time.monotonic() + 240, None
        while time.monotonic() < deadline:
            found = (
                store.bar_days("XYZ"),
                store.lake.days("bars_derived", "XYZ"),
                store.feature_days("XYZ"),
            )
            if found == (days, days, days):
                break
            time.sleep(3)
    assert found == (days, days, days)
