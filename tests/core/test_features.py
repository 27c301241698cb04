"""The feature table: columns, warm-up, context defaults, incremental == full, no look-ahead."""

from __future__ import annotations

import functools
import importlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import features as ft
from stock_assets.core.features import (
    FEATURE_COLUMNS,
    FEATURE_SPECS,
    LOOKBACK_SESSIONS,
    CarryMismatch,
    FeatureSpec,
    InsufficientLookback,
    InvalidBars,
    carry_from,
    check_nan_only_warmup,
    check_no_inf,
    check_regime_codes,
    compute_features,
)
from stock_assets.core.regimes import compute_regimes

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CONTEXT = [s.name for s in FEATURE_SPECS if s.category in ("context", "regime")]


def to_bars(ts: pd.Series, o, h, lo, c, v, vwap=None) -> pd.DataFrame:
    n = len(ts)
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns"),
            "open": np.asarray(o, float),
            "high": np.asarray(h, float),
            "low": np.asarray(lo, float),
            "close": np.asarray(c, float),
            "volume": np.asarray(v, float),
            "vwap": np.full(n, np.nan) if vwap is None else np.asarray(vwap, float),
            "trade_count": pd.array([pd.NA] * n, dtype="Int64"),
            "source": "test",
            "is_filled": np.zeros(n, bool),
        }
    )


@functools.cache
def spy_2024(sessions: int = 15) -> pd.DataFrame:
    if not REAL.is_dir():
        pytest.skip(f"real data samples not found at {REAL}")
    raw = pd.read_csv(REAL / "SPY_1min_2024-02-20_2024-05-17.csv")
    ts = pd.to_datetime(raw["datetime"], utc=True)
    et = ts.dt.tz_convert("America/New_York")
    minute = et.dt.hour * 60 + et.dt.minute
    keep = ((minute >= 570) & (minute < 960)).to_numpy()
    days = et[keep].dt.date
    keep[keep] = (days.isin(sorted(days.unique())[:sessions])).to_numpy()
    raw = raw[keep]
    return to_bars(ts[keep], raw.open, raw.high, raw.low, raw.close, raw.volume, raw.vwap)


def shadow(bars: pd.DataFrame, seed: int, price: float, sigma: float, drop: float) -> pd.DataFrame:
    """A context symbol on the same minutes, a fraction ``drop`` of them missing."""
    rng = np.random.default_rng(seed)
    n = len(bars)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0, sigma, n))), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0, sigma * price, n)), 2)
    low = np.minimum(open_, close) - np.round(np.abs(rng.normal(0, sigma * price, n)), 2)
    volume = np.round(rng.lognormal(7, 1, n))
    out = to_bars(bars["ts"], open_, high, low, close, volume)
    return out[rng.random(n) >= drop].reset_index(drop=True)


@functools.cache
def market() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ticker bars with a few minutes missing, QQQ, VIXY, regimes): 15 sessions."""
    spy = spy_2024()
    ticker = spy[np.random.default_rng(0).random(len(spy)) >= 0.01].reset_index(drop=True)
    qqq = shadow(spy, 1, 430.0, 4e-4, 0.02)
    vixy = shadow(spy, 2, 14.0, 2e-3, 0.3)  # thin VIXY: 30% of minutes missing
    regimes = compute_regimes(qqq, vixy, train_sessions=3)
    return ticker, qqq, vixy, regimes


def et_days(frame: pd.DataFrame) -> np.ndarray:
    return frame["ts"].dt.tz_convert("America/New_York").dt.date.to_numpy()


def assert_columns_close(got: pd.DataFrame, want: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Every column: NaN in the same places, |got - want| <= rtol |want| + 1e-12 column scale."""
    assert list(got.columns) == list(want.columns)
    assert (got["ts"].to_numpy() == want["ts"].to_numpy()).all()
    for col in FEATURE_COLUMNS:
        a, b = got[col].to_numpy(np.float64), want[col].to_numpy(np.float64)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        scale = float(np.nanmax(np.abs(b), initial=0.0)) or 1.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12 * scale, err_msg=col)


