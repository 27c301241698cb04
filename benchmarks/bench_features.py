"""Feature benchmark: the full feature set, and seven standard indicators three ways.

Run: ``uv run python benchmarks/bench_features.py`` (``--rows``, ``--repeat``, ``--skip-ta``).
Prints one line per figure: ``name value unit (params)``. Timings are the best of
``--repeat`` runs after one warm-up run (numba kernels compile once, cached on disk).

- full feature set: ``compute_features`` on one symbol with QQQ and VIXY context of the same
  length and a precomputed regimes frame joined in (every column of FEATURE_COLUMNS). The
  regimes' per-day GMM fit is timed on its own (``regimes_one_day``) and extrapolated.
- seven standard indicators (SMA 20/50/200, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, OBV,
  Stochastic 14/3): ours (stock_assets.core.indicators), plain pandas written here, and ``ta``.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd

from stock_assets.core import indicators as ind
from stock_assets.core.features import FEATURE_COLUMNS, compute_features
from stock_assets.core.regimes import REGIME_LOOKBACK_SESSIONS, compute_regimes

SESSION_MINUTES = 390


def make_bars(n_rows: int, *, seed: int, price: float, sigma: float) -> pd.DataFrame:
    """Random-walk 1-minute bars on consecutive weekdays, 09:30-15:59 ET, a few minutes missing."""
    rng = np.random.default_rng(seed)
    n_sessions = -(-n_rows // SESSION_MINUTES)
    days = pd.bdate_range("2015-01-02", periods=n_sessions)
    opens = (days + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York")
    minute = np.arange(SESSION_MINUTES, dtype=np.int64) * 60_000_000_000
    ns = (opens.tz_convert("UTC").asi8[:, None] + minute[None, :]).ravel()[:n_rows]
    close = price * np.exp(np.cumsum(rng.normal(0.0, sigma, n_rows)))
    close = np.round(close, 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0.0, sigma * price * 0.5, (2, n_rows)))
    high = np.maximum(open_, close) + np.round(wick[0], 2)
    low = np.maximum(np.minimum(open_, close) - np.round(wick[1], 2), 0.01)
    volume = np.round(rng.lognormal(8.0, 1.0, n_rows))
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(ns, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": (high + low + close) / 3.0,
            "trade_count": np.round(volume / 50.0),
            "source": "bench",
            "is_filled": False,
        }
    )


def ours_seven(b: pd.DataFrame) -> dict[str, np.ndarray]:
    h, lo, c, v = (b[k].to_numpy() for k in ("high", "low", "close", "volume"))
    out = {f"sma_{n}": ind.sma(c, n) for n in (20, 50, 200)}
    out["rsi"] = ind.rsi(c, 14)
    out["macd"], out["macd_signal"], out["macd_hist"] = ind.macd(c)
    out |= {f"bb_{k}": x for k, x in ind.bollinger(c, 20, 2.0).items()}
    out["atr"] = ind.atr(h, lo, c, 14)
    out["obv"] = ind.obv(c, v)
    out["stoch_k"], out["stoch_d"] = ind.stochastic(h, lo, c, 14, 3)
    return out


def pandas_seven(b: pd.DataFrame) -> dict[str, pd.Series]:
    h, lo, c, v = b["high"], b["low"], b["close"], b["volume"]
    out = {f"sma_{n}": c.rolling(n).mean() for n in (20, 50, 200)}
    delta = c.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    out["rsi"] = 100 - 100 / (1 + gain / loss)
    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    out["macd"], out["macd_signal"] = macd, macd.ewm(span=9, adjust=False).mean()
    out["macd_hist"] = macd - out["macd_signal"]
    mid, sd = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
    out |= {"bb_mid": mid, "bb_upper": mid + 2 * sd, "bb_lower": mid - 2 * sd}
    out["bb_pctb"] = (c - out["bb_lower"]) / (4 * sd)
    out["bb_width"] = 4 * sd / mid
    prev = c.shift()
    tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
    out["atr"] = tr.ewm(alpha=1 / 14, adjust=False).mean()
    out["obv"] = (np.sign(delta).fillna(0) * v).cumsum()
    ll, hh = lo.rolling(14).min(), h.rolling(14).max()
    out["stoch_k"] = 100 * (c - ll) / (hh - ll)
    out["stoch_d"] = out["stoch_k"].rolling(3).mean()
    return out


def ta_seven(b: pd.DataFrame) -> dict[str, pd.Series]:
    import ta

    h, lo, c, v = b["high"], b["low"], b["close"], b["volume"]
    out = {f"sma_{n}": ta.trend.SMAIndicator(c, n).sma_indicator() for n in (20, 50, 200)}
    out["rsi"] = ta.momentum.RSIIndicator(c, 14).rsi()
    m = ta.trend.MACD(c, 26, 12, 9)
    out |= {"macd": m.macd(), "macd_signal": m.macd_signal(), "macd_hist": m.macd_diff()}
    bb = ta.volatility.BollingerBands(c, 20, 2)
    out |= {"bb_mid": bb.bollinger_mavg(), "bb_upper": bb.bollinger_hband()}
    out |= {"bb_lower": bb.bollinger_lband(), "bb_pctb": bb.bollinger_pband()}
    out["bb_width"] = bb.bollinger_wband()
    out["atr"] = ta.volatility.AverageTrueRange(h, lo, c, 14).average_true_range()
    out["obv"] = ta.volume.OnBalanceVolumeIndicator(c, v).on_balance_volume()
    st = ta.momentum.StochasticOscillator(h, lo, c, 14, 3)
    out["stoch_k"], out["stoch_d"] = st.stoch(), st.stoch_signal()
    return out


def _max_scaled_diff(a: np.ndarray, b: pd.Series) -> float:
    """max |a - b| / max |b| after the first 1000 rows (where the EMA seeds have decayed)."""
    a, b = np.asarray(a)[1000:], b.to_numpy()[1000:]
    return float(np.nanmax(np.abs(a - b)) / np.nanmax(np.abs(b)))


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def report(name: str, value: float, unit: str, params: str) -> None:
    print(f"{name} {value:.4g} {unit} ({params})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ta", action="store_true", help="skip the slow ta library run")
    args = parser.parse_args()
    n = args.rows

    bars = make_bars(n, seed=1, price=150.0, sigma=4e-4)
    qqq = make_bars(n, seed=2, price=300.0, sigma=3e-4)
    vixy = make_bars(n, seed=3, price=20.0, sigma=1.5e-3)
    rng = np.random.default_rng(4)
    regimes = pd.DataFrame({"ts": qqq["ts"]})
    for col, high in (("regime_vix", 4), ("regime_gmm", 2), ("regime_sma", 2), ("regime_ready", 2)):
        regimes[col] = rng.integers(0, high, len(qqq)).astype(np.int8)
    regimes["regime_sma_dist"] = rng.normal(0.0, 0.01, len(qqq))
    params = f"rows={n}, columns={len(FEATURE_COLUMNS)}, context=QQQ+VIXY+regimes"

    def full() -> pd.DataFrame:
        return compute_features(bars, qqq=qqq, vixy=vixy, regimes=regimes)

    compute_features(bars.iloc[:5000], qqq=qqq.iloc[:5000], vixy=vixy.iloc[:5000])  # JIT warm-up
    seconds = best_of(full, args.repeat)
    report("features_full_seconds", seconds, "s", params)
    report("features_full_rows_per_s", n / seconds, "rows/s", params)
    tracemalloc.start()
    full()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    report("features_full_peak_traced_memory", peak / 2**20, "MiB", params + ", tracemalloc")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report("features_full_peak_rss", rss, "MiB", "whole process incl. inputs, after full runs")

    day = SESSION_MINUTES
    span = (REGIME_LOOKBACK_SESSIONS + 1) * day
    q_day, v_day = qqq.iloc[-span:], vixy.iloc[-span:]
    last_day = q_day["ts"].iloc[-1].tz_convert("America/New_York").date()
    compute_regimes(q_day, v_day, start=last_day)
    one_day = best_of(lambda: compute_regimes(q_day, v_day, start=last_day), args.repeat)
    lookback = f"lookback={REGIME_LOOKBACK_SESSIONS} sessions, one GMM fit"
    report("regimes_one_day_seconds", one_day, "s", lookback)
    report("regimes_per_year_estimate", one_day * 252, "s", "252 days x one day's cost")

    seven = "SMA20/50/200 RSI14 MACD BB20 ATR14 OBV Stoch14/3"
    for name, fn in (("ours", ours_seven), ("pandas", pandas_seven)):
        fn(bars)
        sec = best_of(lambda fn=fn: fn(bars), args.repeat)
        report(f"seven_{name}_seconds", sec, "s", f"rows={n}, {seven}")
        report(f"seven_{name}_rows_per_s", n / sec, "rows/s", f"rows={n}")
    ours, plain = ours_seven(bars), pandas_seven(bars)
    worst = max(ours, key=lambda k: _max_scaled_diff(ours[k], plain[k]))
    report(
        "seven_ours_vs_pandas_max_diff",
        _max_scaled_diff(ours[worst], plain[worst]),
        "x column scale",
        f"rows >= 1000, worst column {worst}",
    )
    if not args.skip_ta:
        sec = best_of(lambda: ta_seven(bars), 1)
        report("seven_ta_seconds", sec, "s", f"rows={n}, {seven}, one run")
        report("seven_ta_rows_per_s", n / sec, "rows/s", f"rows={n}")


if __name__ == "__main__":
    main()
