"""The `synthetic` provider: generated bars, the embedded default when no Alpaca keys are set.

Bars come from `core.synthetic.generate_range`, so the same (symbol, day, seed) always
gives the same bars and every part of the system runs on a fresh machine with no network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd

from stock_assets.core.symbols import normalize_symbol
from stock_assets.core.synthetic import generate_range
from stock_assets.logs import get_logger, log_event
from stock_assets.providers.base import RAW_COLUMNS, empty_raw

logger = get_logger(__name__)


class SyntheticProvider:
    """Deterministic synthetic 1-minute bars for any valid symbol.

    `empty_symbols` lists symbols for which the provider answers with no bars, so tests
    can simulate a symbol the source does not know.
    """

    name = "synthetic"

    def __init__(self, seed: int = 0, empty_symbols: Iterable[str] = ()) -> None:
        self.seed = int(seed)
        self.empty_symbols = frozenset(normalize_symbol(symbol) for symbol in empty_symbols)

    def __repr__(self) -> str:
        empty = sorted(self.empty_symbols)
        return f"SyntheticProvider(seed={self.seed}, empty_symbols={empty})"

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """The regular-session bars of `symbol` for the sessions from start to end."""
        symbol = normalize_symbol(symbol)
        if symbol in self.empty_symbols:
            bars = empty_raw()
        else:
            bars = generate_range(symbol, start, end, self.seed)[RAW_COLUMNS]
        log_event(
            logger,
            "fetch",
            "synthetic bars generated",
            provider=self.name,
            symbol=symbol,
            start=start.isoformat(),
            end=end.isoformat(),
            seed=self.seed,
            rows=len(bars),
        )
        return bars
