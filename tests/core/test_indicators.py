"""Every indicator against a plain-loop reference written from its textbook formula.

The references below are deliberately naive (Python loops over bars, sums in order) and
share no code with stock_assets.core.indicators. Agreement is required to 1e-9 relative;
values that are differences of price-sized numbers (MACD, distances) also get an absolute
slack of 1e-12 x the price level, the rounding floor of float64 at that scale.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core import indicators as ind
from stock_assets.core import series

NAN = float("nan")


# --- data ----------------------------------------------------------------------------------


def load_2019(real_data: Path, symbol: str) -> pd.DataFrame:
    """2019 sample: naive ET, newest first, labelled by bar END minute -> bar-open UTC."""
    raw = pd.read_csv(real_data / f"{symbol}_1min_2019-02-11_2019-02-15.csv")
    end = pd.to_datetime(raw["datetime"]).dt.tz_localize("America/New_York")
    raw["ts"] = (end - pd.Timedelta(minutes=1)).dt.tz_convert("UTC")
    return raw.sort_values("ts").reset_index(drop=True)


def load_spy_2024(real_data: Path, rows: int | None = None) -> pd.DataFrame:
    raw = pd.read_csv(real_data / "SPY_1min_2024-02-20_2024-05-17.csv")
    ts = pd.to_datetime(raw["datetime"], utc=True)
    et = ts.dt.tz_convert("America/New_York")
    minute = et.dt.hour * 60 + et.dt.minute
    keep = (minute >= 570) & (minute < 960)
    out = raw[keep].assign(ts=ts[keep]).reset_index(drop=True)
    return out if rows is None else out.iloc[:rows].reset_index(drop=True)


def generated_bars(seed: int, n: int, flat: float, zero_volume: float, price: float):
    """Random bars with flat stretches, zero volumes and H == L bars mixed in."""
    rng = np.random.default_rng(seed)
    close = np.empty(n)
    close[0] = price
    for t in range(1, n):
        close[t] = (
            close[t - 1] if rng.random() < flat else close[t - 1] * math.exp(rng.normal(0, 0.002))
        )
    close = np.round(close, 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.round(np.abs(rng.normal(0, 0.001 * price, (2, n))), 2)
    same = rng.random(n) < flat
    wick[:, same] = 0.0
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    volume = np.where(rng.random(n) < zero_volume, 0.0, np.round(rng.lognormal(6, 1, n)))
    return high, low, close, volume


# --- references ----------------------------------------------------------------------------


def ref_window(x, n, fn):
    out = []
    for t in range(len(x)):
        window = list(x[t - n + 1 : t + 1]) if t >= n - 1 else None
        out.append(NAN if window is None or any(math.isnan(v) for v in window) else fn(window))
    return out


def ref_mean(w):
    total = 0.0
    for v in w:
        total += v
    return total / len(w)


def ref_pstd(w):
    if max(w) == min(w):
        return 0.0
    m = ref_mean(w)
    return math.sqrt(sum((v - m) ** 2 for v in w) / len(w))


def ref_sma(x, n):
    return ref_window(x, n, ref_mean)


def ref_ema(x, n, alpha=None):
    alpha = 2 / (n + 1) if alpha is None else alpha
    out = [NAN] * len(x)
    first = next((i for i, v in enumerate(x) if not math.isnan(v)), None)
    if first is None or first + n > len(x):
        return out
    e = sum(x[first : first + n]) / n
    out[first + n - 1] = e
    for t in range(first + n, len(x)):
        e = alpha * x[t] + (1 - alpha) * e
        out[t] = e
    return out


def ref_rsi(c, n=14):
    out = [NAN] * len(c)
    if len(c) <= n:
        return out
    gains = [max(c[i] - c[i - 1], 0.0) for i in range(1, len(c))]
    losses = [max(c[i - 1] - c[i], 0.0) for i in range(1, len(c))]
    ag, al = sum(gains[:n]) / n, sum(losses[:n]) / n
    for t in range(n, len(c)):
        if t > n:
            ag = (ag * (n - 1) + gains[t - 1]) / n
            al = (al * (n - 1) + losses[t - 1]) / n
        out[t] = 50.0 if ag + al == 0 else 100.0 - 100.0 / (1.0 + ag / al) if al else 100.0
    return out


def ref_tr(h, lo, c):
    return [h[0] - lo[0]] + [max(h[t], c[t - 1]) - min(lo[t], c[t - 1]) for t in range(1, len(c))]


def ref_safe(num, den, default):
    if math.isnan(num) or math.isnan(den):
        return NAN
    return default if den == 0 else num / den


def ref_log_return(c):
    return [NAN] + [math.log(c[t] / c[t - 1]) for t in range(1, len(c))]


def ref_zscore(x, n):
    m, s = ref_window(x, n, ref_mean), ref_window(x, n, ref_pstd)
    return [ref_safe(x[t] - m[t], s[t], 0.0) for t in range(len(x))]


def ref_cov(x, y, n):
    def cov(t):
        xs, ys = x[t - n + 1 : t + 1], y[t - n + 1 : t + 1]
        if max(xs) == min(xs) or max(ys) == min(ys):
            return 0.0
        mx, my = ref_mean(xs), ref_mean(ys)
        return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / n

    out = []
    for t in range(len(x)):
        window = list(x[max(t - n + 1, 0) : t + 1]) + list(y[max(t - n + 1, 0) : t + 1])
        out.append(NAN if t < n - 1 or any(math.isnan(v) for v in window) else cov(t))
    return out


def assert_matches(ours, ref, *, atol=0.0, rtol=1e-9):
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg="NaN positions differ")
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


# --- the checks, on any bars ---------------------------------------------------------------


def check_all(h, lo, c, v, session=None):
    """Compare every indicator with its reference on one bar series."""
    h, lo, c, v = (np.asarray(a, dtype=float) for a in (h, lo, c, v))
    hl, ll, cl, vl = h.tolist(), lo.tolist(), c.tolist(), v.tolist()
    price_atol = 1e-12 * float(np.max(c))
    for n in (20, 50, 200):
        assert_matches(ind.sma(c, n), ref_sma(cl, n))
    for n in (9, 12, 26):
        assert_matches(ind.ema(c, n), ref_ema(cl, n))
    line, signal, hist = ind.macd(c)
    ref_line = [a - b for a, b in zip(ref_ema(cl, 12), ref_ema(cl, 26), strict=True)]
    ref_signal = ref_ema(ref_line, 9)
    assert_matches(line, ref_line, atol=price_atol)
    assert_matches(signal, ref_signal, atol=price_atol)
    assert_matches(
        hist, [a - b for a, b in zip(ref_line, ref_signal, strict=True)], atol=price_atol
    )
    assert_matches(ind.rsi(c, 14), ref_rsi(cl, 14), atol=1e-9)

    hh, lw = ref_window(hl, 14, max), ref_window(ll, 14, min)
    ref_k = [ref_safe(100 * (cl[t] - lw[t]), hh[t] - lw[t], 50.0) for t in range(len(cl))]
    k, d = ind.stochastic(h, lo, c, 14, 3)
    assert_matches(k, ref_k, atol=1e-9)
    assert_matches(d, ref_sma(ref_k, 3), atol=1e-9)

    mid, sd = ref_sma(cl, 20), ref_window(cl, 20, ref_pstd)
    bands = ind.bollinger(c, 20, 2.0)
    assert_matches(bands["mid"], mid)
    assert_matches(bands["upper"], [m + 2 * s for m, s in zip(mid, sd, strict=True)])
    assert_matches(bands["lower"], [m - 2 * s for m, s in zip(mid, sd, strict=True)])
    ref_b = [ref_safe(cl[t] - (mid[t] - 2 * sd[t]), 4 * sd[t], 0.5) for t in range(len(cl))]
    assert_matches(bands["pctb"], ref_b, atol=1e-9)
    assert_matches(bands["width"], [4 * s / m for m, s in zip(mid, sd, strict=True)], atol=1e-15)

    tr = ref_tr(hl, ll, cl)
    assert_matches(ind.true_range(h, lo, c), tr)
    assert_matches(ind.atr(h, lo, c, 14), ref_ema(tr, 14, alpha=1 / 14))
    obv, acc = [0.0], 0.0
    for t in range(1, len(cl)):
        acc += vl[t] if cl[t] > cl[t - 1] else -vl[t] if cl[t] < cl[t - 1] else 0.0
        obv.append(acc)
    assert_matches(ind.obv(c, v), obv)

    r = ref_log_return(cl)
    assert_matches(ind.log_return(c), r, atol=1e-15)
    for k_lag in (1, 2, 3, 5):
        ref_lag = [r[t - k_lag] if t >= k_lag else NAN for t in range(len(r))]
        assert_matches(ind.lag(ind.log_return(c), k_lag), ref_lag, atol=1e-15)
    ref_vc = [NAN] + [math.log1p(vl[t]) - math.log1p(vl[t - 1]) for t in range(1, len(vl))]
    assert_matches(ind.volume_change(v), ref_vc, atol=1e-12)
    assert_matches(ind.return_z_score(ind.log_return(c), 20), ref_zscore(r, 20), atol=1e-9)
    vm = ref_sma(vl, 60)
    assert_matches(ind.vol_ratio(v, 60), [ref_safe(vl[t], vm[t], 1.0) for t in range(len(vl))])
    tm = ref_sma(tr, 15)
    assert_matches(
        ind.atr_ratio(h, lo, c, 15), [ref_safe(tr[t], tm[t], 1.0) for t in range(len(tr))]
    )

    abs_r = ref_window([abs(x) for x in r], 20, sum)
    dollars = ref_window([a * b for a, b in zip(cl, vl, strict=True)], 20, sum)
    ref_amihud = [ref_safe(1e6 * abs_r[t], dollars[t], 0.0) for t in range(len(cl))]
    assert_matches(ind.amihud_illiquidity(c, v, ind.log_return(c), 20), ref_amihud)
    assert_matches(
        ind.ibs(h, lo, c), [ref_safe(cl[t] - ll[t], hl[t] - ll[t], 0.5) for t in range(len(cl))]
    )
    sq = [math.log(a / b) ** 2 for a, b in zip(hl, ll, strict=True)]
    ref_park = [math.sqrt(s / (4 * math.log(2))) for s in ref_sma(sq, 20)]
    assert_matches(ind.parkinson_vol(h, lo, 20), ref_park)

    path = ref_window([NAN] + [abs(cl[t] - cl[t - 1]) for t in range(1, len(cl))], 10, sum)
    ref_er = [
        NAN if t < 10 else ref_safe(abs(cl[t] - cl[t - 10]), path[t], 0.0) for t in range(len(cl))
    ]
    assert_matches(ind.efficiency_ratio(c, 10), ref_er, atol=1e-12)

    factor = [
        ref_safe(2 * cl[t] - hl[t] - ll[t], hl[t] - ll[t], 0.0) * vl[t] for t in range(len(cl))
    ]
    sum_f, sum_v = ref_window(factor, 20, ref_mean), ref_window(vl, 20, ref_mean)
    ref_ii = [ref_safe(sum_f[t], sum_v[t], 0.0) for t in range(len(cl))]
    assert_matches(ind.intraday_intensity(h, lo, c, v, 20), ref_ii, atol=1e-12)

    sd_r = ref_window(r, 20, ref_pstd)
    ref_vam = [
        NAN if t < 20 else ref_safe(math.log(cl[t] / cl[t - 20]), sd_r[t] * math.sqrt(20), 0.0)
        for t in range(len(cl))
    ]
    assert_matches(ind.vol_adj_mom(c, ind.log_return(c), 20), ref_vam, atol=1e-9)

    market = [0.0] + [0.5 * x + 0.0001 * math.sin(t) for t, x in enumerate(r[1:])]
    cov, var = ref_cov(r, market, 60), ref_cov(market, market, 60)
    ref_beta = [ref_safe(cov[t], var[t], 0.0) for t in range(len(cl))]
    assert_matches(ind.beta(ind.log_return(c), market, 60), ref_beta, atol=1e-9)
    diff = [a - b for a, b in zip(r, market, strict=True)]
    assert_matches(
        ind.relative_strength(ind.log_return(c), market, 20), ref_window(diff, 20, sum), atol=1e-15
    )

    if session is not None:
        price = [(a + b + x) / 3 for a, b, x in zip(hl, ll, cl, strict=True)]
        ref_vwap, pv, vv = [], 0.0, 0.0
        for t in range(len(cl)):
            if t == 0 or session[t] != session[t - 1]:
                pv = vv = 0.0
            pv += price[t] * vl[t]
            vv += vl[t]
            ref_vwap.append(pv / vv if vv > 0 else price[t])
        ours = ind.session_vwap(np.asarray(price), v, np.asarray(session))
        assert_matches(ours, ref_vwap)
        ref_dist = [cl[t] / ref_vwap[t] - 1 for t in range(len(cl))]
        assert_matches(ind.dist_vwap(c, ours), ref_dist, atol=1e-12)


# --- tests ---------------------------------------------------------------------------------


def test_indicators_match_references_on_real_spy_2024(real_data: Path) -> None:
    bars = load_spy_2024(real_data, rows=1600)  # four sessions and a bit: windows cross days
    session = bars["ts"].dt.tz_convert("America/New_York").dt.date.map(lambda d: d.toordinal())
    check_all(bars["high"], bars["low"], bars["close"], bars["volume"], session.to_numpy())


@pytest.mark.parametrize("symbol", ["AAPL", "TSLA", "VIX", "VXXB"])
def test_indicators_match_references_on_real_2019(real_data: Path, symbol: str) -> None:
    bars = load_2019(real_data, symbol)  # VIX: volume 0 everywhere, flat minutes, gaps
    session = bars["ts"].dt.tz_convert("America/New_York").dt.date.map(lambda d: d.toordinal())
    check_all(bars["high"], bars["low"], bars["close"], bars["volume"], session.to_numpy())


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 420),
    flat=st.sampled_from([0.0, 0.3, 0.95]),
    zero_volume=st.sampled_from([0.0, 0.5, 1.0]),
    price=st.sampled_from([0.5, 37.0, 4200.0]),
)
def test_indicators_match_references_on_generated_bars(seed, n, flat, zero_volume, price) -> None:
    h, lo, c, v = generated_bars(seed, n, flat, zero_volume, price)
    session = np.arange(n) // 97
    check_all(h, lo, c, v, session)


def test_rsi_matches_wilder_textbook_values() -> None:
    # StockCharts' RSI worked example (Wilder smoothing, 14 periods): first average gain 0.24,
    # first average loss 0.10, then RSI 70.53, 66.32, ... to two decimals.
    closes = [44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245,
              45.8433, 46.0826, 45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028,
              46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515,
              45.7835]  # fmt: skip
    expected = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71]
    got = ind.rsi(closes, 14)
    assert np.isnan(got[:14]).all()
    np.testing.assert_allclose(got[14:], expected, atol=0.005)


def test_warmups_are_exactly_as_documented() -> None:
    h, lo, c, v = generated_bars(7, 300, 0.0, 0.0, 100.0)
    r = ind.log_return(c)
    warmups = {
        "sma_200": (ind.sma(c, 200), 199),
        "ema_26": (ind.ema(c, 26), 25),
        "macd_signal": (ind.macd(c)[1], 33),
        "rsi": (ind.rsi(c), 14),
        "stoch_d": (ind.stochastic(h, lo, c)[1], 15),
        "bb_pctb": (ind.bollinger(c)["pctb"], 19),
        "atr": (ind.atr(h, lo, c), 13),
        "z": (ind.return_z_score(r, 20), 20),
        "vol_adj_mom": (ind.vol_adj_mom(c, r, 20), 20),
        "efficiency": (ind.efficiency_ratio(c, 10), 10),
        "beta": (ind.beta(r, r * 0.5 + 1e-4 * np.cos(np.arange(300)), 60), 60),
    }
    for name, (values, k) in warmups.items():
        assert np.isnan(values[:k]).all() and not np.isnan(values[k:]).any(), name


def test_flat_prices_give_neutral_values_not_nan() -> None:
    c = np.full(60, 10.0)
    assert (ind.rsi(c)[14:] == 50).all()
    assert (ind.bollinger(c)["pctb"][19:] == 0.5).all()
    assert (ind.stochastic(c, c, c)[0][13:] == 50).all()
    assert (ind.z_score(c, 20)[19:] == 0).all()
    assert (ind.ibs(c, c, c) == 0.5).all()
    assert (ind.atr_ratio(c, c, c, 15)[14:] == 1).all()


def test_rolling_moments_do_not_depend_on_where_the_computation_starts() -> None:
    _, _, c, _ = generated_bars(3, 2000, 0.2, 0.0, 450.0)
    full, tail = series.rolling_std(c, 20), series.rolling_std(c[1234:], 20)
    np.testing.assert_array_equal(full[1234 + 19 :], tail[19:])
    full = series.rolling_mean(c, 200, per_window=True)
    tail = series.rolling_mean(c[1234:], 200, per_window=True)
    np.testing.assert_array_equal(full[1234 + 199 :], tail[199:])
    assert_matches(full, ref_sma(c.tolist(), 200))


def test_session_clock_matches_pandas_calendar_fields_across_dst() -> None:
    ts = pd.Series(pd.date_range("2024-03-08 14:30", "2024-03-12 20:59", freq="7min", tz="UTC"))
    day, minute, weekday = series.session_clock(ts)
    et = ts.dt.tz_convert("America/New_York")
    assert (minute == (et.dt.hour * 60 + et.dt.minute).to_numpy()).all()
    assert (weekday == et.dt.dayofweek.to_numpy()).all()
    dates = [pd.Timestamp("1970-01-01").date() + pd.Timedelta(days=int(d)) for d in day]
    assert dates == list(et.dt.date)


def test_cyclical_time_features_match_trigonometry() -> None:
    minutes = np.array([570, 720, 959])
    sin, cos = ind.cyclical(minutes, 1440)
    np.testing.assert_allclose(sin, np.sin(2 * np.pi * minutes / 1440), rtol=0, atol=1e-15)
    np.testing.assert_allclose(cos, np.cos(2 * np.pi * minutes / 1440), rtol=0, atol=1e-15)


def test_asof_same_day_never_looks_ahead_nor_into_yesterday() -> None:
    left = np.array([100, 200, 300, 1000])
    left_day = np.array([1, 1, 1, 2])
    right = np.array([150, 300, 900])
    right_day = np.array([1, 1, 1])
    assert series.asof_same_day(left, left_day, right, right_day).tolist() == [-1, 0, 1, -1]
