"""Market regimes: code ranges, formulas, point-in-time GMM, incremental == full."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import regimes as rg
from stock_assets.core.regimes import (
    GMM_TRAIN_SESSIONS,
    REGIME_COLUMNS,
    REGIME_DEFAULTS,
    REGIME_LOOKBACK_SESSIONS,
    check_regime_codes,
    compute_regimes,
    regime_lookback_sessions,
    rolling_mode,
)


def make_bars(sessions: int, seed: int, price: float, sigma, drop: float = 0.0) -> pd.DataFrame:
    """Random-walk bars, 09:30-15:59 ET on consecutive weekdays; sigma: scalar or per-minute."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-08", periods=sessions)
    opens = (days + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York")
    ns = (opens.tz_convert("UTC").asi8[:, None] + np.arange(390)[None, :] * 60_000_000_000).ravel()
    n = len(ns)
    sig = np.broadcast_to(np.asarray(sigma, float), (sessions, 390)).ravel()
    close = np.round(price * np.exp(np.cumsum(rng.normal(0, 1, n) * sig)), 4)
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(ns, tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.0001,
            "low": np.minimum(open_, close) * 0.9999,
            "close": close,
            "volume": np.round(rng.lognormal(7, 1, n)),
            "vwap": np.nan,
            "trade_count": np.nan,
            "source": "test",
            "is_filled": False,
        }
    )
    return frame[rng.random(n) >= drop].reset_index(drop=True)


