"""Ingesting one symbol over a set of days: fetch through the provider chain, persist,
record the outcome of each day. The bars assets and the benchmark call this."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stock_assets.core import bars as core_bars
from stock_assets.core.ingest import DayOutcome, Fetched, day_outcomes
from stock_assets.logs import get_logger, log_event
from stock_assets.providers.base import Provider, ProviderError
from stock_assets.storage.warehouse import StoredDay, Warehouse

log = get_logger(__name__)


def fetch_chain(
    providers: list[Provider], symbol: str, days: list[dt.date], now: pd.Timestamp | None = None
) -> Fetched:
    """Ask each provider in turn for the days still missing minutes; keep what it adds
    (never a bar that opens after the last completed minute before `now`)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    fetched = Fetched.start(days)
    wanted = list(fetched.days)
    for provider in providers:
        if not wanted:
            break
        try:
            raw = provider.fetch(symbol, wanted[0], wanted[-1])
        except ProviderError as error:
            fetched.failed(provider.name, str(error))
            log.warning(
                "provider failed",
                extra={"stage": "fetch", "symbol": symbol, "provider": provider.name,
                       "error": str(error)},
            )  # fmt: skip
            continue
        kept, added = fetched.absorb(provider.name, raw, wanted, now)
        report = getattr(provider, "last_report", None)  # the csv provider's own account
        if report is not None:
            fetched.count_dropped(report.dropped)
            fetched.notes += [f"{provider.name}: {problem}" for problem in report.problems]
        log_event(
            log, "fetch", "provider answered", symbol=symbol, provider=provider.name,
            days=len(wanted), rows=kept, added=added,
        )  # fmt: skip
        wanted = fetched.wanted()
    return fetched


@dataclass
class SymbolIngest:
    """What ingesting one symbol did: each day's outcome and stored partition (None for
    days that were already complete), and the rows validation left out, by reason."""

    days: list[tuple[DayOutcome, StoredDay | None]]
    dropped: dict[str, int] = field(default_factory=dict)


def ingest_symbol(
    symbol: str,
    days: list[dt.date],
    providers: list[Provider],
    warehouse: Warehouse,
    *,
    refetch: bool = False,
    now: pd.Timestamp | None = None,
) -> SymbolIngest:
    """Fetch the days that are not complete yet (all of them with `refetch`), merge them
    into the lake and record each day's status in `ingest_status`.

    Days already complete are left untouched and reported `ok` with no StoredDay; their
    status is written again from the stored partition when it is missing or stale (a
    process killed between the lake write and the status write), so a re-run repairs it.
    """
    complete = set() if refetch else warehouse.complete_days(symbol, days)
    wanted = [day for day in days if day not in complete]
    result = SymbolIngest(
        [(DayOutcome(day, "ok", None, "already complete"), None) for day in sorted(complete)]
    )
    if complete:
        _repair_complete_status(warehouse, symbol, sorted(complete), [p.name for p in providers])
    if not wanted:
        return result
    fetched = fetch_chain(providers, symbol, wanted, now)
    stored = warehouse.store_bars(symbol, fetched.bars, wanted)
    if fetched.dropped:
        log_event(log, "validate", "invalid rows dropped", symbol=symbol, **fetched.dropped)
    outcomes = day_outcomes(
        fetched,
        symbol,
        {s.day: s.rows for s in stored},
        {s.day: s.missing_minutes + s.filled_minutes for s in stored},
    )
    warehouse.catalog.upsert_ingest_status(
        status_frame(symbol, outcomes, [s.rows for s in stored],
                     [s.missing_minutes + s.filled_minutes for s in stored])
    )  # fmt: skip
    result.days = sorted(result.days + list(zip(outcomes, stored, strict=True)),
                         key=lambda pair: pair[0].day)  # fmt: skip
    result.dropped = dict(fetched.dropped)
    return result


def status_frame(
    symbol: str, outcomes: list[DayOutcome], rows: list[int], missing: list[int]
) -> pd.DataFrame:
    """`ingest_status` rows for the outcomes of one symbol's days."""
    return pd.DataFrame(
        {
            "symbol": symbol,
            "date": [o.day for o in outcomes],
            "status": [o.status for o in outcomes],
            "provider": [o.provider for o in outcomes],
            "rows": rows,
            "missing_minutes": missing,
            "message": [o.message for o in outcomes],
            "updated_at": pd.Timestamp.now(tz="UTC"),
        }
    )


