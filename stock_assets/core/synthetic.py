"""Synthetic 1-minute bars: deterministic and realistic enough to run everything offline.

The model, in log prices, built in two layers so that any day can be made on its own:

- Randomness is counter-based: every number is a SplitMix64 hash of a stream key (a
  blake2b digest of names such as the symbol and the seed, never Python's salted `hash`)
  and a counter (the day's ordinal, and the minute inside the session). A day's bars
  therefore depend only on (symbol, day, seed), whatever range they are requested in,
  and a whole range is generated at once, vectorized over a (days x 390) matrix.
- Regimes: calm and volatile spells alternate; their lengths are exponential (mean 75 and
  25 calendar days, at least 5) drawn from (seed, spell number), so a regime persists and
  is the same for every symbol. A volatile day has ~2.4x the market volatility, a
  negative drift, 1.5x the idiosyncratic volatility and 1.5x the volume.
- Daily layer, over every XNYS session since the calendar's first day (cached per
  symbol and seed): market factor m_d = mu(regime) + sigma_m(regime) * z_d from (day, seed)
  only; each symbol's shock is s_d = beta * m_d + sigma_i(regime) * e_d. The log close
  x_d is the cumulative sum of the shocks, anchored so that the close on REFERENCE_DAY is
  the profile price; for VIXY-like symbols (negative beta, high volatility) it is an
  AR(1) around the log of the profile price instead (mean-reverting level). The overnight
  gap g_d = 0.2 * (x_d - x_{d-1}) + 0.25 * sigma_d * z puts the open at x_{d-1} + g_d,
  so a multi-day history is one price path with small overnight gaps.
- Intraday layer: minute shocks share the market's minute noise (beta-weighted, so
  symbols correlate inside the day too) and carry a U-shaped volatility profile times a
  market-wide AR(1) volatility-clustering factor. A Brownian bridge pins the last close
  of the day to x_d exactly. Open = previous minute's close; high and low extend the
  body by exponential amounts scaled to the minute's volatility; prices are rounded to
  cents. vwap lies inside [low, high]. Volume follows a U-shaped profile (heavy open,
  heavier last minutes) scaled by the day's level and |minute return|; trade_count is
  volume over a noisy average trade size.
- Missing minutes: 0-3 per (symbol, day, seed) (probabilities .35/.35/.2/.1), never the
  first or last minute, so gap tools have work and the day's open and close stay put.

Bit-identity holds within one platform and numpy build (floating-point transcendental
functions may differ in the last bit across builds).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.core.bars import VALUE_COLUMNS
from stock_assets.core.symbols import normalize_symbol

RAW_COLUMNS = ["ts", *VALUE_COLUMNS]
REFERENCE_DAY = dt.date(2024, 1, 2)
FULL_SESSION = 390
_NS_PER_MIN = 60_000_000_000
_MINUTE_SLOTS = 512  # counter stride per day: more than the minutes of any session

CALM_DAYS, VOLATILE_DAYS, MIN_SPELL_DAYS = 75.0, 25.0, 5
MARKET_VOL = {False: 0.0075, True: 0.018}  # daily sigma of the factor, calm / volatile
MARKET_DRIFT = {False: 0.0005, True: -0.0012}
VOLATILE_IDIO, VOLATILE_VOLUME = 1.5, 1.5
GAP_SHARE, GAP_NOISE, INTRADAY_SHARE = 0.2, 0.25, 0.85
CLUSTER_AR, CLUSTER_SCALE = 0.97, 0.45
MISSING_CDF = np.array([0.35, 0.70, 0.90])  # P(missing count <= 0, 1, 2)


@dataclass(frozen=True)
class SymbolProfile:
    """How one symbol behaves: its price near REFERENCE_DAY (the level it reverts to when
    `mean_reversion` > 0), market beta, calm daily idiosyncratic volatility, shares traded
    in a calm full session, and average shares per trade."""

    price: float
    beta: float
    idio_vol: float
    daily_volume: float
    trade_size: float
    mean_reversion: float = 0.0


PROFILES: dict[str, SymbolProfile] = {
    "SPY": SymbolProfile(475.0, 1.00, 0.0010, 75e6, 120),
    "QQQ": SymbolProfile(410.0, 1.15, 0.0040, 45e6, 100),
    "IWM": SymbolProfile(200.0, 1.15, 0.0060, 30e6, 100),
    "DIA": SymbolProfile(375.0, 0.90, 0.0030, 3e6, 60),
    "AAPL": SymbolProfile(185.0, 1.10, 0.0110, 55e6, 90),
    "MSFT": SymbolProfile(370.0, 1.10, 0.0100, 22e6, 70),
    "NVDA": SymbolProfile(48.0, 1.60, 0.0220, 400e6, 110),
    "AMZN": SymbolProfile(150.0, 1.20, 0.0140, 45e6, 90),
    "GOOGL": SymbolProfile(140.0, 1.10, 0.0130, 28e6, 90),
    "META": SymbolProfile(345.0, 1.30, 0.0170, 17e6, 70),
    "TSLA": SymbolProfile(245.0, 1.70, 0.0280, 110e6, 90),
    "AMD": SymbolProfile(140.0, 1.60, 0.0230, 60e6, 90),
    "GLD": SymbolProfile(190.0, 0.05, 0.0080, 8e6, 90),
    "TLT": SymbolProfile(98.0, -0.20, 0.0090, 35e6, 120),
    "VIXY": SymbolProfile(15.0, -3.00, 0.0250, 12e6, 150, mean_reversion=0.02),
    "VXX": SymbolProfile(15.0, -3.00, 0.0250, 40e6, 150, mean_reversion=0.02),
    "VXXB": SymbolProfile(30.0, -3.00, 0.0250, 4e6, 150, mean_reversion=0.02),
    "UVXY": SymbolProfile(20.0, -4.50, 0.0350, 60e6, 200, mean_reversion=0.02),
    "VIX": SymbolProfile(13.5, -4.00, 0.0350, 0.0, 1, mean_reversion=0.03),
}


def _digest(*parts: object) -> int:
    text = "|".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def symbol_profile(symbol: str) -> SymbolProfile:
    """The symbol's profile: from PROFILES, else stable hash-based ordinary-stock values."""
    symbol = normalize_symbol(symbol)
    if symbol in PROFILES:
        return PROFILES[symbol]
    u = [(_digest("profile", symbol, i) >> 11) * 2.0**-53 for i in range(5)]
    return SymbolProfile(
        price=round(10.0 * 40.0 ** u[0], 2),
        beta=0.7 + 0.8 * u[1],
        idio_vol=0.010 + 0.020 * u[2],
        daily_volume=5e5 * 50.0 ** u[3],
        trade_size=60.0 + 100.0 * u[4],
    )


