"""The wide, point-in-time feature table of one symbol (one row per 1-minute bar).

Every column is listed in ``FEATURE_SPECS`` (name, version, parameters, code reference,
category, warm-up, default). Indicators run over the symbol's continuous history, so a day
built on its own, from ``LOOKBACK_SESSIONS`` earlier sessions (at least ``LOOKBACK_BARS``
bars) and the previous day's ``carry``, equals that day of one build over the whole history:
rolling windows see the same bars, OBV continues from the carry, and the EMA/Wilder seeds
that differ have decayed by at least (13/14)^566 < 1e-18 (in the tests, the two builds agree
bit for bit).

Warm-up: ``bar_index`` numbers the bars of the symbol's whole history from 0. A column is
NaN only where ``bar_index < spec.warmup_bars`` (exactly there for the symbol's own
columns). Context (QQQ, VIXY) and regime columns are never NaN, beta and relative strength
aside, which share the symbol's warm-up: a missing context gives ``spec.default`` and its
flag (``has_vix_context``, ``has_qqq_context``, ``has_regime_context``) is 0; a context
symbol's own warm-up (the first bars of its history) also gives the default.

Context joins: for a bar at t, the latest context bar (or regime row) with ts <= t on the
same trading day; a context bar opening at t closes with the bar at t, so nothing leaks.

Scaling: each spec says what kind of number its column is (``SCALING_KINDS``), declared once
in ``_SCALING``; a column not declared there is a 'level' (or 'meta'), so a new feature stays
out of every model until someone says how to scale it. ``model_feature_columns`` (never a
price or volume level) is the one list of what a model may read.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stock_assets.core import indicators as ind
from stock_assets.core import series
from stock_assets.core.regimes import (
    REGIME_COLUMNS,
    REGIME_DEFAULTS,
    REGIME_PARAMS,
    check_regime_codes,
)

LOOKBACK_SESSIONS = 5
LOOKBACK_BARS = 600
SCALING_KINDS: dict[str, str] = {
    "level": "a price or volume level (dollars, shares, their averages): never a model input",
    "meta": "bookkeeping (bar numbering, the gap-fill flag): never a model input",
    "standard": "returns, z-scores and signed ratios around 0: StandardScaler",
    "robust": "volume, range and liquidity ratios (positive, heavy-tailed): RobustScaler",
    "bounded": "oscillators and cyclical encodings in a fixed range, 0/1 flags: passthrough",
    "categorical": "regime codes: one-hot for linear models, ordinal for trees",
}
MODEL_SCALINGS = ("standard", "robust", "bounded", "categorical")
# The model-eligible columns by scaling kind. Everything else (raw prices and volume, SMAs,
# EMAs, MACD line/signal/histogram and Bollinger bands in dollars, ATR in dollars, OBV in
# shares) is a level; the 'meta' category is bookkeeping.
_SCALING: dict[str, tuple[str, ...]] = {
    "standard": (
        "log_return_1m", "return_lag_1", "return_lag_2", "return_lag_3", "return_lag_5",
        "volume_change", "return_z_score_20", "dist_vwap", "vol_adj_mom_20", "vix_log_ret",
        "vix_z_score", "qqq_return", "beta_qqq_60", "rel_strength_qqq_20", "regime_sma_dist",
    ),
    "robust": (
        "bb_width", "vol_ratio_60", "atr_ratio_15", "amihud_illiquidity", "parkinson_vol",
        "vix_rel_vol", "vix_atr_ratio",
    ),
    "bounded": (
        "rsi_14", "stoch_k", "stoch_d", "bb_pctb", "ibs", "efficiency_ratio",
        "intraday_intensity", "time_sin", "time_cos", "day_of_week_sin", "day_of_week_cos",
        "has_vix_context", "has_qqq_context", "regime_ready", "has_regime_context",
    ),
    "categorical": ("regime_vix", "regime_gmm", "regime_sma"),
}  # fmt: skip
_SCALING_BY_NAME = {name: kind for kind, names in _SCALING.items() for name in names}
_BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "vwap", "is_filled")


class InvalidBars(ValueError):
    """The bars frame breaks the input contract (columns, order, prices)."""


class InsufficientLookback(ValueError):
    """Too little history before ``start`` for an incremental build to equal the full one."""


class CarryMismatch(ValueError):
    """The carry does not belong to the bar just before ``start``."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: what computes it and with which parameters."""

    name: str
    category: str
    func: str
    params: dict[str, Any] = field(default_factory=dict)
    warmup_bars: int = 0
    version: int = 1
    dtype: str = "float64"
    default: float | None = None
    scaling: str = "level"

    def __post_init__(self) -> None:
        if self.scaling not in SCALING_KINDS:
            raise ValueError(
                f"feature {self.name!r}: scaling {self.scaling!r}, choose one of "
                f"{', '.join(SCALING_KINDS)}"
            )

    @property
    def params_hash(self) -> str:
        """sha256 of the canonical JSON of {params, version}: changes when the definition does."""
        doc = json.dumps({"params": self.params, "version": self.version}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()

    @property
    def code_hash(self) -> str:
        """sha256 of the source of `func`: shows when the code changed under a version."""
        module, _, name = self.func.partition(":")
        source = inspect.getsource(getattr(importlib.import_module(module), name))
        return hashlib.sha256(source.encode()).hexdigest()


def _spec(
    name: str,
    category: str,
    func: str,
    warmup: int = 0,
    *,
    dtype: str = "float64",
    default: float | None = None,
    **params: Any,
) -> FeatureSpec:
    """A version-1 spec; ``func`` is an indicators function name or a full module:function.
    Its scaling comes from ``_SCALING`` ('level' when undeclared, 'meta' for bookkeeping)."""
    ref = func if ":" in func else f"stock_assets.core.indicators:{func}"
    scaling = _SCALING_BY_NAME.get(name, "meta" if category == "meta" else "level")
    return FeatureSpec(name, category, ref, params, warmup, 1, dtype, default, scaling)


_BUILD = "stock_assets.core.features:compute_features"
_REGIMES = "stock_assets.core.regimes:compute_regimes"
_MACD = {"fast": 12, "slow": 26, "signal": 9}
FEATURE_SPECS: list[FeatureSpec] = [
    *(_spec(c, "raw", _BUILD, column=c) for c in ("open", "high", "low", "close", "volume")),
    _spec("is_filled", "meta", _BUILD, dtype="bool", column="is_filled"),
    _spec("bar_index", "meta", _BUILD, dtype="int64", origin="first bar of the history"),
    *(_spec(f"sma_{n}", "trend", "sma", n - 1, n=n) for n in (20, 50, 200)),
    *(_spec(f"ema_{n}", "trend", "ema", n - 1, n=n, seed="sma") for n in (9, 12, 26)),
    _spec("macd", "momentum", "macd", 25, **_MACD, output="line"),
    _spec("macd_signal", "momentum", "macd", 33, **_MACD, output="signal"),
    _spec("macd_hist", "momentum", "macd", 33, **_MACD, output="hist"),
    _spec("rsi_14", "momentum", "rsi", 14, n=14),
    _spec("stoch_k", "momentum", "stochastic", 13, n=14, d=3, output="k"),
    _spec("stoch_d", "momentum", "stochastic", 15, n=14, d=3, output="d"),
    *(
        _spec(f"bb_{out}", "volatility", "bollinger", 19, n=20, k=2.0, output=out)
        for out in ("mid", "upper", "lower", "pctb", "width")
    ),
    _spec("atr_14", "volatility", "atr", 13, n=14),
    _spec("obv", "volume", "obv"),
    _spec("log_return_1m", "returns", "log_return", 1),
    *(
        _spec(f"return_lag_{k}", "returns", "lag", k + 1, of="log_return_1m", k=k)
        for k in (1, 2, 3, 5)
    ),
    _spec("volume_change", "volume", "volume_change", 1),
    _spec("return_z_score_20", "volatility", "return_z_score", 20, n=20),
    _spec("vol_ratio_60", "volume", "vol_ratio", 59, n=60),
    _spec("atr_ratio_15", "volatility", "atr_ratio", 14, n=15),
    _spec("amihud_illiquidity", "liquidity", "amihud_illiquidity", 20, n=20, scale=1e6),
    _spec("ibs", "mean_reversion", "ibs"),
    _spec("parkinson_vol", "volatility", "parkinson_vol", 19, n=20),
    _spec("efficiency_ratio", "trend", "efficiency_ratio", 10, n=10),
    _spec("dist_vwap", "mean_reversion", "dist_vwap", session_aware=True, price="vwap or hlc3"),
    _spec("intraday_intensity", "volume", "intraday_intensity", 19, n=20),
    _spec("vol_adj_mom_20", "momentum", "vol_adj_mom", 20, n=20),
    _spec("time_sin", "time", "cyclical", value="ET minute of day", period=1440),
    _spec("time_cos", "time", "cyclical", value="ET minute of day", period=1440),
    _spec("day_of_week_sin", "time", "cyclical", value="ET weekday, Monday 0", period=7),
    _spec("day_of_week_cos", "time", "cyclical", value="ET weekday, Monday 0", period=7),
    _spec("vix_log_ret", "context", "log_return", default=0.0, symbol="VIXY"),
    _spec("vix_z_score", "context", "z_score", default=0.0, symbol="VIXY", n=20),
    _spec("vix_rel_vol", "context", "vol_ratio", default=1.0, symbol="VIXY", n=60),
    _spec("vix_atr_ratio", "context", "atr_ratio", default=1.0, symbol="VIXY", n=15),
    _spec("qqq_return", "context", "log_return", default=0.0, symbol="QQQ", on="ticker bars"),
    _spec("beta_qqq_60", "context", "beta", 60, default=0.0, symbol="QQQ", n=60),
    _spec(
        "rel_strength_qqq_20", "context", "relative_strength", 20, default=0.0, symbol="QQQ", n=20
    ),
    _spec("has_vix_context", "context", _BUILD, dtype="int8", default=0, flag="VIXY"),
    _spec("has_qqq_context", "context", _BUILD, dtype="int8", default=0, flag="QQQ"),
    *(
        _spec(
            col,
            "regime",
            _REGIMES,
            dtype="float64" if col == "regime_sma_dist" else "int8",
            default=REGIME_DEFAULTS[col],
            **REGIME_PARAMS[col],
        )  # fmt: skip
        for col in REGIME_COLUMNS
    ),
    _spec("has_regime_context", "regime", _BUILD, dtype="int8", default=0, flag="regimes"),
]
FEATURE_COLUMNS: list[str] = [s.name for s in FEATURE_SPECS]
SPECS_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURE_SPECS}
# A context ticker's copy of a column: the base name, "_", an upper-case symbol (rsi_14_SPY).
_CONTEXT_SUFFIX = re.compile(r"(?P<base>[a-z0-9_]+?)_(?P<symbol>[A-Z][A-Z0-9.\-]{0,9})")


