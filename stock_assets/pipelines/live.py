"""The live updater: during an XNYS session, bring every symbol's today partition up to the
last completed minute, then today's derived bars, regimes and features after it.

One tick asks each provider only for the minutes after each symbol's last stored bar
(symbols that share that minute go in one multi-symbol request where the provider has
`fetch_window`), merges them with the ingest rules (nothing lost, nothing doubled: a
re-run changes nothing), records today's `ingest_status` in one catalog write, and
extends today's features from the carry of their last stored row. The live sensor calls
it; the nightly schedule still finalizes the day after the close.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from stock_assets.core import bars as core_bars
from stock_assets.core import calendar
from stock_assets.core.folds import FoldConfig
from stock_assets.core.ingest import Fetched, last_completed_minute
from stock_assets.logs import get_logger, log_event
from stock_assets.pipelines.features import DEFAULT_FOLD, QQQ, VIXY, build_regimes, extend_features
from stock_assets.providers.base import Provider, ProviderError
from stock_assets.storage.warehouse import Warehouse

log = get_logger(__name__)
CLOSE_GRACE = pd.Timedelta(minutes=2)  # ticks after the close still collect the last bar


@dataclass(frozen=True)
class LiveWindow:
    """Today's session as the updater sees it at `now`: the day and the newest bar to ask."""

    day: dt.date
    open: pd.Timestamp
    until: pd.Timestamp


def live_window(now: pd.Timestamp) -> LiveWindow | str:
    """The session window at `now`, or why there is none (no session today, not open yet,
    closed). Half days close at 13:00 ET, as the exchange calendar says."""
    now = pd.Timestamp(now).tz_convert("UTC")
    day = now.tz_convert(calendar.EXCHANGE_TZ).date()
    if not calendar.is_session(day):
        return f"{day} is not an XNYS session"
    open_, close = calendar.session_bounds(day)
    until = min(last_completed_minute(now), close - pd.Timedelta(minutes=1))
    if until < open_:
        return f"the {day} session opens at {_et(open_)} ET; no bar has closed yet"
    if now > close + CLOSE_GRACE:
        return f"the {day} session closed at {_et(close)} ET (the nightly schedule finalizes it)"
    return LiveWindow(day, open_, until)


@dataclass
class LiveTick:
    """What one tick did, per symbol: rows added, real bars stored today, the newest one,
    and the provider errors; with the requests made and feature rows appended."""

    window: LiveWindow
    added: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    last_bar: dict[str, pd.Timestamp | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sources: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)  # today's, as stored
    requests: int = 0
    features: dict[str, int] = field(default_factory=dict)

    @property
    def advanced(self) -> list[str]:
        return sorted(symbol for symbol, rows in self.added.items() if rows)


def live_tick(
    warehouse: Warehouse,
    providers: list[Provider],
    symbols: list[str],
    window: LiveWindow,
    now: pd.Timestamp,
    folds: list[FoldConfig] | None = None,
) -> LiveTick:
    """One pass of the updater over `symbols` (see the module docstring)."""
    tick = LiveTick(window)
    groups: dict[pd.Timestamp, list[str]] = defaultdict(list)
    for symbol in sorted(symbols):
        tick.bars[symbol] = bars = warehouse.read_bars(symbol, [window.day])
        real = bars.loc[~bars["is_filled"], "ts"]
        tick.sources[symbol].update(set(bars["source"]) - {"fill"})
        tick.added[symbol], tick.stored[symbol] = 0, len(real)
        tick.last_bar[symbol] = real.iloc[-1] if len(real) else None
        start = window.open if real.empty else real.iloc[-1] + pd.Timedelta(minutes=1)
        if start <= window.until:
            groups[start].append(symbol)
    for start, group in sorted(groups.items()):
        for symbol, fetched in _fetch(providers, group, start, window, now, tick).items():
            warehouse.store_bars(symbol, fetched.bars, [window.day])
            tick.bars[symbol] = core_bars.merge_bars(tick.bars[symbol], fetched.bars)
            if len(fetched.bars):
                tick.added[symbol] = len(fetched.bars)
                tick.stored[symbol] += len(fetched.bars)
                tick.last_bar[symbol] = fetched.bars["ts"].iloc[-1]
    _record_status(warehouse, tick)
    _follow(warehouse, tick, folds or [DEFAULT_FOLD])
    log_event(
        log, "live", f"tick through {_et(window.until)} ET", day=window.day.isoformat(),
        symbols=len(symbols), advanced=len(tick.advanced), requests=tick.requests,
        rows=sum(tick.added.values()), errors=len(tick.errors),
    )  # fmt: skip
    return tick