@functools.cache
def context(sessions: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_bars(sessions, 1, 400.0, 4e-4, 0.01), make_bars(sessions, 2, 15.0, 2e-3, 0.25)


def days_of(frame: pd.DataFrame) -> np.ndarray:
    return frame["ts"].dt.tz_convert("America/New_York").dt.date.to_numpy()


def test_columns_dtypes_and_code_ranges() -> None:
    qqq, vixy = context()
    out = compute_regimes(qqq, vixy, train_sessions=3)
    assert list(out.columns) == ["ts", *REGIME_COLUMNS]
    assert all(str(out[c].dtype) == "int8" for c in REGIME_COLUMNS if c != "regime_sma_dist")
    assert out["ts"].is_monotonic_increasing and out["ts"].is_unique
    assert set(out["ts"]) == set(qqq["ts"]) | set(vixy["ts"])
    assert check_regime_codes(out) == (True, {"violations": {}})
    later = out[days_of(out) >= sorted(set(days_of(out)))[3]]
    assert later["regime_ready"].mean() > 0.95  # fitted and warmed up after three sessions
    assert set(later["regime_vix"]) == {0, 1, 2, 3} and set(later["regime_gmm"]) == {0, 1}
    assert REGIME_LOOKBACK_SESSIONS == regime_lookback_sessions(GMM_TRAIN_SESSIONS) == 22


def test_sma_and_vix_regimes_match_plain_loops() -> None:
    qqq, vixy = context()
    out = compute_regimes(qqq, vixy, train_sessions=3).set_index("ts")
    q = qqq["close"].tolist()
    for i in range(199, len(q), 97):
        sma = sum(q[i - 199 : i + 1]) / 200
        row = out.loc[qqq["ts"].iloc[i]]
        assert row["regime_sma"] == (1 if q[i] >= sma else 0)
        assert row["regime_sma_dist"] == pytest.approx(q[i] / sma - 1, rel=1e-9, abs=1e-15)
    v = vixy["close"].tolist()
    for i in range(389, len(v), 53):
        level = sum(v[i - 389 : i + 1]) / 390
        bear, volatile = math.log(v[i] / v[i - 30]) > 0, v[i] > level
        assert out.loc[vixy["ts"].iloc[i], "regime_vix"] == 2 * bear + volatile


def test_missing_vixy_bar_takes_the_latest_of_the_same_day() -> None:
    qqq, vixy = context()
    out = compute_regimes(qqq, vixy, train_sessions=3)
    v_ts = set(vixy["ts"])
    lone = out[~out["ts"].isin(v_ts)]
    earlier = out.set_index("ts")["regime_vix"]
    for ts in lone["ts"].iloc[50:60]:
        previous = [t for t in v_ts if t < ts and t.date() == ts.date()]
        if previous:
            assert lone.set_index("ts").loc[ts, "regime_vix"] == earlier.loc[max(previous)]


@pytest.mark.parametrize("train_sessions", [3, GMM_TRAIN_SESSIONS])
def test_day_by_day_regimes_equal_the_full_build_exactly(train_sessions: int) -> None:
    sessions = train_sessions + 8
    qqq, vixy = make_bars(sessions, 3, 300.0, 5e-4, 0.01), make_bars(sessions, 4, 20.0, 2e-3, 0.3)
    days = sorted(set(days_of(qqq)))
    lookback = regime_lookback_sessions(train_sessions)
    targets = days[-6:] if train_sessions > 3 else days
    full = compute_regimes(qqq, vixy, start=targets[0], train_sessions=train_sessions)
    parts = []
    for day in targets:
        window = days[max(0, days.index(day) - lookback) : days.index(day) + 1]
        cut = [f[np.isin(days_of(f), window)] for f in (qqq, vixy)]
        parts.append(compute_regimes(*cut, start=day, train_sessions=train_sessions))
    incremental = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(incremental, full, check_exact=True)
    assert full["regime_ready"].mean() > 0.8  # only the very first session is not ready


@settings(max_examples=12, deadline=None)
@given(cut=st.integers(0, 6 * 390 - 1))
def test_regimes_up_to_t_do_not_depend_on_later_data(cut: int) -> None:
    qqq, vixy = context(6)
    full = _full_six()
    t = qqq["ts"].iloc[min(cut, len(qqq) - 1)]
    part = compute_regimes(qqq[qqq["ts"] <= t], vixy[vixy["ts"] <= t], train_sessions=3)
    pd.testing.assert_frame_equal(part, full[full["ts"] <= t], check_exact=True)


@functools.cache
def _full_six() -> pd.DataFrame:
    return compute_regimes(*context(6), train_sessions=3)


def test_gmm_for_a_day_is_fitted_only_on_the_sessions_before_it(monkeypatch) -> None:
    fitted: list[np.ndarray] = []

    import sklearn.mixture

    class Recording(sklearn.mixture.GaussianMixture):
        def fit(self, X, y=None):
            result = super().fit(X, y)
            fitted.append(self.means_.copy())
            return result

    monkeypatch.setattr(sklearn.mixture, "GaussianMixture", Recording)  # imported when fitting
    qqq, vixy = context()
    last = sorted(set(days_of(qqq)))[-1]
    compute_regimes(qqq, vixy, start=last, train_sessions=3)
    wild = [f.copy() for f in (qqq, vixy)]
    for f in wild:  # the target day turns wild: its own model must not change
        on_day = days_of(f) == last
        f.loc[on_day, ["open", "high", "low", "close"]] *= np.exp(
            np.random.default_rng(9).normal(0, 0.02, (on_day.sum(), 1))
        )
    compute_regimes(*wild, start=last, train_sessions=3)
    assert len(fitted) == 2
    np.testing.assert_array_equal(fitted[0], fitted[1])


def test_calm_is_zero_and_volatile_is_one() -> None:
    sigma = np.where(np.arange(390) < 195, 1e-4, 3e-3)  # calm mornings, wild afternoons
    qqq = make_bars(6, 5, 400.0, np.tile(sigma, (6, 1)))
    out = compute_regimes(qqq, None, train_sessions=3)
    last = out[days_of(out) == days_of(out)[-1]]
    minute = np.arange(len(last))
    assert (last["regime_gmm"].to_numpy()[(minute > 60) & (minute < 190)] == 0).all()
    assert (last["regime_gmm"].to_numpy()[minute > 240] == 1).all()


@pytest.mark.parametrize("missing", ["qqq", "vixy"])
def test_one_missing_symbol_defaults_its_regimes(missing: str) -> None:
    qqq, vixy = context()
    out = compute_regimes(None if missing == "qqq" else qqq, None if missing == "vixy" else vixy,
                          train_sessions=3)  # fmt: skip
    assert (out["regime_ready"] == 0).all() and check_regime_codes(out)[0]
    if missing == "qqq":
        assert (out["regime_sma"] == REGIME_DEFAULTS["regime_sma"]).all()
        assert (out["regime_sma_dist"] == 0.0).all()
    else:
        assert (out["regime_vix"] == REGIME_DEFAULTS["regime_vix"]).all()
    assert out["regime_gmm"].nunique() == 2  # the GMM runs on the symbol that is there


def test_no_context_at_all_gives_an_empty_frame() -> None:
    out = compute_regimes(None, pd.DataFrame())
    assert list(out.columns) == ["ts", *REGIME_COLUMNS] and out.empty


def test_rolling_mode_counts_known_labels_within_the_session() -> None:
    raw = np.array([1, 0, 0, -1, 1, 1, 0, 1], dtype=np.int8)
    session = np.array([1, 1, 1, 1, 1, 2, 2, 2])
    got = rolling_mode(raw, session, window=3)
    # t=0: {1} -> 1; t=1: tie -> own 0; t=2: 0; t=3: {0, 0} -> 0; t=4: {0, 1} tie -> own 1;
    # new session: t=5: 1; t=6: tie -> own 0; t=7: {1, 0, 1} -> 1
    assert got.tolist() == [1, 0, 0, 0, 1, 1, 0, 1]
    assert rolling_mode(np.array([-1], dtype=np.int8), np.array([1])).tolist() == [-1]


def test_check_regime_codes_flags_out_of_range_and_nan() -> None:
    codes = {"regime_vix": [0, 3, 4], "regime_gmm": [0, 1, 1], "regime_sma": [1, 0, 1]}
    frame = pd.DataFrame({**codes, "regime_ready": [1, 1, 1], "regime_sma_dist": [0, np.nan, 0]})
    passed, details = check_regime_codes(frame)
    assert not passed
    assert details["violations"]["regime_vix"]["count"] == 1
    assert details["violations"]["regime_sma_dist"] == "non-finite values"
    assert rg.describe_code("regime_vix", 3) == "bear_volatile"