def _repair_complete_status(
    warehouse: Warehouse, symbol: str, days: list[dt.date], chain: list[str]
) -> None:
    """Write `ok` for complete days whose status is missing or says otherwise, with the
    providers that served their bars (in chain order) read from the stored partitions."""
    known = warehouse.catalog.ingest_status(symbol)
    good = known[(known["status"] == "ok") & (known["missing_minutes"] == 0)]
    stale = [day for day in days if pd.Timestamp(day) not in set(good["date"])]
    if not stale:
        return
    bars = warehouse.read_bars(symbol, stale)
    outcomes, rows = [], []
    for day, (lo, hi) in core_bars.day_slices(bars["ts"], stale).items():
        sources = set(bars["source"].iloc[lo:hi]) - {core_bars.FILL_SOURCE}
        names = [name for name in chain if name in sources] + sorted(sources - set(chain))
        outcomes.append(DayOutcome(day, "ok", "+".join(names) or None, ""))
        rows.append(hi - lo)
    log_event(log, "persist", "status repaired from the lake", symbol=symbol, days=len(stale))
    warehouse.catalog.upsert_ingest_status(status_frame(symbol, outcomes, rows, [0] * len(rows)))


@dataclass
class IngestReport:
    """What an ingest of several symbols' days did: one row per (symbol, day), the checks
    of the stored partitions and the derived rows per interval."""

    table: pd.DataFrame
    messages: dict[str, str]
    violations: dict[str, int]
    samples: dict[str, str]
    derived_rows: dict[str, int]
    dropped: dict[str, dict[str, int]]

    def failure_messages(self) -> list[str]:
        failed = self.table.loc[self.table["status"] == "failed", "symbol"]
        return sorted({self.messages[symbol] for symbol in failed})


def ingest_and_derive(
    warehouse: Warehouse,
    providers: list[Provider],
    days_by_symbol: dict[str, list[dt.date]],
    *,
    refetch: bool = False,
    now: pd.Timestamp | None = None,
) -> IngestReport:
    """Ingest each symbol's days, derive their 5m..1d bars, check the stored partitions
    (no duplicate ts, the OHLC rule) and refresh the catalog's views."""
    rows, messages, dropped = [], {}, {}
    derived: Counter[str] = Counter()
    violations = {"unique_ts": 0, "ohlc_consistent": 0}
    samples = {"unique_ts": "", "ohlc_consistent": ""}
    for symbol, days in days_by_symbol.items():
        log_event(log, "ingest", f"{symbol}: {len(days)} day(s) {days[0]} .. {days[-1]}",
                  symbol=symbol)  # fmt: skip
        ingested = ingest_symbol(symbol, days, providers, warehouse, refetch=refetch, now=now)
        if ingested.dropped:
            dropped[symbol] = ingested.dropped
        for outcome, stored in ingested.days:
            rows.append({
                "symbol": symbol, "date": outcome.day.isoformat(), "status": outcome.status,
                "provider": outcome.provider or "",
                "rows": stored.rows if stored else float("nan"),
                "missing_minutes": stored.missing_minutes if stored else 0,
                "written": bool(stored and stored.written),
            })  # fmt: skip
            if outcome.status == "failed":
                messages[symbol] = outcome.message
        stored_bars = warehouse.read_bars(symbol, days)  # read once: derived bars and checks
        derived.update(warehouse.store_derived(symbol, days, stored_bars))
        duplicated = stored_bars["ts"].duplicated(keep=False).to_numpy()
        broken = np.logical_or.reduce(list(core_bars.ohlc_violations(stored_bars).values()))
        for name, mask in (("unique_ts", duplicated), ("ohlc_consistent", broken)):
            if mask.any():
                violations[name] += int(mask.sum())
                samples[name] += stored_bars.loc[mask].head(5).to_markdown(index=False)
    warehouse.catalog.refresh_views()
    return IngestReport(pd.DataFrame(rows), messages, violations, samples, dict(derived), dropped)