def _splitmix(key: int, counter: np.ndarray) -> np.ndarray:
    x = counter.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _uniform(key: int, counter: np.ndarray) -> np.ndarray:
    """Uniform numbers in the open interval (0, 1), one per counter."""
    return ((_splitmix(key, counter) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _normal(key: int, counter: np.ndarray) -> np.ndarray:
    """Standard normal numbers (Box-Muller), one per counter."""
    u1, u2 = _uniform(key, 2 * counter), _uniform(key, 2 * counter + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class _Sessions:
    ordinals: np.ndarray  # day ordinal of every calendar session
    opens: np.ndarray  # open, ns since the epoch (UTC)
    minutes: np.ndarray  # session length in minutes
    dates: np.ndarray  # datetime.date objects


@lru_cache(maxsize=1)
def _sessions() -> _Sessions:
    dates, opens, closes = calendar.bounds_ns()
    ordinals = np.array([day.toordinal() for day in dates], dtype=np.int64)
    return _Sessions(ordinals, opens, (closes - opens) // _NS_PER_MIN, dates)


@dataclass(frozen=True)
class _Market:
    volatile: np.ndarray
    sigma: np.ndarray
    factor: np.ndarray


@lru_cache(maxsize=16)
def _market(seed: int) -> _Market:
    """Regime, volatility and factor return of every session, from the seed alone."""
    ordinals = _sessions().ordinals
    count = int((ordinals[-1] - ordinals[0]) / MIN_SPELL_DAYS) + 2
    spell = np.arange(count)
    mean = np.where(spell % 2 == 1, VOLATILE_DAYS, CALM_DAYS) - MIN_SPELL_DAYS
    lengths = MIN_SPELL_DAYS + np.floor(-mean * np.log(_uniform(_digest("spell", seed), spell)))
    ends = ordinals[0] - 30 + np.cumsum(lengths)
    volatile = np.searchsorted(ends, ordinals, "right") % 2 == 1
    sigma = np.where(volatile, MARKET_VOL[True], MARKET_VOL[False])
    drift = np.where(volatile, MARKET_DRIFT[True], MARKET_DRIFT[False])
    factor = drift + sigma * _normal(_digest("market-day", seed), ordinals)
    return _Market(volatile, sigma, factor)


@dataclass(frozen=True)
class _Path:
    open_log: np.ndarray  # log price at the session's open
    close_log: np.ndarray  # log price at the session's close
    sigma: np.ndarray  # the symbol's total daily volatility
    idio_sigma: np.ndarray
    abs_return: np.ndarray  # |close-to-close log return|


@lru_cache(maxsize=128)
def _path(symbol: str, seed: int) -> _Path:
    """The daily price path of one symbol over every calendar session."""
    profile, market, ordinals = symbol_profile(symbol), _market(seed), _sessions().ordinals
    idio_sigma = profile.idio_vol * np.where(market.volatile, VOLATILE_IDIO, 1.0)
    shock = profile.beta * market.factor + idio_sigma * _normal(
        _digest("idio-day", symbol, seed), ordinals
    )
    if profile.mean_reversion > 0:
        level = _ar1(shock, 1.0 - profile.mean_reversion)
    else:
        cumulative = np.cumsum(shock)
        reference = np.searchsorted(ordinals, REFERENCE_DAY.toordinal())
        level = cumulative - cumulative[min(reference, len(cumulative) - 1)]
    close_log = np.log(profile.price) + level
    previous = np.r_[close_log[0] - shock[0], close_log[:-1]]
    sigma = np.sqrt((profile.beta * market.sigma) ** 2 + idio_sigma**2)
    gap_noise = _normal(_digest("gap", symbol, seed), ordinals)
    open_log = previous + GAP_SHARE * (close_log - previous) + GAP_NOISE * sigma * gap_noise
    return _Path(open_log, close_log, sigma, idio_sigma, np.abs(close_log - previous))


def _ar1(shock: np.ndarray, keep: float, chunk: int = 128) -> np.ndarray:
    """y_t = keep * y_{t-1} + shock_t (y_{-1} = 0), as scaled cumulative sums over fixed
    chunks: vectorized, free of overflow, and the same prefix however long the input."""
    level = np.empty_like(shock)
    carry = 0.0
    powers = keep ** np.arange(chunk, dtype=np.float64)
    for lo in range(0, len(shock), chunk):
        part = shock[lo : lo + chunk]
        scale = powers[: len(part)]
        level[lo : lo + len(part)] = scale * (keep * carry + np.cumsum(part / scale))
        carry = level[lo + len(part) - 1]
    return level


def market_state(start: dt.date, end: dt.date, seed: int = 0) -> pd.DataFrame:
    """Per session from start to end: `regime` ('calm' or 'volatile'), the market factor's
    daily log return `market_return` and its daily volatility `market_volatility`."""
    days = _day_slice(start, end)
    market = _market(seed)
    return pd.DataFrame(
        {
            "regime": np.where(market.volatile[days], "volatile", "calm"),
            "market_return": market.factor[days],
            "market_volatility": market.sigma[days],
        },
        index=pd.Index(_sessions().dates[days], name="date"),
    )


def _day_slice(start: dt.date, end: dt.date) -> slice:
    ordinals = _sessions().ordinals
    lo = int(np.searchsorted(ordinals, start.toordinal(), "left"))
    hi = int(np.searchsorted(ordinals, end.toordinal(), "right"))
    return slice(lo, max(lo, hi))


def _profile_shape(
    minute: np.ndarray, last: np.ndarray, head: tuple[float, float], tail: tuple[float, float]
) -> np.ndarray:
    """1 + a*exp(-t/tau) from the open + b*exp(-(T-t)/tau') toward the close."""
    return 1.0 + head[0] * np.exp(-minute / head[1]) + tail[0] * np.exp(-(last - minute) / tail[1])


def _ar1_rows(noise: np.ndarray, keep: float) -> np.ndarray:
    """A stationary unit-variance AR(1) along each row, via a scaled cumulative sum."""
    powers = keep ** np.arange(noise.shape[1], dtype=np.float64)
    start = noise.copy()
    start[:, 0] /= np.sqrt(1.0 - keep**2)
    return powers * np.cumsum(start / powers, axis=1) * np.sqrt(1.0 - keep**2)


@dataclass(frozen=True)
class _Grid:
    """A (days x FULL_SESSION) matrix of minutes and its random numbers per cell.

    The fixed width keeps every row's arithmetic the same whatever other days share the
    matrix; half days are padded past their `length` and masked."""

    days: slice
    length: np.ndarray  # (days, 1): minutes in each session
    minute: np.ndarray  # (1, FULL_SESSION): minute index from the open
    counter: np.ndarray
    seed: int

    def normal(self, *name: object) -> np.ndarray:
        return _normal(_digest(*name, self.seed), self.counter)

    def uniform(self, *name: object) -> np.ndarray:
        return _uniform(_digest(*name, self.seed), self.counter)


def generate_range(
    symbol: str, start: dt.date, end: dt.date, seed: int = 0, *, missing: bool = True
) -> pd.DataFrame:
    """Regular-session 1-minute bars (RAW_COLUMNS) of one symbol for the sessions from
    start to end, both included. Each day equals `generate_bars` of that day; with
    `missing=False` the few deliberately missing minutes are kept."""
    symbol = normalize_symbol(symbol)
    days = _day_slice(start, end)
    sessions = _sessions()
    ordinals = sessions.ordinals[days]
    if len(ordinals) == 0:
        return _empty()
    length = sessions.minutes[days][:, None].astype(np.float64)
    minute = np.arange(FULL_SESSION, dtype=np.float64)[None, :]
    counter = ordinals[:, None] * _MINUTE_SLOTS + np.arange(FULL_SESSION)[None, :]
    grid = _Grid(days, length, minute, counter, seed)
    prices, mixed = _minute_prices(symbol, grid)
    volume, trades = _minute_volumes(symbol, grid, mixed)
    keep = minute < length
    if missing:
        keep &= ~_missing_mask(symbol, seed, ordinals, length)
    ts = sessions.opens[days][:, None] + np.arange(FULL_SESSION)[None, :] * _NS_PER_MIN
    columns = [*prices, volume, _vwap(prices, grid, symbol), trades]
    frame = pd.DataFrame(dict(zip(VALUE_COLUMNS, (c[keep] for c in columns), strict=True)))
    frame.insert(0, "ts", pd.to_datetime(ts[keep], unit="ns", utc=True))
    return frame


def _minute_prices(symbol: str, grid: _Grid) -> tuple[list[np.ndarray], np.ndarray]:
    """Open, high, low, close per minute (cents), and the unit-variance minute shocks."""
    profile, market, path = symbol_profile(symbol), _market(grid.seed), _path(symbol, grid.seed)
    days, minute, length = grid.days, grid.minute, grid.length
    sigma = path.sigma[days][:, None]
    # Volatility per minute: U-shape x clustering, scaled to the day's intraday variance.
    cluster = np.exp(CLUSTER_SCALE * _ar1_rows(grid.normal("cluster"), CLUSTER_AR))
    weight = np.where(minute < length, _profile_shape(minute, length - 1, (1.2, 15), (0.3, 20)), 0)
    weight = weight * cluster
    weight_sq = np.cumsum(weight**2, axis=1)
    day_var = INTRADAY_SHARE * sigma**2 * length / FULL_SESSION
    minute_sd = weight * np.sqrt(day_var / weight_sq[:, -1:])
    mixed = (
        profile.beta * market.sigma[days][:, None] * grid.normal("market-minute")
        + path.idio_sigma[days][:, None] * grid.normal("idio-minute", symbol)
    ) / sigma

    # Brownian bridge: the last close of the day lands exactly on the daily path.
    walk = np.cumsum(minute_sd * mixed, axis=1)
    target = (path.close_log[days] - path.open_log[days])[:, None]
    last = np.take_along_axis(walk, length.astype(np.int64) - 1, axis=1)
    walk = walk - weight_sq / weight_sq[:, -1:] * (last - target)
    close_log = path.open_log[days][:, None] + walk
    open_log = np.concatenate([path.open_log[days][:, None], close_log[:, :-1]], axis=1)
    wick = 0.6 * minute_sd
    high_log = np.maximum(open_log, close_log) - wick * np.log(grid.uniform("hi", symbol))
    low_log = np.minimum(open_log, close_log) + wick * np.log(grid.uniform("lo", symbol))

    open_ = np.maximum(np.round(np.exp(open_log), 2), 0.01)
    close = np.maximum(np.round(np.exp(close_log), 2), 0.01)
    high = np.maximum(np.round(np.exp(high_log), 2), np.maximum(open_, close))
    low = np.maximum(np.minimum(np.round(np.exp(low_log), 2), np.minimum(open_, close)), 0.01)
    return [open_, high, low, close], mixed


def _vwap(prices: list[np.ndarray], grid: _Grid, symbol: str) -> np.ndarray:
    """Near the bar's mean price, always inside [low, high] (4 decimals)."""
    open_, high, low, close = prices
    spread = 0.3 * (grid.uniform("vwap", symbol) - 0.5) * (high - low)
    inside = np.clip((open_ + high + low + close) / 4 + spread, low, high)
    return np.clip(np.round(inside, 4), low, high)


def _minute_volumes(symbol: str, grid: _Grid, mixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Volume (a U-shaped share of a regime- and move-dependent daily total) and trades."""
    profile, market, path = symbol_profile(symbol), _market(grid.seed), _path(symbol, grid.seed)
    days, minute, length = grid.days, grid.minute, grid.length
    share = np.where(minute < length, _profile_shape(minute, length - 1, (2.5, 20), (1.2, 15)), 0)
    share = share + np.where(minute == length - 1, 2.0, 0.0)  # the closing auction
    share = share / np.cumsum(share, axis=1)[:, -1:]
    day_noise = _normal(_digest("volume-day", symbol, grid.seed), _sessions().ordinals[days])
    day_volume = (
        profile.daily_volume
        * np.where(market.volatile[days], VOLATILE_VOLUME, 1.0)
        * (1.0 + 10.0 * path.abs_return[days])
        * np.exp(0.25 * day_noise - 0.03)
    )[:, None] * (length / FULL_SESSION)
    activity = 0.6 + 0.5 * np.abs(mixed)
    noise = np.exp(0.5 * grid.normal("volume", symbol) - 0.125)
    volume = np.round(day_volume * share * activity * noise)
    volume = np.maximum(volume, 1.0 if profile.daily_volume > 0 else 0.0)
    trade_size = profile.trade_size * np.exp(0.2 * grid.normal("trade-size", symbol))
    trades = np.minimum(np.maximum(np.round(volume / trade_size), 1.0), volume)
    return volume, trades


def _missing_mask(symbol: str, seed: int, ordinals: np.ndarray, length: np.ndarray) -> np.ndarray:
    """0-3 deliberately missing minutes per day, never the first or the last."""
    draws = _uniform(_digest("missing", symbol, seed), ordinals[:, None] * 4 + np.arange(4))
    count = np.searchsorted(MISSING_CDF, draws[:, 0], "right")
    inner = length[:, 0] - 2
    where = 1 + np.floor(draws[:, 1:] * inner[:, None]).astype(np.int64)
    chosen = np.arange(3)[None, :] < count[:, None]
    mask = np.zeros((len(ordinals), FULL_SESSION), dtype=bool)
    rows = np.broadcast_to(np.arange(len(ordinals))[:, None], where.shape)
    mask[rows[chosen], where[chosen]] = True
    return mask


def generate_bars(
    symbol: str, day: dt.date, seed: int = 0, *, missing: bool = True
) -> pd.DataFrame:
    """The regular-session 1-minute bars (RAW_COLUMNS) of one symbol on one day; empty
    for a day that is not an XNYS session."""
    return generate_range(symbol, day, day, seed, missing=missing)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in RAW_COLUMNS})
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
