"""The one symbol validator: every symbol passes here before it reaches a path,
a query or a partition key.

The rule is checked on the text as typed, in ASCII, before any case folding: Unicode
upper-casing turns `ß` into `SS` and `ſ` (long s) into `S`, so folding first would let
`ſpy` pass as SPY.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stock_assets.core.errors import UsageError

SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9.\-]{0,9}")
"""A canonical symbol: what normalize_symbol returns and partition keys must be."""
RULE = "symbols are 1-10 of A-Z 0-9 . - starting with a letter"
# Either case, ASCII only: `[A-Za-z]` has no Unicode reach without re.IGNORECASE.
_TYPED_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9.\-]{0,9}")


class InvalidSymbol(UsageError):
    """A symbol that does not follow RULE."""


def normalize_symbol(raw: object) -> str:
    """The upper-cased symbol, or InvalidSymbol naming the offending value."""
    if not isinstance(raw, str) or not _TYPED_PATTERN.fullmatch(raw):
        raise InvalidSymbol(f"{raw!r}: {RULE}")
    return raw.upper()


def normalize_symbols(raws: Iterable[object]) -> list[str]:
    """Validated symbols, de-duplicated, in the order given."""
    symbols = [normalize_symbol(raw) for raw in raws]
    if not symbols:
        raise InvalidSymbol(f"no symbol given: {RULE}")
    return list(dict.fromkeys(symbols))


def check_symbol_key(key: str) -> str:
    """The partition key itself when it is a canonical symbol, else InvalidSymbol.

    Partition keys name stored paths, so they are never silently re-cased: a key that
    would normalize to another spelling is refused with that spelling as the fix.
    """
    try:
        symbol = normalize_symbol(key)
    except InvalidSymbol:
        raise InvalidSymbol(f"partition key {key!r} is not a symbol: {RULE}") from None
    if symbol != key:
        raise InvalidSymbol(f"partition key {key!r} is not canonical: use {symbol!r}")
    return key
