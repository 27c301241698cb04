"""The market-data resource: providers chained per symbol in a configurable order.

The first provider is asked for every requested day; the days that still miss session
minutes (or that it could not serve) are asked again of the next provider, and only the
bars still missing are taken from it. Each (symbol, day) ends with a status:

- `ok`: every session minute is stored;
- `partial`: bars are stored but some session minutes are still missing;
- `empty`: a provider answered, but it has no bars for that day;
- `failed`: no provider gave any bar for the symbol in the request (the message says why
  for each provider), or every provider raised an error.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import dagster as dg
import numpy as np
import pandas as pd

from stock_assets.core import bars as core_bars
from stock_assets.logs import get_logger, log_event
from stock_assets.providers.base import Provider, ProviderError

PROVIDER_NAMES = ("alpaca", "yahoo", "synthetic", "csv")
log = get_logger(__name__)


def parse_provider_order(order: str) -> list[str]:
    """Provider names from a comma-separated order; `auto` means alpaca,yahoo when Alpaca
    keys are set and synthetic otherwise."""
    names = [name.strip().lower() for name in order.split(",") if name.strip()]
    if names == ["auto"]:
        from stock_assets.providers.alpaca import alpaca_keys_from_env

        return ["alpaca", "yahoo"] if alpaca_keys_from_env() else ["synthetic"]
    unknown = [name for name in names if name not in PROVIDER_NAMES]
    if unknown or not names:
        raise ValueError(
            f"provider order {order!r}: use auto or names from {', '.join(PROVIDER_NAMES)}"
        )
    return names


@dataclass
class DayOutcome:
    day: dt.date
    status: str
    provider: str | None
    message: str


@dataclass
class Fetched:
    """Validated bars of one symbol over the requested days, with per-day outcomes."""

    bars: pd.DataFrame
    days: list[dt.date]
    providers_by_day: dict[dt.date, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    answered: bool = False


class MarketDataResource(dg.ConfigurableResource):
    """Where bars come from. Unset fields are read from the environment when used, so
    keys never pass through run config or the UI: STOCK_ASSETS_PROVIDERS (default
    `auto`), ALPACA_FEED (default `iex`),
    ALPACA_DATA_URL, STOCK_ASSETS_CSV_PATH, STOCK_ASSETS_CSV_LABEL (`start` or `end`: is
    each row labelled by its bar's first or last minute) and the Alpaca key aliases."""

    providers: str | None = None
    alpaca_key_id: str | None = None
    alpaca_secret_key: str | None = None
    alpaca_feed: str | None = None
    alpaca_data_url: str | None = None
    synthetic_seed: int = 0
    csv_path: str | None = None
    csv_label: str | None = None
    csv_timezone: str = "America/New_York"

    def chain(self, order: str | None = None) -> list[Provider]:
        """The providers in order (`order` overrides the configured one)."""
        order = order or self.providers or os.environ.get("STOCK_ASSETS_PROVIDERS") or "auto"
        return [self._provider(name) for name in parse_provider_order(order)]

    def _provider(self, name: str) -> Provider:
        if name == "alpaca":
            from stock_assets.providers.alpaca import AlpacaProvider

            if not (self.alpaca_key_id and self.alpaca_secret_key):
                return AlpacaProvider.from_env()
            return AlpacaProvider(
                self.alpaca_key_id,
                self.alpaca_secret_key,
                feed=self.alpaca_feed or os.environ.get("ALPACA_FEED") or "iex",
                data_url=self.alpaca_data_url or os.environ.get("ALPACA_DATA_URL") or None,
            )
        if name == "yahoo":
            from stock_assets.providers.yahoo import YahooProvider

            return YahooProvider()
        if name == "csv":
            from stock_assets.providers.csv import CsvProvider

            path = self.csv_path or os.environ.get("STOCK_ASSETS_CSV_PATH")
            if not path:
                raise ValueError("provider csv needs a path (--csv PATH or STOCK_ASSETS_CSV_PATH)")
            label = self.csv_label or os.environ.get("STOCK_ASSETS_CSV_LABEL") or "start"
            return CsvProvider(path, label=label, timezone=self.csv_timezone)
        from stock_assets.providers.synthetic import SyntheticProvider

        return SyntheticProvider(seed=self.synthetic_seed)

    def fetch(self, symbol: str, days: list[dt.date], order: str | None = None) -> Fetched:
        return fetch_chain(self.chain(order), symbol, days)


def fetch_chain(providers: list[Provider], symbol: str, days: list[dt.date]) -> Fetched:
    """Ask each provider in turn for the days still missing minutes; keep what it adds."""
    fetched = Fetched(bars=core_bars.empty_bars(), days=sorted(days))
    wanted = list(fetched.days)
    for provider in providers:
        if not wanted:
            break
        try:
            raw = provider.fetch(symbol, wanted[0], wanted[-1])
        except ProviderError as error:
            fetched.notes.append(f"{provider.name}: {error}")
            log.warning(
                "provider failed",
                extra={"stage": "fetch", "symbol": symbol, "provider": provider.name,
                       "error": str(error)},
            )  # fmt: skip
            continue
        fetched.answered = True
        clean, validation = core_bars.validate_bars(core_bars.conform(raw, source=provider.name))
        for reason, count in validation.dropped.items():
            fetched.dropped[reason] = fetched.dropped.get(reason, 0) + count
        keep = np.zeros(len(clean), dtype=bool)
        for day, (lo, hi) in core_bars.day_slices(clean["ts"], wanted).items():
            if hi > lo:
                keep[lo:hi] = True
                fetched.providers_by_day.setdefault(day, []).append(provider.name)
        clean = clean.loc[keep]
        before = len(fetched.bars)
        fetched.bars = core_bars.merge_bars(fetched.bars, clean)
        if clean.empty:
            fetched.notes.append(f"{provider.name}: no bars")
        log_event(
            log, "fetch", "provider answered", symbol=symbol, provider=provider.name,
            days=len(wanted), rows=len(clean), added=len(fetched.bars) - before,
            dropped=validation.total,
        )  # fmt: skip
        missing = core_bars.missing_by_day(fetched.bars, wanted)
        wanted = [day for day in wanted if missing[day] > 0]
    return fetched


def day_outcomes(fetched: Fetched, symbol: str, stored_rows: dict[dt.date, int],
                 missing: dict[dt.date, int]) -> list[DayOutcome]:  # fmt: skip
    """The status of each requested day after storing (see the module docstring)."""
    why = "; ".join(fetched.notes) or "no provider configured"
    any_data = any(stored_rows.values())
    outcomes = []
    for day in fetched.days:
        providers = "+".join(fetched.providers_by_day.get(day, [])) or None
        if stored_rows.get(day, 0) == 0:
            if fetched.answered and any_data:
                outcomes.append(DayOutcome(day, "empty", providers, f"no bars for {day}: {why}"))
            else:
                message = f"no provider has data for {symbol}: {why}"
                outcomes.append(DayOutcome(day, "failed", providers, message))
        elif missing.get(day, 0):
            message = f"{missing[day]} session minutes without a real bar from {providers}"
            outcomes.append(DayOutcome(day, "partial", providers, message))
        else:
            outcomes.append(DayOutcome(day, "ok", providers, ""))
    return outcomes
