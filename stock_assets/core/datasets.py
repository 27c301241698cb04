"""Model datasets: (X, y) from a symbol's feature rows that cannot see the future.

A dataset is built from the primary symbol's 1-minute feature frame (``ts``, prices,
``FEATURE_COLUMNS``, fold columns such as ``fold_30_5``) and up to ``MAX_CONTEXT`` context
tickers' frames, for one ``DatasetSpec``:

- Context: strict inner join on ``ts`` (a minute missing from any ticker is dropped); the
  context ticker's model columns come suffixed with its symbol (``rsi_14_SPY``). Its
  market-wide columns (categories context, regime, time) equal the primary's and are left out.
- Timeframe: 1-minute rows are grouped into session-aligned America/New_York buckets
  (``TIMEFRAMES``; 4h/8h from 09:30 ET, 1d one session). A bucket's features are those of its
  last minute (point in time), its prices are the bucket's OHLC, its ``ts`` the bucket start,
  and it is a test bucket when any of its minutes is a test row.
- Target on the resampled series, N = ``horizon`` bars ahead, P = the ``target`` column:
  log_return y_t = ln(P_{t+N} / P_t), pct_change P_{t+N} / P_t - 1, price P_{t+N} (allowed,
  flagged: a price level is no stationary target). Classifier: y_t = 1 if P_{t+N} > P_t else
  0 (a flat move is 0). ``base_price`` = P_t and ``future_price`` = P_{t+N} stay beside X,
  aligned by ``ts``, to rebuild prices from predicted returns; they are never in X.

Leakage guards:
- X holds only the registry's model columns (``features.model_feature_columns``): never a
  price or volume level, never a column the registry does not know.
- Purge: a train row t is dropped when a test row lies in t+1 .. t+horizon+fill_delay (its
  label window, plus the bars until a simulated order fills). Embargo: the ``embargo`` rows
  after each test episode are dropped too (default and minimum: the fill delay), because
  their rolling features still overlap the episode.
- ``walk_forward_splits``: each test episode is predicted by a fit on the usable train rows
  before it; ``purged_cv`` is the splitter for cross-validation inside a fit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.errors import UsageError
from stock_assets.core.features import model_feature_columns, spec_for_column
from stock_assets.core.folds import TEST, TRAIN

log = logging.getLogger(__name__)

TIMEFRAMES: dict[str, int | None] = {
    "1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "8h": 480, "1d": None,
}  # fmt: skip
TARGET_COLUMNS = ("close", "open", "high", "low")
TRANSFORMS = ("log_return", "pct_change", "price")
KINDS = ("regressor", "classifier")
MAX_CONTEXT = 3
DEFAULT_FILL_DELAY = 4  # FILL_REALISTIC's delay in the simulator: the conservative default
MIN_TRAIN_ROWS = 50
_CONTEXT_SKIP = ("context", "regime", "time")
_REGIME_PARTITIONS = ("regime_vix", "regime_gmm")
_NS_PER_MIN = 60_000_000_000


class DatasetError(UsageError):
    """A dataset that cannot be built as asked (the message names the value and the fix)."""


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What to predict, from which rows and columns. See the module docstring.

    features: whitelist of X columns (None: every model column present); exclude: blacklist.
    fill_delay: bars between a signal and its fill in the simulator; embargo: rows dropped
    after each test episode (None: the fill delay; never less).
    """

    target: str = "close"
    transform: str = "log_return"
    horizon: int = 1
    kind: str = "regressor"
    timeframe: str = "1m"
    fold: str = "fold_30_5"
    context: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    fill_delay: int = DEFAULT_FILL_DELAY
    embargo: int | None = None

    def __post_init__(self) -> None:
        for name in ("context", "exclude", "features"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        _check_choice("target", self.target, TARGET_COLUMNS)
        _check_choice("transform", self.transform, TRANSFORMS)
        _check_choice("kind", self.kind, KINDS)
        _check_choice("timeframe", self.timeframe, tuple(TIMEFRAMES))
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise DatasetError(f"horizon {self.horizon!r}: a whole number of bars >= 1")
        if not isinstance(self.fill_delay, int) or self.fill_delay < 0:
            raise DatasetError(f"fill_delay {self.fill_delay!r}: a whole number of bars >= 0")
        if self.embargo is not None and self.embargo < self.fill_delay:
            raise DatasetError(
                f"embargo {self.embargo!r}: at least the fill delay ({self.fill_delay} bars)"
            )
        if len(self.context) > MAX_CONTEXT:
            raise DatasetError(
                f"context {list(self.context)}: at most {MAX_CONTEXT} context symbols"
            )

    @property
    def purge_bars(self) -> int:
        """Rows after a train row that its label and fill may reach: horizon + fill delay."""
        return self.horizon + self.fill_delay

    @property
    def embargo_bars(self) -> int:
        return self.fill_delay if self.embargo is None else self.embargo


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise DatasetError(f"{name} {value!r}: choose one of {', '.join(valid)}")


@dataclass
class Dataset:
    """Rows in time order; every array has one entry per row of X.

    y is NaN where the label is unknown (the last horizon rows). ``episode`` numbers the test
    episodes (runs of test rows) from 0; a train row carries the number of the episode it
    precedes (train rows after the last episode: ``n_episodes``).
    """

    spec: DatasetSpec
    X: pd.DataFrame
    y: pd.Series
    ts: pd.Series
    base_price: pd.Series
    future_price: pd.Series
    is_test: np.ndarray
    purged: np.ndarray
    episode: np.ndarray
    regimes: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def raw_price_target(self) -> bool:
        return self.spec.transform == "price" and self.spec.kind == "regressor"

    @property
    def usable(self) -> np.ndarray:
        return np.isfinite(self.y.to_numpy(np.float64)) & np.isfinite(self.base_price.to_numpy())

    @property
    def train_rows(self) -> np.ndarray:
        """Rows a fit may read: train, labelled, not purged or embargoed."""
        return ~self.is_test & ~self.purged & self.usable

    @property
    def test_rows(self) -> np.ndarray:
        return self.is_test & self.usable

    @property
    def n_episodes(self) -> int:
        return int(self.episode[self.is_test].max()) + 1 if self.is_test.any() else 0


def purge_mask(is_test: np.ndarray, purge_bars: int, embargo_bars: int) -> np.ndarray:
    """True for each train row to drop: a test row lies in i+1 .. i+purge_bars (its label
    window reaches into a test episode) or in i-embargo_bars .. i-1 (right after one)."""
    is_test = np.asarray(is_test, dtype=bool)
    n = len(is_test)
    count = np.concatenate(([0], np.cumsum(is_test)))  # count[k] = test rows among 0..k-1
    pos = np.arange(n)
    ahead = count[np.minimum(pos + 1 + purge_bars, n)] - count[pos + 1]
    behind = count[pos] - count[np.maximum(pos - embargo_bars, 0)]
    return ~is_test & ((ahead > 0) | (behind > 0))


def episode_numbers(is_test: np.ndarray) -> np.ndarray:
    """Episode of each row: test runs numbered 0, 1, ...; a train row gets the next run's."""
    is_test = np.asarray(is_test, dtype=bool)
    starts = is_test & ~np.concatenate(([False], is_test[:-1]))
    run = np.cumsum(starts) - 1  # index of the latest test run started at or before the row
    return np.where(is_test, run, run + 1).astype(np.int64)


def make_target(
    base: np.ndarray, future: np.ndarray, transform: str, kind: str = "regressor"
) -> np.ndarray:
    """y from P_t (base) and P_{t+N} (future); NaN where either is missing or not > 0."""
    base, future = np.asarray(base, np.float64), np.asarray(future, np.float64)
    ok = (base > 0) & (future > 0)
    safe_base, safe_future = np.where(ok, base, 1.0), np.where(ok, future, 1.0)
    if kind == "classifier":
        y = (safe_future > safe_base).astype(np.float64)
    elif transform == "log_return":
        y = np.log(safe_future / safe_base)
    elif transform == "pct_change":
        y = safe_future / safe_base - 1.0
    else:
        y = safe_future
    return np.where(ok, y, np.nan)


def _bucket_starts(ns: np.ndarray, timeframe: str) -> np.ndarray:
    """Session-aligned bucket start (UTC ns) of each bar-open time."""
    width = TIMEFRAMES[timeframe]
    _, opens, closes = calendar.bounds_ns()
    session = np.searchsorted(opens, ns, side="right") - 1
    inside = (session >= 0) & (ns < closes[np.clip(session, 0, len(closes) - 1)])
    if not inside.all():
        bad = pd.Timestamp(ns[np.argmin(inside)], tz="UTC")
        raise DatasetError(f"row at {bad} is outside the XNYS sessions: cannot resample it")
    open_ns = opens[session]
    if width is None:
        return open_ns
    step = width * _NS_PER_MIN
    return open_ns + (ns - open_ns) // step * step


def resample_rows(frame: pd.DataFrame, timeframe: str, fold: str) -> pd.DataFrame:
    """One row per bucket: features of its last minute, the bucket's OHLC, test if any
    minute is test, ``ts`` = bucket start. '1m' returns the frame as it is."""
    if timeframe == "1m":
        return frame
    ns = frame["ts"].to_numpy("datetime64[ns]").astype(np.int64)
    bucket = _bucket_starts(ns, timeframe)
    first = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    last = np.concatenate((first[1:] - 1, [len(bucket) - 1]))
    out = frame.iloc[last].reset_index(drop=True)
    out["ts"] = pd.DatetimeIndex(bucket[first], tz="UTC")
    if "open" in frame:
        out["open"] = frame["open"].to_numpy()[first]
    for col, reduce in (("high", np.maximum), ("low", np.minimum)):
        if col in frame:
            out[col] = reduce.reduceat(frame[col].to_numpy(np.float64), first)
    test = np.add.reduceat((frame[fold].to_numpy() == TEST).astype(np.int64), first) > 0
    out[fold] = np.where(test, TEST, TRAIN)
    return out


def _context_columns(symbol: str, frame: pd.DataFrame) -> dict[str, str]:
    """{column in the context frame: suffixed name} of its non-market-wide model columns."""
    return {
        col: f"{col}_{symbol}"
        for col in model_feature_columns()
        if col in frame and spec_for_column(col).category not in _CONTEXT_SKIP
    }


def _utc_ns_ts(frame: pd.DataFrame, who: str) -> pd.DataFrame:
    if "ts" not in frame:
        raise DatasetError(f"{who} frame has no ts column")
    ts = pd.DatetimeIndex(frame["ts"])
    if ts.tz is None:
        raise DatasetError(f"{who} frame: ts must be tz-aware (UTC bar-open times)")
    if not ts.is_monotonic_increasing or not ts.is_unique:
        raise DatasetError(f"{who} frame: ts must be sorted and unique")
    return frame.assign(ts=ts.tz_convert("UTC").as_unit("ns"))


def _join_context(
    primary: pd.DataFrame, spec: DatasetSpec, context: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, list[str]]:
    joined, names = primary, []
    for symbol in spec.context:
        if symbol not in context:
            raise DatasetError(f"context symbol {symbol!r}: no frame given ({sorted(context)})")
        frame = _utc_ns_ts(context[symbol], f"context {symbol}")
        columns = _context_columns(symbol, frame)
        part = frame[["ts", *columns]].rename(columns=columns)
        joined = joined.merge(part, on="ts", how="inner", validate="one_to_one")
        names.extend(columns.values())
    return joined, names


def resolve_features(
    available: Sequence[str],
    parent_features: Sequence[str] | None = None,
    whitelist: Sequence[str] | None = None,
    blacklist: Sequence[str] = (),
) -> list[str]:
    """A model's features, in ``available`` order: the parent's (every available column for
    a model without parent), narrowed to ``whitelist`` when given, less ``blacklist``.

    Every name must be available (a parent's, whitelisted or blacklisted feature missing
    here, or a price/volume level, raises DatasetError); an empty result raises too.
    """

    def check(names: Sequence[str], role: str, within: Sequence[str]) -> None:
        for name in names:
            if name in within:
                continue
            known = spec_for_column(name)
            if known is not None and known.scaling in ("level", "meta"):
                raise DatasetError(
                    f"{role} {name!r} is a {known.scaling} column ({known.category}): X holds "
                    "only stationary columns"
                )
            if name in available:
                raise DatasetError(f"{role} {name!r} is not among the parent's features")
            raise DatasetError(
                f"{role} {name!r} does not exist; choose from {', '.join(available)}"
            )

    inherited = list(available) if parent_features is None else list(parent_features)
    check(inherited, "parent feature", available)
    check(blacklist, "excluded feature", available)
    if whitelist is not None:
        check(whitelist, "feature", inherited)
        inherited = [c for c in inherited if c in set(whitelist)]
    chosen = set(inherited) - set(blacklist)
    result = [c for c in available if c in chosen]
    if not result:
        raise DatasetError("no feature left after the whitelist and blacklist")
    return result


def build_dataset(
    primary: pd.DataFrame,
    spec: DatasetSpec,
    context: Mapping[str, pd.DataFrame] | None = None,
) -> Dataset:
    """The dataset of ``spec`` over the primary symbol's 1-minute feature rows.

    context: {symbol: feature frame} holding at least the symbols of ``spec.context``.
    Raises DatasetError for a missing target or fold column, an unknown or level feature, a
    fold without test rows or too few train rows (< MIN_TRAIN_ROWS).
    """
    frame = _utc_ns_ts(primary, "primary")
    for col, what in ((spec.target, "target column"), (spec.fold, "fold column")):
        if col not in frame:
            raise DatasetError(f"{what} {col!r} is not in the primary frame")
    labels = frame[spec.fold].to_numpy()
    if not np.isin(labels, (TRAIN, TEST)).all():
        raise DatasetError(f"fold column {spec.fold!r} holds values other than 'train'/'test'")
    own = [c for c in model_feature_columns() if c in frame]
    frame, context_names = _join_context(frame, spec, context or {})
    columns = resolve_features(own + context_names, None, spec.features, spec.exclude)
    keep = ["ts", spec.target, spec.fold, *columns]
    keep += [c for c in ("open", "high", "low") if c in frame and c not in keep]
    keep += [c for c in _REGIME_PARTITIONS if c in frame and c not in keep]
    rows = resample_rows(frame[keep], spec.timeframe, spec.fold)

    is_test = rows[spec.fold].to_numpy() == TEST
    if not is_test.any():
        raise DatasetError(f"fold {spec.fold!r} has no test rows in this range: widen the range")
    base = rows[spec.target].to_numpy(np.float64)
    future = np.concatenate((base[spec.horizon :], np.full(min(spec.horizon, len(base)), np.nan)))
    y = make_target(base, future, spec.transform, spec.kind)
    warnings: list[str] = []
    if spec.transform == "price" and spec.kind == "regressor":
        warnings.append(
            f"raw price target ({spec.target} {spec.horizon} bars ahead): not stationary, "
            "metrics and models do not carry across price levels; prefer log_return"
        )
        log.warning("dataset: %s", warnings[-1])
    dataset = Dataset(
        spec=spec,
        X=rows[columns].reset_index(drop=True),
        y=pd.Series(y, name="y"),
        ts=rows["ts"].reset_index(drop=True),
        base_price=pd.Series(base, name="base_price"),
        future_price=pd.Series(future, name="future_price"),
        is_test=is_test,
        purged=purge_mask(is_test, spec.purge_bars, spec.embargo_bars),
        episode=episode_numbers(is_test),
        regimes=rows[[c for c in _REGIME_PARTITIONS if c in rows]].reset_index(drop=True),
        warnings=warnings,
    )
    n_train = int(dataset.train_rows.sum())
    if n_train < MIN_TRAIN_ROWS:
        raise DatasetError(
            f"{n_train} usable train rows after purge and embargo, need {MIN_TRAIN_ROWS}: "
            "widen the range or use a shorter timeframe"
        )
    log.info(
        "dataset built",
        extra={
            "rows": len(rows), "features": len(columns), "train_rows": n_train,
            "test_rows": int(dataset.test_rows.sum()), "purged": int(dataset.purged.sum()),
            "episodes": dataset.n_episodes, "timeframe": spec.timeframe,
        },
    )  # fmt: skip
    return dataset


@dataclass(frozen=True)
class Split:
    """One fit: the rows it reads, the rows it predicts, their episodes."""

    fit_rows: np.ndarray
    predict_rows: np.ndarray
    episodes: tuple[int, ...]


def walk_forward_splits(
    dataset: Dataset, evaluation: str = "walk_forward", refit_every: int = 1
) -> tuple[list[Split], list[int]]:
    """(splits, skipped episodes).

    walk_forward: episodes are grouped by ``refit_every``; a group is predicted by a fit on
    the usable train rows strictly before its first episode (expanding window), so no fit
    sees an episode it scores or anything after it. A group with fewer than MIN_TRAIN_ROWS
    such rows is skipped. folds: one fit on every usable train row, predicting every test
    row (a fit may see train episodes after the episode it scores).
    """
    if evaluation not in ("walk_forward", "folds"):
        raise DatasetError(f"evaluation {evaluation!r}: choose walk_forward or folds")
    if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
        raise DatasetError(f"refit_every {refit_every!r}: a whole number of episodes >= 1")
    train, test = dataset.train_rows, dataset.test_rows
    if evaluation == "folds":
        episodes = tuple(sorted(set(dataset.episode[test].tolist())))
        return [Split(np.flatnonzero(train), np.flatnonzero(test), episodes)], []
    splits, skipped = [], []
    position = np.arange(len(train))
    for first in range(0, dataset.n_episodes, refit_every):
        group = tuple(range(first, min(first + refit_every, dataset.n_episodes)))
        start = int(np.flatnonzero(dataset.is_test & (dataset.episode == first))[0])
        fit_rows = np.flatnonzero(train & (position < start))
        predict_rows = np.flatnonzero(test & np.isin(dataset.episode, group))
        if len(fit_rows) < MIN_TRAIN_ROWS:
            skipped.extend(group)
        elif len(predict_rows):
            splits.append(Split(fit_rows, predict_rows, group))
    if not splits:
        raise DatasetError(
            f"no test episode has {MIN_TRAIN_ROWS} usable train rows before it: widen the range"
        )
    return splits, skipped


def purged_cv(n_splits: int, purge_bars: int):
    """Splitter for cross-validation inside one fit's (time-ordered) train rows.

    scikit-learn's ``TimeSeriesSplit`` with ``gap=purge_bars``: forward-chaining folds, each
    validation block after its training rows with ``purge_bars`` rows left out between them,
    so no training label window reaches into the validation block. A training row never
    follows its validation block, so no embargo is needed. It is maintained, and fits the
    need (contiguous blocks, fixed count) without adding skfolio, whose combinatorial CV
    trains on rows after the validation block and would need the embargo it then applies.
    """
    from sklearn.model_selection import TimeSeriesSplit

    return TimeSeriesSplit(n_splits=n_splits, gap=purge_bars)
