"""The one symbol rule: ASCII before case folding, and canonical partition keys."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import (
    RULE,
    SYMBOL_PATTERN,
    InvalidSymbol,
    check_symbol_key,
    normalize_symbol,
    normalize_symbols,
)


@pytest.mark.parametrize(
    ("raw", "symbol"),
    [
        ("spy", "SPY"),
        ("SPY", "SPY"),
        ("brk.b", "BRK.B"),
        ("BF-B", "BF-B"),
        ("a12345678.", "A12345678."),
    ],
)
def test_ascii_symbols_are_upper_cased(raw: str, symbol: str) -> None:
    assert normalize_symbol(raw) == symbol


@pytest.mark.parametrize(
    "raw",
    [
        "ß",  # upper-cases to "SS"
        "ſpy",  # long s: upper-cases to "SPY"
        "ﬀ",  # ligature: upper-cases to "FF"
        "\u212a",  # Kelvin sign: lower-cases to "k"
        "ＳＰＹ",  # full-width letters
        "spý",
        "SPY\n",
        " SPY",
        "",
        "1SPY",
        ".SPY",
        "../x",
        "ABCDEFGHIJK",
        "S P",
    ],
)
def test_anything_outside_the_ascii_rule_is_refused_before_upper_casing(raw: str) -> None:
    with pytest.raises(InvalidSymbol) as caught:
        normalize_symbol(raw)
    assert str(caught.value) == f"{raw!r}: {RULE}"


def test_non_text_is_refused_with_the_rule() -> None:
    with pytest.raises(InvalidSymbol) as caught:
        normalize_symbol(42)
    assert str(caught.value) == "42: symbols are 1-10 of A-Z 0-9 . - starting with a letter"


def test_normalize_symbols_dedups_in_order_and_needs_one() -> None:
    assert normalize_symbols(["spy", "QQQ", "SPY", "qqq", "iwm"]) == ["SPY", "QQQ", "IWM"]
    with pytest.raises(InvalidSymbol) as caught:
        normalize_symbols([])
    assert str(caught.value) == f"no symbol given: {RULE}"
    with pytest.raises(InvalidSymbol) as caught:
        normalize_symbols(["SPY", "straße"])
    assert str(caught.value) == f"'straße': {RULE}"


def test_invalid_symbol_is_a_usage_error_and_a_value_error() -> None:
    assert issubclass(InvalidSymbol, UsageError)
    assert issubclass(UsageError, ValueError)


@pytest.mark.parametrize("key", ["SPY", "BRK.B", "BF-B", "A"])
def test_canonical_partition_keys_pass_unchanged(key: str) -> None:
    assert check_symbol_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("msft", "partition key 'msft' is not canonical: use 'MSFT'"),
        ("Brk.b", "partition key 'Brk.b' is not canonical: use 'BRK.B'"),
        ("../x", f"partition key '../x' is not a symbol: {RULE}"),
        ("ſpy", f"partition key 'ſpy' is not a symbol: {RULE}"),
        ("SS\u0301", f"partition key 'SS\u0301' is not a symbol: {RULE}"),
        ("", f"partition key '' is not a symbol: {RULE}"),
    ],
)
def test_non_canonical_partition_keys_name_the_fix(key: str, message: str) -> None:
    with pytest.raises(InvalidSymbol) as caught:
        check_symbol_key(key)
    assert str(caught.value) == message


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@given(
    st.one_of(
        st.text(max_size=12),
        st.from_regex(re.compile(r"[A-Za-zßſ\u212a][A-Za-z0-9.\-ßſ\u212a]{0,10}"), fullmatch=True),
    )
)
def test_a_symbol_is_refused_or_is_the_ascii_upper_case_of_the_input(raw: str) -> None:
    try:
        symbol = normalize_symbol(raw)
    except InvalidSymbol:
        return
    assert SYMBOL_PATTERN.fullmatch(symbol)
    assert symbol.isascii() and raw.isascii()
    assert symbol.translate(_ASCII_LOWER) == raw.translate(_ASCII_LOWER)
    assert check_symbol_key(symbol) == symbol