def model_feature_columns(specs: Sequence[FeatureSpec] = FEATURE_SPECS) -> list[str]:
    """The columns a model may read, in registry order: every spec whose scaling is one of
    ``MODEL_SCALINGS``, so never a price or volume level ('level') nor bookkeeping ('meta')."""
    return [s.name for s in specs if s.scaling in MODEL_SCALINGS]


def spec_for_column(column: str) -> FeatureSpec | None:
    """The spec of a feature-frame column, or None when the registry does not know it.

    A context ticker's column (``rsi_14_SPY``: base name, '_', the symbol) maps to the
    spec of its base column, so it is scaled and screened like that column.
    """
    spec = SPECS_BY_NAME.get(column)
    if spec is not None:
        return spec
    match = _CONTEXT_SUFFIX.fullmatch(column)
    return SPECS_BY_NAME.get(match["base"]) if match else None


def feature_metadata_rows(specs: Sequence[FeatureSpec] = FEATURE_SPECS) -> list[dict[str, Any]]:
    """One record per feature for the feature_metadata table (add git revision, created_at)."""
    return [
        {
            "feature": s.name,
            "version": s.version,
            "params": json.dumps(s.params, sort_keys=True),
            "params_hash": s.params_hash,
            "code_ref": s.func,
            "code_hash": s.code_hash,
            "category": s.category,
            "warmup_bars": s.warmup_bars,
            "dtype": s.dtype,
        }
        for s in specs
    ]