def _fetch(
    providers: list[Provider],
    symbols: list[str],
    start: pd.Timestamp,
    window: LiveWindow,
    now: pd.Timestamp,
    tick: LiveTick,
) -> dict[str, Fetched]:
    """The new bars of `symbols` from `start` to the window's last minute, from the first
    provider that answers (a ProviderError passes the symbols to the next one)."""
    for provider in providers:
        try:
            raw = _ask(provider, symbols, start, window, tick)
        except ProviderError as error:
            tick.errors.update({symbol: str(error) for symbol in symbols})
            continue
        results = {}
        for symbol in symbols:
            tick.errors.pop(symbol, None)
            frame = raw[symbol]
            results[symbol] = fetched = Fetched.start([window.day])
            fetched.absorb(provider.name, frame.loc[frame["ts"] >= start], [window.day], now)
            if len(fetched.bars):
                tick.sources[symbol].add(provider.name)
        return results
    return {}


def _ask(
    provider: Provider, symbols: list[str], start: pd.Timestamp, window: LiveWindow, tick: LiveTick
) -> dict[str, pd.DataFrame]:
    """One provider's bars for the window: one multi-symbol request where it can, else its
    day fetch per symbol (providers without minute windows serve whole days)."""
    fetch_window = getattr(provider, "fetch_window", None)
    if fetch_window is not None:
        tick.requests += 1
        return fetch_window(symbols, start, window.until)
    tick.requests += len(symbols)
    return {symbol: provider.fetch(symbol, window.day, window.day) for symbol in symbols}


def _record_status(warehouse: Warehouse, tick: LiveTick) -> None:
    """Today's `ingest_status` rows in one write: `partial` while the session runs (its
    missing minutes, as for any day, count the session minutes not stored, those still to
    come included; `stock-assets status` shows the ones already due)."""
    window = tick.window
    length = calendar.session_length(window.day)
    rows = []
    for symbol, real in sorted(tick.stored.items()):
        last = tick.last_bar[symbol]
        message = f"session open: bars through {_et(last)} ET" if last is not None else ""
        rows.append({
            "symbol": symbol, "date": window.day,
            "status": "partial" if real else "failed" if symbol in tick.errors else "empty",
            "provider": "+".join(sorted(tick.sources[symbol])) or None, "rows": real,
            "missing_minutes": length - real,
            "message": tick.errors.get(symbol) or message or "no bars yet today",
            "updated_at": pd.Timestamp.now(tz="UTC"),
        })  # fmt: skip
    warehouse.catalog.upsert_ingest_status(pd.DataFrame(rows))


def _follow(warehouse: Warehouse, tick: LiveTick, folds: list[FoldConfig]) -> None:
    """Today's regimes (when QQQ or VIXY advanced), then each symbol's derived bars and
    features, on two threads (Parquet reads and writes release the GIL)."""
    day = tick.window.day
    if {QQQ, VIXY} & set(tick.advanced):
        build_regimes(warehouse, [day])
    context: dict = {}  # QQQ/VIXY bars and regimes, read once for every symbol

    def follow(symbol: str) -> int:
        warehouse.store_derived(symbol, [day], tick.bars[symbol])
        return extend_features(warehouse, symbol, day, folds, context)

    with ThreadPoolExecutor(max_workers=2) as pool:
        tick.features = dict(zip(tick.advanced, pool.map(follow, tick.advanced), strict=True))


def _et(stamp: pd.Timestamp) -> str:
    return stamp.tz_convert(calendar.EXCHANGE_TZ).strftime("%H:%M")