# --- schema and metadata -------------------------------------------------------------------


def test_output_has_ts_then_every_feature_column_with_its_dtype() -> None:
    ticker, qqq, vixy, regimes = market()
    out = compute_features(ticker, qqq=qqq, vixy=vixy, regimes=regimes)
    assert list(out.columns) == ["ts", *FEATURE_COLUMNS]
    assert len(FEATURE_COLUMNS) == len(set(FEATURE_COLUMNS)) >= 55
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    for spec in FEATURE_SPECS:
        assert str(out[spec.name].dtype) == spec.dtype, spec.name
    assert (out["bar_index"].to_numpy() == np.arange(len(ticker))).all()


def test_every_spec_points_at_real_code_and_hashes_its_definition() -> None:
    for spec in FEATURE_SPECS:
        module, func = spec.func.split(":")
        assert callable(getattr(importlib.import_module(module), func)), spec.func
    rsi = ft.SPECS_BY_NAME["rsi_14"]
    assert rsi.params == {"n": 14}
    same = FeatureSpec("renamed", "momentum", "x:y", {"n": 14}, 14)
    assert same.params_hash == rsi.params_hash  # params + version only
    bumped = FeatureSpec("rsi_14", "momentum", rsi.func, {"n": 14}, 14, version=2)
    assert bumped.params_hash != rsi.params_hash
    assert rsi.params_hash == (
        __import__("hashlib").sha256(b'{"params": {"n": 14}, "version": 1}').hexdigest()
    )
    rows = ft.feature_metadata_rows()
    assert [r["feature"] for r in rows] == FEATURE_COLUMNS
    assert {"version", "params", "params_hash", "code_ref"} <= set(rows[0])


# --- warm-up and checks --------------------------------------------------------------------


def test_nan_exactly_in_the_documented_warmup_of_each_own_column() -> None:
    ticker, qqq, vixy, regimes = market()
    out = compute_features(ticker, qqq=qqq, vixy=vixy, regimes=regimes)
    for spec in FEATURE_SPECS:
        nan = out[spec.name].isna().to_numpy()
        if spec.category in ("context", "regime"):
            assert not nan[spec.warmup_bars :].any(), spec.name
        else:
            expected = out["bar_index"].to_numpy() < spec.warmup_bars
            assert (nan == expected).all(), spec.name
    assert check_nan_only_warmup(out) == (True, {"violations": {}})
    assert check_no_inf(out) == (True, {"inf_counts": {}})
    assert check_regime_codes(out)[0]


def test_checks_report_inf_late_nan_and_bad_codes() -> None:
    ticker, qqq, vixy, regimes = market()
    out = compute_features(ticker.iloc[:800], qqq=qqq, vixy=vixy, regimes=regimes)
    out.loc[700, "rsi_14"] = np.inf
    out.loc[5, "sma_200"] = 1.0  # a value inside the warm-up is allowed
    out.loc[650, "macd"] = np.nan
    out.loc[3, "regime_vix"] = 4
    passed, details = check_no_inf(out)
    assert not passed and details["inf_counts"] == {"rsi_14": 1}
    passed, details = check_nan_only_warmup(out)
    assert not passed and list(details["violations"]) == ["macd"]
    assert details["violations"]["macd"]["count"] == 1
    passed, details = check_regime_codes(out)
    assert not passed and details["violations"]["regime_vix"]["count"] == 1


# --- incremental == full -------------------------------------------------------------------