@dataclass(frozen=True)
class FeatureCarry:
    """State at the last bar before an incremental build: its ts, bar_index and OBV."""

    ts: pd.Timestamp
    bar_index: int
    obv: float


def carry_from(features_tail: pd.DataFrame) -> FeatureCarry | None:
    """The carry for the next build: taken from the last row of the previous output."""
    if features_tail is None or len(features_tail) == 0:
        return None
    last = features_tail.iloc[-1]
    return FeatureCarry(pd.Timestamp(last["ts"]), int(last["bar_index"]), float(last["obv"]))


def _bar_arrays(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The float columns of the input contract, checked: prices > 0, volume >= 0, no NaN."""
    missing = [c for c in _BAR_COLUMNS if c != "vwap" and c not in bars]
    if missing:
        raise InvalidBars(f"bars lack columns {missing}; need {list(_BAR_COLUMNS)}")
    arrays = {k: bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")}
    for k in ("open", "high", "low", "close"):
        if not (arrays[k] > 0).all():
            raise InvalidBars(f"bars need positive, non-NaN {k} prices")
    if not (arrays["volume"] >= 0).all():
        raise InvalidBars("bars need non-negative, non-NaN volume")
    return arrays


def _present(frame: pd.DataFrame | None) -> bool:
    return frame is not None and len(frame) > 0


def _join(frame: pd.DataFrame | None, ns: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Row of ``frame`` joined to each bar (as of, same trading day), -1 where none."""
    if not _present(frame):
        return np.full(len(ns), -1)
    frame_ns = series.utc_ns(frame["ts"])
    return series.asof_same_day(ns, day, frame_ns, series.day_number(frame_ns))


def _vix_columns(vixy: pd.DataFrame | None, ns, day, out: dict[str, np.ndarray]) -> None:
    idx = _join(vixy, ns, day)
    own: dict[str, np.ndarray] = {}
    if _present(vixy):
        h, lo, c, v = (vixy[k].to_numpy(np.float64) for k in ("high", "low", "close", "volume"))
        own = {
            "vix_log_ret": ind.log_return(c),
            "vix_z_score": ind.z_score(c, 20),
            "vix_rel_vol": ind.vol_ratio(v, 60),
            "vix_atr_ratio": ind.atr_ratio(h, lo, c, 15),
        }
    for name in ("vix_log_ret", "vix_z_score", "vix_rel_vol", "vix_atr_ratio"):
        default = SPECS_BY_NAME[name].default
        joined = series.take(own.get(name, np.array([])), idx, default)
        joined[np.isnan(joined)] = default  # VIXY's own warm-up
        out[name] = joined
    out["has_vix_context"] = (idx >= 0).astype(np.int8)


def _qqq_columns(qqq: pd.DataFrame | None, ns, day, r, out: dict[str, np.ndarray]) -> None:
    idx = _join(qqq, ns, day)
    source = qqq["close"].to_numpy(np.float64) if _present(qqq) else np.array([])
    q_ret = ind.log_return(series.take(source, idx))
    has = np.isfinite(q_ret)
    market = np.where(has, q_ret, 0.0)
    computed = {
        "qqq_return": market,
        "beta_qqq_60": ind.beta(r, market, 60),
        "rel_strength_qqq_20": ind.relative_strength(r, market, 20),
    }
    for name, values in computed.items():
        values[~has] = SPECS_BY_NAME[name].default
        out[name] = values
    out["has_qqq_context"] = has.astype(np.int8)


def _regime_columns(regimes: pd.DataFrame | None, ns, day, out: dict[str, np.ndarray]) -> None:
    idx = _join(regimes, ns, day)
    for col in REGIME_COLUMNS:
        source = regimes[col].to_numpy(np.float64) if _present(regimes) else np.array([])
        values = series.take(source, idx, float(REGIME_DEFAULTS[col]))
        out[col] = values if col == "regime_sma_dist" else values.astype(np.int8)
    out["has_regime_context"] = (idx >= 0).astype(np.int8)


def _positions(bars, ns, day, start, carry: FeatureCarry | None) -> tuple[int, int]:
    """(first output row, bar_index of row 0) after checking start, carry and lookback."""
    if carry is None:
        return series.first_row_at(ns, day, start), 0
    carried = series.utc_ns([carry.ts])[0]
    pos = int(np.searchsorted(ns, carried))
    if pos >= len(ns) or ns[pos] != carried:
        raise CarryMismatch(f"carry ts {carry.ts} is not a bar of the lookback passed in")
    first = pos + 1 if start is None else series.first_row_at(ns, day, start)
    if first != pos + 1:
        raise CarryMismatch(
            f"carry ts {carry.ts} must be the last bar before start {start}, "
            f"but {first - pos - 1} bar(s) lie between them"
        )
    offset = carry.bar_index - pos
    if offset < 0:
        raise CarryMismatch(f"{pos + 1} lookback bars passed but carry says {carry.bar_index + 1}")
    if offset > 0 and first < LOOKBACK_BARS:
        raise InsufficientLookback(
            f"{first} bars before start, need at least {LOOKBACK_BARS} (or the whole history): "
            f"pass more than {LOOKBACK_SESSIONS} sessions of lookback"
        )
    return first, offset


def compute_features(
    bars: pd.DataFrame,
    *,
    start: Any = None,
    qqq: pd.DataFrame | None = None,
    vixy: pd.DataFrame | None = None,
    regimes: pd.DataFrame | None = None,
    carry: FeatureCarry | None = None,
) -> pd.DataFrame:
    """Feature rows (``ts`` + ``FEATURE_COLUMNS``) of one symbol for bars with ts >= start.

    bars: the symbol's bars (input contract) including the lookback before ``start``.
    start: None (all rows), a date (rows of that ET trading day on) or a tz-aware timestamp.
    qqq/vixy: context bars over the same period; None/empty -> defaults, flag 0.
    regimes: ``compute_regimes`` output covering the output rows; None -> defaults, flag 0.
    carry: ``carry_from`` the previous output, whose last bar must be the bar just before
    start; None means ``bars`` begin the symbol's history. Raises ``InsufficientLookback`` if
    fewer than ``LOOKBACK_BARS`` bars precede start and they are not the whole history.
    """
    arrays = _bar_arrays(bars)
    ns = series.utc_ns(bars["ts"])
    if len(ns) > 1 and not (np.diff(ns) > 0).all():
        raise InvalidBars("bars must be sorted by ts with unique ts")
    day, minute, weekday = series.session_clock(ns)
    first, offset = _positions(bars, ns, day, start, carry)
    o, h, lo, c, v = (arrays[k] for k in ("open", "high", "low", "close", "volume"))
    out: dict[str, np.ndarray] = {  # copies: the output must not share memory with bars
        "open": o.copy(), "high": h.copy(), "low": lo.copy(), "close": c.copy(),
        "volume": v.copy(), "is_filled": bars["is_filled"].to_numpy(bool, copy=True),
        "bar_index": np.arange(len(ns), dtype=np.int64) + offset,
    }  # fmt: skip
    for n in (20, 50, 200):
        out[f"sma_{n}"] = ind.sma(c, n)
    for n in (9, 12, 26):
        out[f"ema_{n}"] = ind.ema(c, n)
    out["macd"], out["macd_signal"], out["macd_hist"] = ind.macd(c)
    out["rsi_14"] = ind.rsi(c, 14)
    out["stoch_k"], out["stoch_d"] = ind.stochastic(h, lo, c, 14, 3)
    for name, values in ind.bollinger(c, 20, 2.0).items():
        out[f"bb_{name}"] = values
    out["atr_14"] = ind.atr(h, lo, c, 14)
    if carry is None:
        out["obv"] = ind.obv(c, v)
    else:
        pos = first - 1
        out["obv"] = np.concatenate((np.full(pos, np.nan), ind.obv(c[pos:], v[pos:], carry.obv)))
    r = ind.log_return(c)
    out["log_return_1m"] = r
    for k in (1, 2, 3, 5):
        out[f"return_lag_{k}"] = ind.lag(r, k)
    out["volume_change"] = ind.volume_change(v)
    sigma_r = series.rolling_std(r, 20)
    out["return_z_score_20"] = ind.return_z_score(r, 20, sigma=sigma_r)
    out["vol_ratio_60"] = ind.vol_ratio(v, 60)
    out["atr_ratio_15"] = ind.atr_ratio(h, lo, c, 15)
    out["amihud_illiquidity"] = ind.amihud_illiquidity(c, v, r, 20)
    out["ibs"] = ind.ibs(h, lo, c)
    out["parkinson_vol"] = ind.parkinson_vol(h, lo, 20)
    out["efficiency_ratio"] = ind.efficiency_ratio(c, 10)
    bar_vwap = bars["vwap"].to_numpy(np.float64) if "vwap" in bars else np.full(len(c), np.nan)
    price = np.where(np.isfinite(bar_vwap), bar_vwap, (h + lo + c) / 3.0)
    out["dist_vwap"] = ind.dist_vwap(c, ind.session_vwap(price, v, day))
    out["intraday_intensity"] = ind.intraday_intensity(h, lo, c, v, 20)
    out["vol_adj_mom_20"] = ind.vol_adj_mom(c, r, 20, sigma=sigma_r)
    out["time_sin"], out["time_cos"] = ind.cyclical(minute, 1440)
    out["day_of_week_sin"], out["day_of_week_cos"] = ind.cyclical(weekday, 7)
    _vix_columns(vixy, ns, day, out)
    _qqq_columns(qqq, ns, day, r, out)
    _regime_columns(regimes, ns, day, out)

    columns = {"ts": pd.DatetimeIndex(ns[first:], tz="UTC")}
    columns |= {name: out[name][first:] for name in FEATURE_COLUMNS}
    return pd.DataFrame(columns, copy=False)


def check_no_inf(frame: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    """No +/-inf in any float column."""
    counts = {
        col: int(np.isinf(frame[col].to_numpy()).sum())
        for col in frame.columns
        if pd.api.types.is_float_dtype(frame[col])
    }
    bad = {col: n for col, n in counts.items() if n}
    return not bad, {"inf_counts": bad}


def check_nan_only_warmup(
    frame: pd.DataFrame, specs: Sequence[FeatureSpec] = FEATURE_SPECS
) -> tuple[bool, dict[str, Any]]:
    """NaN only where bar_index < the column's warm-up (the start of the symbol's history)."""
    bar_index = frame["bar_index"].to_numpy()
    bad: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in frame:
            bad[spec.name] = "missing column"
            continue
        nan = frame[spec.name].isna().to_numpy() & (bar_index >= spec.warmup_bars)
        if nan.any():
            first_ts = frame["ts"].iloc[int(np.argmax(nan))] if "ts" in frame else None
            bad[spec.name] = {"count": int(nan.sum()), "first_ts": str(first_ts)}
    return not bad, {"violations": bad}


__all__ = [
    "FEATURE_COLUMNS",
    "FEATURE_SPECS",
    "LOOKBACK_BARS",
    "LOOKBACK_SESSIONS",
    "MODEL_SCALINGS",
    "SCALING_KINDS",
    "CarryMismatch",
    "FeatureCarry",
    "FeatureSpec",
    "InsufficientLookback",
    "InvalidBars",
    "carry_from",
    "check_nan_only_warmup",
    "check_no_inf",
    "check_regime_codes",
    "compute_features",
    "feature_metadata_rows",
    "model_feature_columns",
    "spec_for_column",
]
