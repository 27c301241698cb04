"""The one symbol validator: every symbol passes here before it reaches a path,
a query or a partition key."""

from __future__ import annotations

import re
from collections.abc import Iterable

SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9.\-]{0,9}")
RULE = "symbols are 1-10 of A-Z 0-9 . - starting with a letter"


class InvalidSymbol(ValueError):
    """A symbol that does not follow RULE."""


def normalize_symbol(raw: object) -> str:
    """The upper-cased symbol, or InvalidSymbol naming the offending value."""
    if not isinstance(raw, str):
        raise InvalidSymbol(f"{raw!r}: {RULE}")
    symbol = raw.upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbol(f"{raw!r}: {RULE}")
    return symbol


def normalize_symbols(raws: Iterable[object]) -> list[str]:
    """Validated symbols, de-duplicated, in the order given."""
    symbols = [normalize_symbol(raw) for raw in raws]
    if not symbols:
        raise InvalidSymbol(f"no symbol given: {RULE}")
    return list(dict.fromkeys(symbols))
