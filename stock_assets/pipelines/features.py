"""Building the feature warehouse: market regimes per day, and a symbol's features over
a range of days from the previous day's carry. The features and market_regimes assets
and the CLI call this."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core import features as core_features
from stock_assets.core import regimes as core_regimes
from stock_assets.core.folds import FoldConfig, label_folds
from stock_assets.storage.warehouse import Warehouse

QQQ, VIXY = "QQQ", "VIXY"
DEFAULT_FOLD = FoldConfig(train_days=30, test_days=5)


def fold_column(config: FoldConfig) -> str:
    return f"fold_{config.train_days}_{config.test_days}"


def fold_labels(ts: pd.Series, config: FoldConfig) -> np.ndarray:
    """'train'/'test' per row, episodes counted along every XNYS session since 2000, so all
    symbols share them and later data never relabels earlier days."""
    return label_folds(ts, config.train_days, config.test_days, sessions=_sessions()).to_numpy()


@functools.cache
def _sessions() -> list[dt.date]:
    return calendar.sessions(calendar.FIRST_DAY, calendar.last_day())


@dataclass
class RegimesBuilt:
    regimes: pd.DataFrame
    written: int
    has_qqq: bool
    has_vixy: bool


def build_regimes(warehouse: Warehouse, days: list[dt.date]) -> RegimesBuilt:
    """Compute and store the market regimes of the given days from QQQ and VIXY bars."""
    history = calendar.previous_sessions(days[0], core_regimes.REGIME_LOOKBACK_SESSIONS) + days
    qqq, vixy = warehouse.read_bars(QQQ, history), warehouse.read_bars(VIXY, history)
    regimes = core_regimes.compute_regimes(qqq, vixy, start=days[0])
    written = warehouse.store_regimes(regimes, days)
    return RegimesBuilt(regimes, written, not qqq.empty, not vixy.empty)


@dataclass
class FeaturesBuilt:
    table: pd.DataFrame
    written: int
    note: str


def build_features(
    warehouse: Warehouse, symbol: str, days: list[dt.date], folds: list[FoldConfig]
) -> FeaturesBuilt:
    """Compute, label and store one symbol's features for the given days, and record the
    feature definitions and fold configurations in the catalog."""
    table, note = symbol_features(warehouse, symbol, days, folds)
    written = warehouse.store_features(symbol, table, days)
    warehouse.catalog.record_features(
        symbol, core_features.feature_metadata_rows(), [f.key for f in folds], days
    )
    return FeaturesBuilt(table, written, note)


def extend_features(
    warehouse: Warehouse,
    symbol: str,
    day: dt.date,
    folds: list[FoldConfig],
    context: dict | None = None,
) -> int:
    """Append to a day's stored features the rows of its bars stored since (the live
    updater's path): the new rows continue from the carry of the day's last stored row
    over the same bars a whole-day build reads, so the day ends equal to that build.
    The number of rows added (a day with no features yet is built whole). `context`
    keeps the QQQ/VIXY bars and regimes read for one symbol for the next ones."""
    stored = warehouse.features_carry_day(symbol, day)
    if stored is None or stored.empty:
        built = build_features(warehouse, symbol, [day], folds)
        return len(built.table)
    after = core_features.carry_from(stored)
    table, _ = symbol_features(warehouse, symbol, [day], [], after=after, context=context)
    if table.empty:
        return 0
    for column in stored.columns[stored.columns.str.startswith("fold_")]:
        table[column] = stored[column].iloc[-1]  # one day, one label
    warehouse.store_features(symbol, pd.concat([stored[table.columns], table]), [day])
    return len(table)


def symbol_features(
    warehouse: Warehouse,
    symbol: str,
    days: list[dt.date],
    folds: list[FoldConfig],
    *,
    after: core_features.FeatureCarry | None = None,
    context: dict | None = None,
) -> tuple[pd.DataFrame, str]:
    """Features of one symbol's days: from the previous day's carry and LOOKBACK_SESSIONS of
    bars when that day was built, else from the start of the stored history. With `after`
    (the carry of a stored row of the first day), only the rows after it."""
    stored = [d for d in warehouse.bar_days(symbol) if d < days[0]]
    previous = stored[-1:] or []
    carry, note = None, ""
    tail = warehouse.features_carry_day(symbol, previous[0]) if previous else None
    history = stored
    if tail is not None and len(tail):
        carry = core_features.carry_from(tail)
        history = stored[-core_features.LOOKBACK_SESSIONS :]
    elif stored:
        note = f"no features stored for {previous[0]}: built from {stored[0]} on"
    window = history + days
    bars = warehouse.read_bars(symbol, window)
    first_open = calendar.session_bounds(days[0])[0]
    if history != stored and (bars["ts"] < first_open).sum() < core_features.LOOKBACK_BARS:
        window = stored + days  # short sessions: take everything before
        bars = warehouse.read_bars(symbol, window)
    if bars.empty:
        return pd.DataFrame(), f"no bars stored for {days[0]} .. {days[-1]}"
    context = {} if context is None else context
    context_days = calendar.previous_sessions(days[0], core_features.LOOKBACK_SESSIONS) + days
    around = sorted(set(context_days) | set(window))

    def read(key: tuple, reader):
        if key not in context:
            context[key] = reader()
        return context[key]

    qqq = read((QQQ, *around), lambda: warehouse.read_bars(QQQ, around))
    vixy = read((VIXY, *around), lambda: warehouse.read_bars(VIXY, around))
    regimes = read(("regimes", *days), lambda: warehouse.read_regimes(days))
    if after is not None:
        newer = bars["ts"] > after.ts
        if not newer.any():
            return pd.DataFrame(), ""
        start, carry = pd.Timestamp(bars["ts"][newer].iloc[0]), after
    else:
        start = days[0]
    try:
        table = core_features.compute_features(
            bars, start=start, qqq=qqq, vixy=vixy, regimes=regimes, carry=carry
        )
    except (core_features.CarryMismatch, core_features.InsufficientLookback) as error:
        note = f"{error}: rebuilt from {stored[0]} ({len(stored)} sessions)"
        bars = warehouse.read_bars(symbol, stored + days)
        table = core_features.compute_features(
            bars, start=start, qqq=qqq, vixy=vixy, regimes=regimes, carry=after
        )
    for config in folds:
        table[fold_column(config)] = fold_labels(table["ts"], config)
    return table, note