@pytest.mark.parametrize("with_context", [True, False])
def test_day_by_day_build_equals_one_build_over_the_whole_history(with_context: bool) -> None:
    ticker, qqq, vixy, regimes = market()
    if not with_context:
        qqq = vixy = regimes = None
    full = compute_features(ticker, qqq=qqq, vixy=vixy, regimes=regimes)
    days = sorted(set(et_days(ticker)))
    parts, carry = [], None
    for i, day in enumerate(days):
        window = set(days[max(0, i - LOOKBACK_SESSIONS) : i + 1])

        def cut(frame, window=window):
            return None if frame is None else frame[np.isin(et_days(frame), list(window))]

        part = compute_features(
            cut(ticker), start=day, qqq=cut(qqq), vixy=cut(vixy), regimes=cut(regimes), carry=carry
        )
        assert set(et_days(part)) == {day}
        parts.append(part)
        carry = carry_from(part)
    incremental = pd.concat(parts, ignore_index=True)
    assert len(days) > LOOKBACK_SESSIONS + 5  # later days really run on a truncated lookback
    assert_columns_close(incremental, full)
    for exact in ("bar_index", "obv", "sma_200", "bb_upper", "dist_vwap", "beta_qqq_60"):
        assert (incremental[exact].fillna(-1) == full[exact].fillna(-1)).all(), exact


def test_first_day_alone_needs_no_carry_and_matches_the_full_build() -> None:
    ticker, qqq, vixy, regimes = market()
    full = compute_features(ticker, qqq=qqq, vixy=vixy, regimes=regimes)
    first = et_days(ticker) == et_days(ticker)[0]
    alone = compute_features(ticker[first], qqq=qqq, vixy=vixy, regimes=regimes)
    assert_columns_close(alone, full[first].reset_index(drop=True), rtol=0)


def test_truncated_lookback_without_enough_bars_is_refused() -> None:
    ticker, *_ = market()
    days = sorted(set(et_days(ticker)))
    before = compute_features(ticker[et_days(ticker) <= days[7]])
    carry = carry_from(before)
    short = ticker[np.isin(et_days(ticker), days[7:9])]  # one session of lookback
    with pytest.raises(InsufficientLookback, match="need at least 600"):
        compute_features(short, start=days[8], carry=carry)


def test_carry_must_be_the_bar_just_before_start() -> None:
    ticker, *_ = market()
    days = sorted(set(et_days(ticker)))
    carry = carry_from(compute_features(ticker[et_days(ticker) <= days[1]]))
    with pytest.raises(CarryMismatch, match="last bar before start"):
        compute_features(ticker[et_days(ticker) <= days[3]], start=days[3], carry=carry)


def test_invalid_bars_are_refused_with_the_reason() -> None:
    ticker, *_ = market()
    with pytest.raises(InvalidBars, match="sorted"):
        compute_features(ticker.iloc[::-1].reset_index(drop=True))
    broken = ticker.copy()
    broken.loc[10, "low"] = 0.0
    with pytest.raises(InvalidBars, match="positive"):
        compute_features(broken)


# --- no look-ahead -------------------------------------------------------------------------


@functools.cache
def full_three_days() -> tuple[pd.DataFrame, ...]:
    ticker, qqq, vixy, regimes = market()
    first_days = sorted(set(et_days(ticker)))[:3]
    frames = [f[np.isin(et_days(f), first_days)] for f in (ticker, qqq, vixy, regimes)]
    out = compute_features(frames[0], qqq=frames[1], vixy=frames[2], regimes=frames[3])
    return (*frames, out)


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(0, 1100))
def test_values_up_to_t_do_not_depend_on_data_after_t(cut: int) -> None:
    ticker, qqq, vixy, regimes, full = full_three_days()
    t = ticker["ts"].iloc[cut]
    ticker_t, qqq_t, vixy_t = (f[f["ts"] <= t] for f in (ticker, qqq, vixy))
    regimes_t = compute_regimes(qqq_t, vixy_t, train_sessions=3)  # recomputed from the past
    part = compute_features(ticker_t, qqq=qqq_t, vixy=vixy_t, regimes=regimes_t)
    pd.testing.assert_frame_equal(part, full.iloc[: cut + 1], check_exact=True)


