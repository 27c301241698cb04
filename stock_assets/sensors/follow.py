"""Features and market regimes follow their bars: `features_follow_sensor` finds the days
whose inputs changed after they were built (new, re-ingested or filled bars) and launches
the runs that rebuild them, regimes first. Needs the daemon.

A day is stale when one of its inputs was written after its own partition: for
`market_regimes`, the QQQ or VIXY bars of the day; for a symbol's `features`, its bars,
QQQ's and VIXY's bars and the day's regimes. Only file modification times are compared
(stat calls, no reads). A day rebuilt by a successful run started after the change also
counts as current, since an unchanged result is not rewritten. A features day continues
the previous day's carry, so a run rebuilds a symbol from its first stale day to its last
bar day; regimes likewise from their first stale day on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import dagster as dg

from stock_assets import settings
from stock_assets.core.symbols import InvalidSymbol, check_symbol_key
from stock_assets.jobs import features_job, ingest_job, regimes_job
from stock_assets.jobs import launcher as launches
from stock_assets.jobs.launcher import RANGE_END, RANGE_START
from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.history import REASON_TAG

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class RunSpan:
    """The days a run of an asset job covers (of one symbol, or of the market: None)."""

    job: str
    symbol: str | None
    first: dt.date
    last: dt.date
    created_ns: int

    def covers(self, day: dt.date) -> bool:
        return self.first <= day <= self.last


def run_span(record) -> RunSpan | None:
    """A run record's span, from its range tags or its partition tag (None without)."""
    tags = record.dagster_run.tags
    first, last = tags.get(RANGE_START), tags.get(RANGE_END)
    if not (first and last):
        first = last = tags.get("dagster/partition")
    if not first:
        return None
    first_day, _, symbol = first.partition("|")
    last_day = last.partition("|")[0]
    try:
        days = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
    except ValueError:
        return None
    created_ns = int(record.create_timestamp.timestamp() * 1e9)
    return RunSpan(record.dagster_run.job_name, symbol or None, *days, created_ns)


def run_spans(
    instance: dg.DagsterInstance, jobs: list[str], statuses, created_after: int | None = None
) -> list[RunSpan]:
    after = None
    if created_after is not None:
        after = dt.datetime.fromtimestamp(created_after / 1e9, dt.UTC)
    spans = []
    for job in jobs:
        runs = dg.RunsFilter(job_name=job, statuses=statuses, created_after=after)
        spans += [s for r in instance.get_run_records(runs) if (s := run_span(r))]
    return spans


def changed_days(inputs: dict[dt.date, int], outputs: dict[dt.date, int]) -> dict[dt.date, int]:
    """Days whose newest input (ns) is newer than their output (or has none)."""
    return {day: ns for day, ns in inputs.items() if ns > outputs.get(day, -1)}


def still_stale(
    changed: dict[dt.date, int], done: list[RunSpan], symbol: str | None
) -> list[dt.date]:
    """The changed days that no successful run created after the change rebuilt."""
    return [
        day
        for day, ns in changed.items()
        if not any(s.symbol == symbol and s.covers(day) and s.created_ns > ns for s in done)
    ]


@dg.sensor(
    jobs=[regimes_job, features_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def features_follow_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Rebuild market_regimes, then each symbol's features, from the first day whose bars
    (or regimes) changed after it was built, up to the last closed session.

    Waits while an ingest, regimes or features run touching the same data is queued or
    running; features wait for regimes being rebuilt. Run keys name the days and the
    newest change, so one state of the lake is never requested twice.
    """
    from stock_assets.pipelines.features import QQQ, VIXY
    from stock_assets.storage.lake import BARS_1M, FEATURES, MARKET_REGIMES

    cursor = json.loads(context.cursor or "{}")
    lake = warehouse.open().lake
    first_day = settings.first_partition_day()
    from stock_assets.core import calendar

    last_day = calendar.last_closed_session(dt.datetime.now(dt.UTC))

    def mtimes(dataset: str, symbol: str | None) -> dict[dt.date, int]:
        stored = lake.mtimes(dataset, symbol)
        return {day: ns for day, ns in stored.items() if first_day <= day <= last_day}

    symbols = []
    for key in sorted(context.instance.get_dynamic_partitions("symbols")):
        try:
            symbols.append(check_symbol_key(key))
        except InvalidSymbol:
            continue  # the history sensor names it
    market = {symbol: mtimes(BARS_1M, symbol) for symbol in (QQQ, VIXY)}
    bars = {symbol: market.get(symbol) or mtimes(BARS_1M, symbol) for symbol in symbols}
    market_days = sorted(set(market[QQQ]) | set(market[VIXY]))
    market_inputs = {d: max(market[QQQ].get(d, 0), market[VIXY].get(d, 0)) for d in market_days}
    regimes = mtimes(MARKET_REGIMES, None)
    regimes_changed = changed_days(market_inputs, regimes)
    features_changed = {}
    for symbol in symbols:
        inputs = {
            day: max(ns, regimes.get(day, 0), market_inputs.get(day, 0))
            for day, ns in bars[symbol].items()
        }
        features_changed[symbol] = changed_days(inputs, mtimes(FEATURES, symbol))
    changes = [
        *regimes_changed.values(),
        *(ns for c in features_changed.values() for ns in c.values()),
    ]
    if not changes:
        return dg.SensorResult(
            skip_reason="features and regimes are current", cursor=context.cursor
        )

    instance = context.instance
    jobs = [ingest_job.name, regimes_job.name, features_job.name]
    busy = [s for s in run_spans(instance, jobs, IN_FLIGHT) if s.first <= last_day]
    done = run_spans(instance, jobs[1:], [dg.DagsterRunStatus.SUCCESS], created_after=min(changes))
    requests = []
    regimes_stale = still_stale(regimes_changed, done, None)
    regimes_busy = any(
        s.job == regimes_job.name or (s.job == ingest_job.name and s.symbol in (QQQ, VIXY))
        for s in busy
    )
    regimes_pending = regimes_busy
    if regimes_stale and not regimes_busy:
        start, end = regimes_stale[0], market_days[-1]
        newest = max(market_inputs[day] for day in market_days if day >= start)
        key = f"regimes-{start}-{end}-{newest}"
        if key == cursor.get("regimes"):  # that run ended (failed?): features go ahead
            context.log.warning(f"market_regimes from {start} still stale after {key}")
        else:
            cursor["regimes"] = key
            regimes_pending = True
            requests.append(
                launches.regimes(start, end).run_request(
                    run_key=key, **{REASON_TAG: f"QQQ/VIXY bars changed from {start}"}
                )
            )
    for symbol in symbols:
        stale = still_stale(features_changed[symbol], done, symbol)
        if not stale or regimes_pending:
            continue
        if any(s.symbol == symbol and s.job != regimes_job.name for s in busy):
            continue
        start, end = stale[0], max(bars[symbol])
        newest = max(
            max(ns, regimes.get(day, 0), market_inputs.get(day, 0))
            for day, ns in bars[symbol].items()
            if day >= start
        )
        requests.append(
            launches.features(symbol, start, end).run_request(
                run_key=f"features-{symbol}-{start}-{end}-{newest}",
                **{REASON_TAG: f"inputs changed from {start}"},
            )
        )
    if not requests:
        waiting = "regimes" if regimes_pending else "runs in progress or ended unchanged"
        return dg.SensorResult(
            skip_reason=f"stale days wait for {waiting}", cursor=json.dumps(cursor)
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
