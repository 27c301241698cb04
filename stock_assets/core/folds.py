"""Segmented data: train/test episodes over trading days, and the fold configurations present.

A fold configuration ``FoldConfig(train_days=30, test_days=5)`` cuts a symbol's trading days
into repeating episodes of 30 train days followed by 5 test days. Day k (0-based, counted
along ``sessions``) is in episode ``k // (train + test)`` and is a train day when
``k % (train + test) < train``. Every row of a day gets that day's label, so a day is never
split. Counting along a fixed session list (e.g. every XNYS session since an epoch) gives
every symbol the same episodes; by default the days present in the input are counted, which
is stable under appending later data (earlier days keep their labels).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stock_assets.core import series
from stock_assets.core.errors import UsageError

TRAIN, TEST = "train", "test"
MAX_EPISODE_DAYS = 10_000


class InvalidFold(UsageError):
    """A fold configuration that cannot be used; the message names the field and range."""


_EPOCH = datetime.date(1970, 1, 1)


@dataclass(frozen=True, order=True)
class FoldConfig:
    """Episodes of ``train_days`` train days then ``test_days`` test days."""

    train_days: int
    test_days: int

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidFold(
                    f"{name}={value!r}: a whole number of days, 1..{MAX_EPISODE_DAYS}"
                )
            if not 1 <= value <= MAX_EPISODE_DAYS:
                raise InvalidFold(
                    f"{name}={value!r}: a whole number of days, 1..{MAX_EPISODE_DAYS}"
                )

    @property
    def key(self) -> str:
        """Canonical JSON, the form stored in the catalog: '{"train_days":30,"test_days":5}'."""
        return json.dumps(
            {"train_days": self.train_days, "test_days": self.test_days}, separators=(",", ":")
        )

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | FoldConfig) -> FoldConfig:
        """From a FoldConfig, a mapping or its JSON text; unknown keys are an error."""
        if isinstance(value, FoldConfig):
            return value
        try:
            mapping = json.loads(value) if isinstance(value, str) else dict(value)
        except (ValueError, TypeError):
            mapping = None
        if not isinstance(mapping, dict):
            raise InvalidFold(
                f'fold config {value!r}: JSON like {{"train_days": 30, "test_days": 5}}'
            )
        unknown = set(mapping) - {"train_days", "test_days"}
        if unknown:
            raise InvalidFold(f"fold config {value!r}: unknown keys {sorted(unknown)}")
        if {"train_days", "test_days"} - set(mapping):
            raise InvalidFold(f"fold config {value!r}: needs train_days and test_days")
        days = []
        for name in ("train_days", "test_days"):
            number = mapping[name]
            whole = isinstance(number, int) or (isinstance(number, float) and number.is_integer())
            if isinstance(number, bool) or not whole:
                raise InvalidFold(
                    f"{name}={number!r}: a whole number of days, 1..{MAX_EPISODE_DAYS}"
                )
            days.append(int(number))
        return cls(*days)


def _day_numbers(values: Any) -> np.ndarray:
    """Trading day (days since 1970-01-01) of each value: the ET date of a tz-aware timestamp,
    the date itself of a date, a naive timestamp or a date string."""
    index = pd.DatetimeIndex(values if isinstance(values, pd.Series | np.ndarray) else list(values))
    if index.tz is not None:
        return series.day_number(series.utc_ns(index))
    return ((index.normalize() - pd.Timestamp(_EPOCH)).days).to_numpy(np.int64)


def fold_positions(
    ts_or_dates: Any,
    train_days: int,
    test_days: int,
    *,
    sessions: Iterable[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(episode number, is_train) per row. See the module docstring for the rule.

    sessions: the trading days that are counted (dates); default: the distinct days of the
    input. A row whose day is not in ``sessions`` raises ValueError.
    """
    config = FoldConfig(train_days, test_days)
    days = _day_numbers(ts_or_dates)
    grid = np.unique(days if sessions is None else _day_numbers(list(sessions)))
    rank = np.searchsorted(grid, days)
    outside = (rank >= len(grid)) | (grid[np.minimum(rank, len(grid) - 1)] != days)
    if len(days) and outside.any():
        bad = _EPOCH + datetime.timedelta(days=int(days[np.argmax(outside)]))
        raise ValueError(f"day {bad} is not one of the sessions the folds are counted along")
    period = config.train_days + config.test_days
    return rank // period, rank % period < config.train_days


def label_folds(
    ts_or_dates: Any,
    train_days: int,
    test_days: int,
    *,
    sessions: Iterable[Any] | None = None,
) -> pd.Series:
    """'train' or 'test' for every row (Series named fold_split, the input's index if any)."""
    _, is_train = fold_positions(ts_or_dates, train_days, test_days, sessions=sessions)
    index = ts_or_dates.index if isinstance(ts_or_dates, pd.Series) else None
    return pd.Series(np.where(is_train, TRAIN, TEST), index=index, name="fold_split")


def fold_episode(
    ts_or_dates: Any,
    train_days: int,
    test_days: int,
    *,
    sessions: Iterable[Any] | None = None,
) -> pd.Series:
    """Episode number (0, 1, ...) of every row (Series named fold_episode)."""
    episode, _ = fold_positions(ts_or_dates, train_days, test_days, sessions=sessions)
    index = ts_or_dates.index if isinstance(ts_or_dates, pd.Series) else None
    return pd.Series(episode, index=index, name="fold_episode")


def _records(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        return rows.to_dict("records")
    return list(rows)


def list_fold_configs(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[FoldConfig]:
    """The distinct fold configurations present, sorted (the 'Global Data Options').

    rows: catalog rows (a DataFrame or mappings) with a ``fold_config`` value (JSON text, a
    mapping or a FoldConfig); rows whose fold_config is empty (no folds) are skipped.
    """
    configs = {
        FoldConfig.parse(r["fold_config"]) for r in _records(rows) if _has_config(r["fold_config"])
    }
    return sorted(configs)


def symbols_with_fold(
    rows: pd.DataFrame | Iterable[Mapping[str, Any]], config: str | Mapping[str, Any] | FoldConfig
) -> list[str]:
    """Sorted symbols having rows with this fold configuration (rows need ``symbol`` too)."""
    wanted = FoldConfig.parse(config)
    return sorted(
        {
            str(r["symbol"])
            for r in _records(rows)
            if _has_config(r["fold_config"]) and FoldConfig.parse(r["fold_config"]) == wanted
        }
    )


def _has_config(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return not (isinstance(value, str) and not value.strip())
