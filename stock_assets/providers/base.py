"""What every market-data provider promises."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd

RAW_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "vwap", "trade_count"]


class ProviderError(RuntimeError):
    """The provider could not answer (network, authentication, server errors, bad file).

    The message says why and never contains a secret.
    """


class Provider(Protocol):
    """A source of 1-minute bars.

    `fetch` returns the regular-session bars of one symbol for the sessions from `start`
    to `end` (both included) with RAW_COLUMNS: `ts` is the bar-open time in UTC; `vwap`
    and `trade_count` may be NaN when the source lacks them. An empty frame means the
    provider answered and has no bars ("empty"); ProviderError means it could not answer.
    """

    name: str

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame: ...


def empty_raw() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in RAW_COLUMNS})
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
