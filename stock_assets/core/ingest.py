"""The rules of ingestion, without I/O: the provider order, how each provider's answer is
merged into what the earlier ones gave, which bars are too new to keep, and the outcome
of each (symbol, day).

Providers are asked in order. The first is asked for every requested day; the days that
still miss session minutes (or that it could not serve) are asked again of the next
provider, and only the bars still missing are taken from it. Each (symbol, day) ends
with a status:

- `ok`: every session minute is stored;
- `partial`: bars are stored but some session minutes are still missing;
- `empty`: a provider answered, but it has no bars for that day;
- `failed`: no provider gave any bar for the symbol in the request (the message says why
  for each provider), or every provider raised an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stock_assets.core import bars as core_bars
from stock_assets.core.errors import UsageError

PROVIDER_NAMES = ("alpaca", "yahoo", "synthetic", "csv")
STATUSES = ("ok", "partial", "empty", "failed")


class InvalidProviderOrder(UsageError):
    """A provider order naming no provider or an unknown one."""


def parse_provider_order(order: str, *, has_alpaca_keys: bool) -> list[str]:
    """Provider names from a comma-separated order; `auto` means alpaca,yahoo when Alpaca
    keys are set and synthetic otherwise."""
    names = [name.strip().lower() for name in order.split(",") if name.strip()]
    if names == ["auto"]:
        return ["alpaca", "yahoo"] if has_alpaca_keys else ["synthetic"]
    unknown = [name for name in names if name not in PROVIDER_NAMES]
    if unknown or not names:
        raise InvalidProviderOrder(
            f"provider order {order!r}: use auto or names from {', '.join(PROVIDER_NAMES)}"
        )
    return names


def last_completed_minute(now: pd.Timestamp) -> pd.Timestamp:
    """The open of the newest bar that has closed by `now` (UTC): a bar opening at
    10:19 closes at 10:20, so at 10:20:30 the newest complete bar is 10:19."""
    return pd.Timestamp(now).tz_convert("UTC").floor("min") - pd.Timedelta(minutes=1)


@dataclass
class DayOutcome:
    day: dt.date
    status: str
    provider: str | None
    message: str


@dataclass
class Fetched:
    """Validated bars of one symbol over the requested days, with what each provider said."""

    bars: pd.DataFrame
    days: list[dt.date]
    providers_by_day: dict[dt.date, list[str]] = field(default_factory=dict)
    asked_by_day: dict[dt.date, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    answered: bool = False

    @classmethod
    def start(cls, days: list[dt.date]) -> Fetched:
        return cls(bars=core_bars.empty_bars(), days=sorted(days))

    def wanted(self) -> list[dt.date]:
        """The requested days that still miss session minutes."""
        missing = core_bars.missing_by_day(self.bars, self.days)
        return [day for day in self.days if missing[day] > 0]

    def failed(self, provider: str, reason: str) -> None:
        self.notes.append(f"{provider}: {reason}")

    def count_dropped(self, dropped: dict[str, int]) -> None:
        for reason, count in dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def absorb(
        self, provider: str, raw: pd.DataFrame, wanted: list[dt.date], now: pd.Timestamp
    ) -> tuple[int, int]:
        """Validate one provider's answer and keep the bars of `wanted` days that earlier
        providers did not give; bars opening after the last completed minute are dropped
        (counted as `future`). Returns (rows kept from it, rows added)."""
        self.answered = True
        clean, validation = core_bars.validate_bars(core_bars.conform(raw, source=provider))
        dropped = dict(validation.dropped)
        future = (clean["ts"] > last_completed_minute(now)).to_numpy()
        if future.any():
            dropped["future"] = int(future.sum())
            clean = clean.loc[~future]
        self.count_dropped(dropped)
        keep = np.zeros(len(clean), dtype=bool)
        for day, (lo, hi) in core_bars.day_slices(clean["ts"], wanted).items():
            self.asked_by_day.setdefault(day, []).append(provider)
            if hi > lo:
                keep[lo:hi] = True
                self.providers_by_day.setdefault(day, []).append(provider)
        clean = clean.loc[keep]
        before = len(self.bars)
        self.bars = core_bars.merge_bars(self.bars, clean)
        if clean.empty:
            self.notes.append(f"{provider}: no bars")
        return len(clean), len(self.bars) - before


def day_outcomes(
    fetched: Fetched,
    symbol: str,
    stored_rows: dict[dt.date, int],
    missing: dict[dt.date, int],
) -> list[DayOutcome]:
    """The status of each requested day after storing (see the module docstring)."""
    why = "; ".join(fetched.notes) or "no provider configured"
    any_data = any(stored_rows.values())
    outcomes = []
    for day in fetched.days:
        providers = "+".join(fetched.providers_by_day.get(day, [])) or None
        if stored_rows.get(day, 0) == 0:
            if fetched.answered and any_data:
                asked = "+".join(fetched.asked_by_day.get(day, [])) or None
                message = f"no bars for {day} from {asked}"
                outcomes.append(DayOutcome(day, "empty", asked, message))
            else:
                message = f"no provider has data for {symbol}: {why}"
                outcomes.append(DayOutcome(day, "failed", providers, message))
        elif missing.get(day, 0):
            message = f"{missing[day]} session minutes without a real bar from {providers}"
            outcomes.append(DayOutcome(day, "partial", providers, message))
        else:
            outcomes.append(DayOutcome(day, "ok", providers, ""))
    return outcomes