# --- context -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["qqq", "vixy", "both", "empty"])
def test_missing_context_symbols_give_defaults_and_zero_flags(missing: str) -> None:
    ticker, qqq, vixy, _ = market()
    empty = qqq.iloc[:0]
    kwargs = {
        "qqq": {"qqq": None, "vixy": vixy},
        "vixy": {"qqq": qqq, "vixy": None},
        "both": {"qqq": None, "vixy": None},
        "empty": {"qqq": empty, "vixy": empty, "regimes": compute_regimes(empty, empty)},
    }[missing]
    out = compute_features(ticker.iloc[:1000], **kwargs)
    groups = {"qqq": ("qqq_return", "beta_qqq_60", "rel_strength_qqq_20"),
              "vixy": ("vix_log_ret", "vix_z_score", "vix_rel_vol", "vix_atr_ratio")}  # fmt: skip
    for symbol, columns in groups.items():
        if missing in (symbol, "both", "empty"):
            assert (out[f"has_{'vix' if symbol == 'vixy' else symbol}_context"] == 0).all()
            for col in columns:
                assert (out[col] == ft.SPECS_BY_NAME[col].default).all(), col
    assert (out["has_regime_context"] == 0).all()
    assert (out["regime_ready"] == 0).all() and (out["regime_sma_dist"] == 0.0).all()
    assert check_nan_only_warmup(out)[0] and check_no_inf(out)[0]


def test_context_is_the_latest_bar_of_the_same_day_never_a_later_one() -> None:
    minutes = ["03-04 09:30", "03-04 09:31", "03-04 09:32", "03-05 09:30", "03-05 09:31"]
    et = pd.DatetimeIndex([f"2024-{m}" for m in minutes], tz="America/New_York")
    ticker = to_bars(et, *[[10.0, 10.5, 11.0, 11.0, 12.0]] * 4, [100.0] * 5)
    vix_ts = et[[1, 2, 4]]  # no VIXY bar at either day's open
    vix = to_bars(vix_ts, *[[20.0, 22.0, 30.0]] * 4, [5.0] * 3)
    out = compute_features(ticker, vixy=vix)
    assert out["has_vix_context"].tolist() == [0, 1, 1, 0, 1]
    want = [0.0, 0.0, math.log(22 / 20), 0.0, math.log(30 / 22)]
    np.testing.assert_allclose(out["vix_log_ret"], want, rtol=1e-12)


def test_beta_and_relative_strength_recover_a_known_relation() -> None:
    spy = spy_2024(3)
    qqq = shadow(spy, 5, 400.0, 5e-4, 0.0)
    log_q = np.log(qqq["close"].to_numpy())
    close = np.exp(1.5 * (log_q - log_q[0])) * 100.0
    ticker = to_bars(qqq["ts"], close, close * 1.001, close * 0.999, close, np.ones(len(close)))
    out = compute_features(ticker, qqq=qqq)
    np.testing.assert_allclose(out["beta_qqq_60"][60:], 1.5, rtol=1e-9)
    q_ret = np.diff(log_q)
    want = 0.5 * np.convolve(q_ret, np.ones(20), "valid")
    np.testing.assert_allclose(out["rel_strength_qqq_20"][20:], want, rtol=1e-6, atol=1e-12)
    assert (out["has_qqq_context"][1:] == 1).all() and out["has_qqq_context"][0] == 0


def test_running_vwap_restarts_at_each_session_open() -> None:
    ticker, *_ = market()
    out = compute_features(ticker)
    opens = np.flatnonzero(np.r_[True, et_days(ticker)[1:] != et_days(ticker)[:-1]])
    want = ticker["close"].to_numpy()[opens] / ticker["vwap"].to_numpy()[opens] - 1.0
    np.testing.assert_allclose(out["dist_vwap"].to_numpy()[opens], want, rtol=1e-12)


def test_time_features_encode_eastern_minute_and_weekday() -> None:
    ticker, *_ = market()
    out = compute_features(ticker.iloc[:3])  # 2024-02-20 09:30 ET, a Tuesday
    assert out["time_sin"][0] == pytest.approx(math.sin(2 * math.pi * 570 / 1440), abs=1e-15)
    assert out["day_of_week_cos"][0] == pytest.approx(math.cos(2 * math.pi * 1 / 7), abs=1e-15)
