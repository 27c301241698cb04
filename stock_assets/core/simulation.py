"""Backtest engine: one prediction series through a whole parameter grid in one pass.

Inputs: bars (`ts`, `close`, and `high`/`low` for midpoint fills; one row per bar, sorted,
unique; a missing minute is simply an absent row), one prediction per bar, optional
regime codes (name -> int array), optional bot probabilities. Predictions are returns
(`prediction_as_return` converts a log-return or price model's output): a log-return
model's 0.002 is 0.2% and is compared with thresholds in return units, never with a price.

Signals, decided at the close of bar i:
- classifier: pred == 1 buy, pred == 0 sell, anything else (NaN) no signal. Thresholds,
  the z-score filter and volatility normalization do not apply: a classifier grid keeps
  threshold 0 with both filters off.
- regressor: buy when pred > t_i, sell when pred <= -t_i, else none; NaN none. t_i = t,
  or t x scale_i with volatility normalization (t = 0 is the plain > 0 / <= 0 rule).
- z-score filter: z_i = (pred_i - mean) / std (ddof=0) over the finite predictions among
  bars i-w .. i-1 (the w bars before i); |z_i| > limit (3) means no signal. z is undefined,
  and the filter passes, before bar w, with fewer than 2 finite values, or when
  std <= 1e-12 x |mean| (a constant window).
- volatility normalization: r_j = close_j / close_{j-1} - 1; vol_i = std (ddof=0) of
  r_{i-w+1} .. r_i (defined from bar w); med_i = median of vol_{i-m+1} .. vol_i (all
  defined); scale_i = vol_i / med_i, or 1 where either is undefined or med_i is 0.
- bot gating: a buy needs bot_proba_i > bot_threshold (0.55); NaN blocks. Sells pass.
- regime gating: where the regime code is outside the whitelist, buy -> none and the
  signal is sell (forced exit).
All trailing statistics use bars up to and including i, known at i's close.

Execution (long-only, all-in/all-out, one order per bar at most):
- The decision state is the position after every submitted order, filled or pending:
  flat + buy submits a buy, long + sell submits a sell, everything else holds. So a
  signal repeated while an order is pending adds nothing (no double buys).
- An order of bar s fills at bar f = s + delay: at close_f, or with the midpoint preset at
  (high_f + low_f) / 2, close_f where that is not finite or <= 0. Past the last bar it
  fills at the last close, after that bar's own fills, in submission order. At a bar,
  due fills come first, then the decision (filled at once when delay = 0).
- Buy: budget = cash - fee; qty = budget / (price x (1 + bps / 1e4)), floored to whole
  shares unless fractional. No qty > 0 (budget <= 0, or cash below one share): the order
  is cancelled (no fill, no fee) and, if it is still the latest order, the state is flat
  again. Fee = fixed fee + notional x bps / 1e4 per fill; cash -= notional + fee.
- Sell: all shares; cash += notional - fee (cash may go negative on fees alone). A sell
  finding no shares (its buy was cancelled) is a no-op.
- Equity_i = cash + shares x close_i after bar i. An open position at the end is marked
  at the last close with no exit fee; it is no closed trade.

Metrics are defined in `stock_assets.core.metrics`: trades are closed round trips, daily
returns come from the equity of each ET date's last bar, exposure is the share of bars
ending with shares > 0. Baselines, under each combination's fill preset and costs:
buy-and-hold is the always-buy prediction (in at the first bar that can fill, held); the
random baseline places as many orders as the combination filled, alternating buy/sell,
at distinct bars drawn uniformly (`random_signal_bars`: the bars ranked below the count
in a seeded random permutation), its return averaged over `random_draws` draws. Every
row reports its excess return over both.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numba as nb
import numpy as np
import pandas as pd

from stock_assets.core import metrics
from stock_assets.core.calendar import EXCHANGE_TZ

TargetKind = Literal["regressor", "classifier"]
FillPrice = Literal["close", "mid"]
TargetTransform = Literal["log_return", "pct_change", "price"]
BUY_AND_HOLD = "baseline:buy_and_hold"
RANDOM = "baseline:random"
_NS_PER_DAY = 86_400_000_000_000
_FILL_COLUMNS = ("signal_bar", "bar", "side", "price", "shares", "fee", "cash")
_AXES = {
    "fills": "fill",
    "regimes": "regime",
    "bot": "bot",
    "zscore": "zscore",
    "volnorm": "volnorm",
    "thresholds": "threshold",
}
_SHARED = (
    "target_kind",
    "zscore_window",
    "zscore_limit",
    "vol_window",
    "vol_median_window",
    "bot_threshold",
    "fee_per_trade",
    "fee_bps",
    "fractional",
    "initial_cash",
)


class InvalidSimulationInput(ValueError):
    """Bars, predictions or parameters the engine cannot simulate."""


@dataclass(frozen=True)
class FillPreset:
    """Fill `delay_bars` after the signal bar, at that bar's close or midpoint."""

    delay_bars: int = 0
    price: FillPrice = "close"

    def __post_init__(self) -> None:
        if not isinstance(self.delay_bars, int) or self.delay_bars < 0:
            raise InvalidSimulationInput(f"delay_bars {self.delay_bars!r}: an int >= 0")
        if self.price not in ("close", "mid"):
            raise InvalidSimulationInput(f"fill price {self.price!r}: 'close' or 'mid'")


FILL_AT_CLOSE = FillPreset(0, "close")
FILL_REALISTIC = FillPreset(4, "mid")


@dataclass(frozen=True)
class RegimeFilter:
    """Trade only while regime `column` is one of `allowed`; elsewhere exit and stay out."""

    column: str
    allowed: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", tuple(sorted({int(a) for a in self.allowed})))


@dataclass(frozen=True)
class SimParams:
    """One combination of the grid."""

    target_kind: TargetKind = "regressor"
    threshold: float = 0.0
    zscore: bool = False
    zscore_window: int = 100
    zscore_limit: float = 3.0
    volnorm: bool = False
    vol_window: int = 30
    vol_median_window: int = 390
    regime: RegimeFilter | None = None
    bot: bool = False
    bot_threshold: float = 0.55
    fill: FillPreset = FILL_AT_CLOSE
    fee_per_trade: float = 0.02
    fee_bps: float = 0.0
    fractional: bool = False
    initial_cash: float = 10_000.0

    def as_row(self) -> dict[str, object]:
        """The parameters as flat `sim_runs` columns."""
        row: dict[str, object] = {k: getattr(self, k) for k in _SHARED}
        row.update(threshold=self.threshold, zscore=self.zscore, volnorm=self.volnorm)
        row.update(bot=self.bot, fill_delay=self.fill.delay_bars, fill_price=self.fill.price)
        row["regime_column"] = self.regime.column if self.regime else None
        row["regime_allowed"] = ",".join(map(str, self.regime.allowed)) if self.regime else None
        return row


@dataclass(frozen=True)
class SimGrid:
    """The axes (tuples) and shared settings of a grid; `combinations()` is the product."""

    target_kind: TargetKind = "regressor"
    thresholds: tuple[float, ...] = (0.0,)
    zscore: tuple[bool, ...] = (False,)
    zscore_window: int = 100
    zscore_limit: float = 3.0
    volnorm: tuple[bool, ...] = (False,)
    vol_window: int = 30
    vol_median_window: int = 390
    regimes: tuple[RegimeFilter | None, ...] = (None,)
    bot: tuple[bool, ...] = (False,)
    bot_threshold: float = 0.55
    fills: tuple[FillPreset, ...] = (FILL_AT_CLOSE,)
    fee_per_trade: float = 0.02
    fee_bps: float = 0.0
    fractional: bool = False
    initial_cash: float = 10_000.0
    random_draws: int = 8
    random_seed: int = 0
    hit_window: int = 100

    def __post_init__(self) -> None:
        checks = {
            "target_kind": self.target_kind in ("regressor", "classifier"),
            "thresholds": all(math.isfinite(t) and t >= 0 for t in self.thresholds),
            "windows": self.zscore_window >= 2
            and min(self.vol_window, self.vol_median_window) >= 1,
            "zscore_limit": self.zscore_limit > 0,
            "fees": self.fee_per_trade >= 0 and self.fee_bps >= 0,
            "initial_cash": self.initial_cash > 0,
            "random": 0 <= self.random_draws <= 1000 and self.random_seed >= 0,
            "axes": all(len(getattr(self, axis)) > 0 for axis in _AXES),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InvalidSimulationInput(
                f"invalid grid settings {bad}: kind regressor|classifier, thresholds >= 0, "
                "zscore_window >= 2, vol windows >= 1, zscore_limit > 0, fees >= 0, cash > 0, "
                "0 <= random_draws <= 1000, random_seed >= 0, non-empty axes"
            )

    @classmethod
    def of(cls, params: SimParams) -> SimGrid:
        """The one-combination grid of `params`."""
        axes = {axis: (getattr(params, name),) for axis, name in _AXES.items()}
        return cls(**axes, **{k: getattr(params, k) for k in _SHARED})

    def combinations(self) -> list[SimParams]:
        """Every combination, thresholds varying fastest (a classifier's collapse to one)."""
        axes = {axis: tuple(dict.fromkeys(getattr(self, axis))) for axis in _AXES}
        if self.target_kind == "classifier":
            axes.update(thresholds=(0.0,), zscore=(False,), volnorm=(False,))
        shared = {k: getattr(self, k) for k in _SHARED}
        names = [_AXES[axis] for axis in axes]
        return [
            SimParams(**shared, **dict(zip(names, values, strict=True)))
            for values in itertools.product(*axes.values())
        ]


@dataclass
class SimRun:
    """One combination's parameters and metrics (see metrics.METRIC_NAMES)."""

    params: SimParams
    metrics: dict[str, float]


@dataclass
class GridResult:
    """All combinations of one grid over one prediction series, in `combinations()` order.

    Fills, trades and equity curves are recomputed on demand for a chosen combination.
    """

    runs: list[SimRun]
    ts: pd.DatetimeIndex
    hits: np.ndarray = field(repr=False)
    _inputs: _Inputs = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Parameters and metrics, one row per combination."""
        rows = [{"combo": i, **r.params.as_row(), **r.metrics} for i, r in enumerate(self.runs)]
        return pd.DataFrame(rows)

    def best(self, metric: str) -> int:
        """Index of the best combination by `metric` (NaN never wins)."""
        values = self.table()[metric].astype(float)
        return int(values.idxmin() if metric in metrics.LOWER_IS_BETTER else values.idxmax())

    def fills(self, combo: int) -> pd.DataFrame:
        """Every fill: signal bar, fill bar, side (+1 buy, -1 sell), price, shares, fee, cash."""
        table = self._inputs.replay(self.runs[combo].params)[0]
        frame = pd.DataFrame(table, columns=list(_FILL_COLUMNS))
        return frame.astype({"signal_bar": "int64", "bar": "int64", "side": "int64"})

    def trades(self, combo: int) -> pd.DataFrame:
        """Closed round trips with their net pnl and net return."""
        table = self._inputs.replay(self.runs[combo].params)[0]
        closed = len(table) // 2
        buys, sells = table[0 : 2 * closed : 2], table[1 : 2 * closed : 2]
        cost = buys[:, 4] * buys[:, 3] + buys[:, 5]
        proceeds = sells[:, 4] * sells[:, 3] - sells[:, 5]
        picked = {"signal_bar": 0, "bar": 1, "price": 3, "fee": 5}
        frame = {f"entry_{name}": buys[:, i] for name, i in picked.items()}
        frame["shares"] = buys[:, 4]
        frame.update({f"exit_{name}": sells[:, i] for name, i in picked.items()})
        frame.update(pnl=proceeds - cost, net_return=proceeds / cost - 1.0)
        ints = ("entry_signal_bar", "entry_bar", "exit_signal_bar", "exit_bar")
        return pd.DataFrame(frame).astype({c: "int64" for c in ints})

    def equity(self, combo: int) -> pd.Series:
        """Bar-close equity of one combination."""
        curve = self._inputs.replay(self.runs[combo].params)[1]
        return pd.Series(curve, index=self.ts, name="equity")

    def buy_hold_equity(self, combo: int = 0) -> pd.Series:
        """Bar-close equity of buy-and-hold under combination `combo`'s fill and costs."""
        params = _baseline_params(self.runs[combo].params)
        pred = buy_and_hold_prediction(len(self.ts), params.target_kind)
        curve = self._inputs.replay(params, pred)[1]
        return pd.Series(curve, index=self.ts, name="buy_hold_equity")

    def rolling_hit_rate(self, window: int = 100) -> pd.Series:
        """Directional hit rate over the last `window` bars."""
        rolling = metrics.rolling_hit_rate(self.hits, window)
        return pd.Series(rolling, index=self.ts, name="rolling_hit_rate")


@dataclass
class SimResult:
    """One combination simulated alone, with its curves."""

    params: SimParams
    metrics: dict[str, float]
    fills: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.Series
    buy_hold_equity: pd.Series
    rolling_hit_rate: pd.Series


def simulate_grid(
    bars: pd.DataFrame,
    pred: np.ndarray | pd.Series,
    grid: SimGrid,
    *,
    regimes: dict[str, np.ndarray] | None = None,
    bot_proba: np.ndarray | pd.Series | None = None,
) -> GridResult:
    """Simulate every combination of `grid` for one prediction series."""
    combos = grid.combinations()
    missing = {p.regime.column for p in combos if p.regime is not None} - set(regimes or {})
    if missing:
        raise InvalidSimulationInput(
            f"regime columns {sorted(missing)} not given: available {sorted(regimes or {})}"
        )
    if any(p.bot for p in combos) and bot_proba is None:
        raise InvalidSimulationInput("the grid gates on the bot (bot=True) but bot_proba is None")
    inputs = _Inputs.build(bars, pred, grid, regimes or {}, bot_proba)
    runs = [inputs.run(params) for params in combos]
    inputs.add_random_baselines(runs)
    return GridResult(runs=runs, ts=inputs.ts, hits=inputs.hits, _inputs=inputs)


def simulate(
    bars: pd.DataFrame,
    pred: np.ndarray | pd.Series,
    params: SimParams,
    *,
    regimes: dict[str, np.ndarray] | None = None,
    bot_proba: np.ndarray | pd.Series | None = None,
) -> SimResult:
    """Simulate one combination, with its fills, trades and curves."""
    grid = SimGrid.of(params)
    result = simulate_grid(bars, pred, grid, regimes=regimes, bot_proba=bot_proba)
    return SimResult(
        params=result.runs[0].params,
        metrics=result.runs[0].metrics,
        fills=result.fills(0),
        trades=result.trades(0),
        equity=result.equity(0),
        buy_hold_equity=result.buy_hold_equity(0),
        rolling_hit_rate=result.rolling_hit_rate(grid.hit_window),
    )


def prediction_as_return(
    pred: np.ndarray, transform: TargetTransform, close: np.ndarray | None = None
) -> np.ndarray:
    """A model's prediction in simple-return units, the units thresholds are given in.

    log_return: expm1(pred); pct_change: as is; price: pred / close - 1 (needs `close`).
    """
    pred = np.asarray(pred, dtype=np.float64)
    if transform == "log_return":
        return np.expm1(pred)
    if transform == "pct_change":
        return pred
    if transform == "price" and close is not None:
        return pred / np.asarray(close, dtype=np.float64) - 1.0
    raise InvalidSimulationInput(
        f"target transform {transform!r}: log_return, pct_change, or price with `close`"
    )


# --- baselines -----------------------------------------------------------------------


def buy_and_hold_prediction(n: int, target_kind: TargetKind = "regressor") -> np.ndarray:
    """A prediction that buys at the first bar and never sells (1.0 is up for both kinds)."""
    return np.ones(n, dtype=np.float64)


def random_signal_bars(n: int, count: int, *, seed: int = 0, draw: int = 0) -> np.ndarray:
    """min(count, n) distinct bars of `n`, sorted, uniformly drawn: those ranked below
    `count` in the draw's random permutation (so one draw nests every count)."""
    return np.flatnonzero(_random_ranks(n, seed, draw) < count)


def _random_ranks(n: int, seed: int, draw: int) -> np.ndarray:
    permutation = np.random.default_rng([seed, draw]).permutation(n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[permutation] = np.arange(n)
    return ranks


def random_prediction(
    n: int, count: int, *, seed: int = 0, draw: int = 0, target_kind: TargetKind = "regressor"
) -> np.ndarray:
    """Buy, sell, buy, ... at `count` random bars, no signal elsewhere."""
    pred = np.full(n, np.nan)
    bars = random_signal_bars(n, count, seed=seed, draw=draw)
    pred[bars[0::2]] = 1.0
    pred[bars[1::2]] = 0.0 if target_kind == "classifier" else -1.0
    return pred


def baseline_grid(grid: SimGrid) -> SimGrid:
    """The grid's fills and costs with every filter off: what baselines run under."""
    off = {"thresholds": (0.0,), "zscore": (False,), "volnorm": (False,), "bot": (False,)}
    return replace(grid, regimes=(None,), **off)


def simulate_baselines(
    bars: pd.DataFrame, grid: SimGrid, *, n_signals: int, draw: int = 0
) -> dict[str, GridResult]:
    """Buy-and-hold and a random series of `n_signals` orders, run as predictors.

    Their rows go to the leaderboard under the model ids BUY_AND_HOLD and RANDOM.
    """
    n, base, kind = len(bars), baseline_grid(grid), grid.target_kind
    noise = random_prediction(n, n_signals, seed=grid.random_seed, draw=draw, target_kind=kind)
    return {
        BUY_AND_HOLD: simulate_grid(bars, buy_and_hold_prediction(n, kind), base),
        RANDOM: simulate_grid(bars, noise, base),
    }


def _baseline_params(params: SimParams) -> SimParams:
    return replace(params, threshold=0.0, zscore=False, volnorm=False, regime=None, bot=False)


# --- shared preparation --------------------------------------------------------------


def _bar_times(bars: pd.DataFrame) -> pd.DatetimeIndex:
    if "ts" in bars.columns:
        values = bars["ts"]
    elif isinstance(bars.index, pd.DatetimeIndex):
        values = bars.index
    else:
        raise InvalidSimulationInput("bars need a `ts` column or a DatetimeIndex")
    ts = pd.DatetimeIndex(values)
    ts = (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("ns")
    steps = np.diff(ts.asi8)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise InvalidSimulationInput(f"bar times must increase strictly: row {row} ({ts[row]})")
    return ts


def _per_bar(values: object, n: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise InvalidSimulationInput(f"{what} has shape {array.shape}: one value per bar ({n},)")
    return array


@dataclass
class _Inputs:
    """Arrays every combination shares, the filters (computed once each) and buffers."""

    ts: pd.DatetimeIndex
    close: np.ndarray
    mid: np.ndarray
    pred: np.ndarray
    regimes: dict[str, np.ndarray]
    bot_proba: np.ndarray | None
    day_end: np.ndarray
    bar_week: np.ndarray
    hits: np.ndarray
    grid: SimGrid
    cache: dict[tuple[object, ...], object] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        bars: pd.DataFrame,
        pred: object,
        grid: SimGrid,
        regimes: dict[str, np.ndarray],
        bot_proba: object,
    ) -> _Inputs:
        ts = _bar_times(bars)
        n = len(ts)
        if n == 0:
            raise InvalidSimulationInput("no bars to simulate")
        nan = np.full(n, np.nan)
        column = {c: _per_bar(bars[c], n, c) if c in bars else nan for c in ("high", "low")}
        close = _per_bar(bars["close"], n, "close")
        bad = np.flatnonzero(~(np.isfinite(close) & (close > 0)))
        if bad.size:
            raise InvalidSimulationInput(f"close must be finite and > 0: row {bad[0]} is not")
        mid = (column["high"] + column["low"]) / 2.0
        pred_array = _per_bar(pred, n, "pred")
        if np.isinf(pred_array).any():
            raise InvalidSimulationInput("pred holds +-inf: use finite values or NaN (no signal)")
        codes = {name: np.asarray(v).astype(np.int64) for name, v in regimes.items()}
        for name, values in codes.items():
            _per_bar(values, n, f"regime {name!r}")
        local_day = ts.tz_convert(EXCHANGE_TZ).tz_localize(None).asi8 // _NS_PER_DAY
        monday = local_day - (local_day + 3) % 7  # 1970-01-01 was a Thursday
        return cls(
            ts=ts,
            close=close,
            mid=np.where(np.isfinite(mid) & (mid > 0), mid, close),
            pred=pred_array,
            regimes=codes,
            bot_proba=None if bot_proba is None else _per_bar(bot_proba, n, "bot_proba"),
            day_end=np.flatnonzero(np.diff(local_day, append=local_day[-1] + 1)),
            bar_week=np.unique(monday, return_inverse=True)[1].astype(np.int64),
            hits=metrics.direction_hits(
                pred_array, metrics.next_bar_moves(close), grid.target_kind
            ),
            grid=grid,
        )

    def _cached(self, key: tuple[object, ...], compute: object) -> np.ndarray:
        if key not in self.cache:
            self.cache[key] = compute()  # type: ignore[operator]
        return self.cache[key]  # type: ignore[return-value]

    def _filters(self, p: SimParams) -> tuple[np.ndarray, ...]:
        """(scale, outlier, regime_ok, bot_ok) for one combination, each computed once."""
        n = len(self.close)
        scale = self._cached(("ones",), lambda: np.ones(n))
        outlier = self._cached(("falses",), lambda: np.zeros(n, dtype=np.bool_))
        regime_ok = bot_ok = self._cached(("trues",), lambda: np.ones(n, dtype=np.bool_))
        if p.volnorm:
            windows = (p.vol_window, p.vol_median_window)
            scale = self._cached(("scale", *windows), lambda: _vol_scale(self.close, *windows))
        if p.zscore:
            z = (p.zscore_window, float(p.zscore_limit))
            outlier = self._cached(("z", *z), lambda: _zscore_outliers(self.pred, *z))
        if p.regime is not None:
            codes, allowed = self.regimes[p.regime.column], np.array(p.regime.allowed, np.int64)
            regime_ok = self._cached(("regime", p.regime), lambda: np.isin(codes, allowed))
        if p.bot:
            proba, limit = self.bot_proba, p.bot_threshold
            bot_ok = self._cached(("bot", limit), lambda: proba > limit)  # type: ignore[operator]
        return scale, outlier, regime_ok, bot_ok

    def _kernel(self, p: SimParams, pred: np.ndarray, record: bool) -> tuple:
        n, n_weeks = len(self.close), int(self.bar_week[-1]) + 1
        buffers = self._cached(
            ("buffers",),
            lambda: (
                np.empty(n, dtype=np.int8),
                np.empty(n // 2 + 1),
                np.zeros(n_weeks),
                np.empty(len(self.day_end)),
            ),
        )
        fills = self._cached(("fill_buffer",), lambda: np.empty((n, len(_FILL_COLUMNS))))
        curve = np.empty(n if record else 0)
        buffers[2][:] = 0.0
        prices, cost = self._cost(p)
        flags = (p.target_kind == "classifier", p.volnorm, p.zscore, p.bot, p.regime is not None)
        state = _simulate_kernel(
            pred,
            np.array(flags, dtype=np.bool_),
            float(p.threshold),
            *self._filters(p),
            self.close,
            prices,
            p.fill.delay_bars,
            cost,
            float(p.initial_cash),
            self.day_end,
            self.bar_week,
            *buffers,
            fills,
            curve,
        )
        return state, fills[: state[0]].copy() if record else fills[:0], curve

    def replay(self, p: SimParams, pred: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """(fill table, equity curve) of one combination."""
        _, fills, curve = self._kernel(p, self.pred if pred is None else pred, record=True)
        return fills, curve

    def _cost(self, p: SimParams) -> tuple[np.ndarray, np.ndarray]:
        """(fill prices, cost vector: fixed fee, fee rate, fractional flag) of a combination."""
        prices = self.mid if p.fill.price == "mid" else self.close
        return prices, np.array([p.fee_per_trade, p.fee_bps / 10_000.0, float(p.fractional)])

    def buy_hold_return(self, p: SimParams) -> float:
        """Return of the always-buy prediction under the combination's fill and costs."""
        base = _baseline_params(p)
        pred = buy_and_hold_prediction(len(self.close), p.target_kind)
        _, _, cash, shares, *_ = self._kernel(base, pred, record=False)[0]
        return (cash + shares * self.close[-1]) / p.initial_cash - 1.0

    def random_returns(self, p: SimParams, counts: np.ndarray) -> np.ndarray:
        """Mean return of the random baselines with each of `counts` orders (one pass/draw)."""
        draws, n = self.grid.random_draws, len(self.close)
        if draws == 0:
            return np.full(len(counts), np.nan)
        seed = self.grid.random_seed
        ranks = self._cached(
            ("ranks",), lambda: np.stack([_random_ranks(n, seed, d) for d in range(draws)])
        )
        order = np.argsort(-counts, kind="stable")
        finals = _random_baselines(
            counts[order], ranks, self.close, *self._cost(p), p.fill.delay_bars, p.initial_cash
        )
        out = np.empty(len(counts))
        out[order] = finals / p.initial_cash - 1.0
        return out

    def run(self, p: SimParams) -> SimRun:
        nf, nt, cash, shares, max_dd, exposed, fees = self._kernel(p, self.pred, False)[0]
        _, trade_returns, week_counts, eod = self.cache[("buffers",)]  # type: ignore[misc]
        scores = metrics.summary(eod, p.initial_cash, trade_returns[:nt], week_counts)
        final = cash + shares * self.close[-1]
        total = final / p.initial_cash - 1.0
        costs = (p.fill, p.fee_per_trade, p.fee_bps, p.fractional, p.initial_cash)
        buy_hold = self._cached(("buy_hold", *costs), lambda: self.buy_hold_return(p))
        sharpe, sortino, win_rate, factor, sqn, sqn_100, expectancy, weekly = scores
        result = {
            "final_equity": final,
            "total_return": total,
            "buy_hold_return": buy_hold,
            "excess_vs_buy_hold": total - buy_hold,
            "random_return": math.nan,  # set by add_random_baselines, all combinations at once
            "excess_vs_random": math.nan,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": max_dd,
            "exposure": exposed / len(self.close),
            "trades": nt,
            "fills": nf,
            "open_position": bool(shares > 0),
            "win_rate": win_rate,
            "profit_factor": factor,
            "sqn": sqn,
            "sqn_100": sqn_100,
            "expectancy": expectancy,
            "weekly_consistency": weekly,
            "hit_rate": self._cached(("hit_rate",), lambda: metrics.hit_rate(self.hits)),
            "fees_paid": fees,
        }
        return SimRun(params=p, metrics=result)

    def add_random_baselines(self, runs: list[SimRun]) -> None:
        """Fill in random_return and excess_vs_random, one batch per fill preset and costs."""
        groups: dict[tuple[object, ...], list[SimRun]] = {}
        for run in runs:
            p = run.params
            key = (p.fill, p.fee_per_trade, p.fee_bps, p.fractional, p.initial_cash)
            groups.setdefault(key, []).append(run)
        for group in groups.values():
            counts = np.array(sorted({run.metrics["fills"] for run in group}), dtype=np.int64)
            by_count = dict(
                zip(counts.tolist(), self.random_returns(group[0].params, counts), strict=True)
            )
            for run in group:
                rand = float(by_count[run.metrics["fills"]])
                run.metrics["random_return"] = rand
                run.metrics["excess_vs_random"] = run.metrics["total_return"] - rand


# --- numba kernels -------------------------------------------------------------------

_EPS = float(np.finfo(np.float64).eps)


@nb.njit(cache=True, nogil=True)
def _window_stats(pred: np.ndarray, i: int, window: int) -> tuple[int, float, float]:
    """(count, mean, std ddof=0) of the finite values among pred[i-window .. i-1], two-pass."""
    count, total = 0, 0.0
    for j in range(i - window, i):
        if np.isfinite(pred[j]):
            count += 1
            total += pred[j]
    mean = total / max(count, 1)
    squares = 0.0
    for j in range(i - window, i):
        if np.isfinite(pred[j]):
            squares += (pred[j] - mean) ** 2
    return count, mean, math.sqrt(squares / max(count, 1))


@nb.njit(cache=True, nogil=True)
def _zscore_outliers(pred: np.ndarray, window: int, limit: float) -> np.ndarray:
    """|z| > limit per the docstring. Running sums decide where their error bound allows;
    elsewhere (near the limit, tiny variance) the exact two-pass statistics decide."""
    n = pred.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    count, total, squares, biggest, since = 0, 0.0, 0.0, 0.0, window
    for i in range(window, n):
        if since >= window:  # re-anchor the running sums, bounding their drift
            count, total, squares, biggest, since = 0, 0.0, 0.0, 0.0, 0
            for j in range(i - window, i):
                if np.isfinite(pred[j]):
                    count, total, squares = count + 1, total + pred[j], squares + pred[j] ** 2
                    biggest = max(biggest, pred[j] ** 2)
        else:
            since += 1
            new, old = pred[i - 1], pred[i - window - 1]
            if np.isfinite(new):
                count, total, squares = count + 1, total + new, squares + new**2
                biggest = max(biggest, new**2)
            if np.isfinite(old):
                count, total, squares = count - 1, total - old, squares - old**2
        x = pred[i]
        if not np.isfinite(x) or count < 2:
            continue
        mean = total / count
        variance = squares / count - mean * mean
        if variance > 1e4 * 8.0 * window * window * _EPS * biggest:
            z = abs(x - mean) / math.sqrt(variance)
            if abs(z - limit) > 1e-3 * limit:
                out[i] = z > limit
                continue
        exact_count, mean, std = _window_stats(pred, i, window)
        if exact_count >= 2 and std > 1e-12 * abs(mean):
            out[i] = abs(x - mean) / std > limit
    return out


@nb.njit(cache=True, nogil=True)
def _rolling_return_std(close: np.ndarray, window: int) -> np.ndarray:
    n = close.shape[0]
    returns = np.full(n, np.nan)
    for j in range(1, n):
        returns[j] = close[j] / close[j - 1] - 1.0
    out = np.full(n, np.nan)
    for i in range(window, n):
        total = 0.0
        for j in range(i - window + 1, i + 1):
            total += returns[j]
        mean = total / window
        squares = 0.0
        for j in range(i - window + 1, i + 1):
            squares += (returns[j] - mean) ** 2
        out[i] = math.sqrt(squares / window)
    return out


@nb.njit(cache=True, nogil=True)
def _rolling_median(values: np.ndarray, start: int, window: int) -> np.ndarray:
    """Median of values[i-window+1 .. i] from i = start+window-1 (finite from `start` on)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    first, half = start + window - 1, window // 2
    if first >= n:
        return out
    ordered = np.sort(values[start : first + 1])
    for i in range(first, n):
        if i > first:  # swap the leaving value for the new one, keeping the order
            new = values[i]
            k = np.searchsorted(ordered, values[i - window])
            t = np.searchsorted(ordered, new)
            if t > k:
                for j in range(k, t - 1):
                    ordered[j] = ordered[j + 1]
                ordered[t - 1] = new
            else:
                for j in range(k - t):
                    ordered[k - j] = ordered[k - j - 1]
                ordered[t] = new
        odd = window % 2 == 1
        out[i] = ordered[half] if odd else (ordered[half - 1] + ordered[half]) / 2.0
    return out


def _vol_scale(close: np.ndarray, window: int, median_window: int) -> np.ndarray:
    vol = _rolling_return_std(close, window)
    med = _rolling_median(vol, window, median_window)
    ok = np.isfinite(vol) & np.isfinite(med) & (med > 0)
    return np.where(ok, vol / np.where(ok, med, 1.0), 1.0)


@nb.njit(cache=True, nogil=True, inline="always")
def _fill(side, price, cash, shares, cost):
    """(filled, cash, shares, fee) after one order; cost = (fixed fee, fee rate, fractional)."""
    if side > 0:
        budget = cash - cost[0]
        if budget <= 0.0:
            return False, cash, shares, 0.0
        qty = budget / (price * (1.0 + cost[1]))
        if cost[2] == 0.0:
            qty = np.floor(qty)
        if qty <= 0.0:
            return False, cash, shares, 0.0
        notional = qty * price
        fee = cost[0] + notional * cost[1]
        return True, cash - notional - fee, qty, fee
    if shares <= 0.0:
        return False, cash, shares, 0.0
    notional = shares * price
    fee = cost[0] + notional * cost[1]
    return True, cash + notional - fee, 0.0, fee


@nb.njit(cache=True, nogil=True)
def _apply(s, bar, side, price, cash, shares, nf, nt, entry, fees, cost, bar_week, out):
    """Fill the order of bar `s` at `bar`: the new state, and whether it was a cancelled buy."""
    fills, trade_returns, week_counts = out
    sold = shares
    filled, cash, shares, fee = _fill(side, price, cash, shares, cost)
    if not filled:
        return cash, shares, nf, nt, entry, fees, side > 0
    fills[nf, 0], fills[nf, 1], fills[nf, 2], fills[nf, 3] = s, bar, side, price
    fills[nf, 4], fills[nf, 5], fills[nf, 6] = shares if side > 0 else sold, fee, cash
    if side > 0:
        entry = shares * price + fee
    else:
        trade_returns[nt] = (sold * price - fee) / entry - 1.0
        week_counts[bar_week[bar]] += 1.0
        nt += 1
    return cash, shares, nf + 1, nt, entry, fees + fee, False


@nb.njit(cache=True, nogil=True)
def _simulate_kernel(
    pred, flags, threshold, scale, outlier, regime_ok, bot_ok, close, fill_px, delay,
    cost, cash0, day_end, bar_week, orders, trade_returns, week_counts, eod, fills, curve,
):  # fmt: skip
    """One combination bar by bar. flags: classifier, volnorm, zscore, bot, regime. Returns
    (fills, trades, cash, shares, max drawdown, bars exposed, fees)."""
    classifier, use_vol, use_z, use_bot, use_regime = (
        flags[0],
        flags[1],
        flags[2],
        flags[3],
        flags[4],
    )
    n = close.shape[0]
    out = (fills, trade_returns, week_counts)
    cash, shares, nf, nt, entry, fees = cash0, 0.0, 0, 0, 0.0, 0.0
    long_intent, last_order = False, -1
    for j in range(n):
        if delay > 0 and j >= delay and orders[j - delay] != 0:
            s = j - delay
            cash, shares, nf, nt, entry, fees, cancelled = _apply(
                s, j, orders[s], fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
            )
            if cancelled and last_order == s:
                long_intent = False
        # only the signal that can change the decision state is evaluated
        p, side = pred[j], 0
        if long_intent:
            if use_regime and not regime_ok[j]:
                side = -1
            elif p == 0.0 if classifier else p <= -(threshold * scale[j] if use_vol else threshold):
                side = 0 if use_z and outlier[j] else -1
        elif p == 1.0 if classifier else p > (threshold * scale[j] if use_vol else threshold):
            blocked = (use_z and outlier[j]) or (use_bot and not bot_ok[j])
            side = 0 if blocked or (use_regime and not regime_ok[j]) else 1
        orders[j] = side
        if side == 0:
            continue
        long_intent, last_order = side > 0, j
        if delay == 0:
            cash, shares, nf, nt, entry, fees, cancelled = _apply(
                j, j, side, fill_px[j], cash, shares, nf, nt, entry, fees, cost, bar_week, out
            )
            if cancelled:
                long_intent = False
    for s in range(max(n - delay, 0) if delay > 0 else n, n):  # orders due past the end
        if orders[s] != 0:
            cash, shares, nf, nt, entry, fees, _ = _apply(
                s, n - 1, orders[s], close[n - 1], cash, shares, nf, nt, entry, fees, cost,
                bar_week, out,
            )  # fmt: skip
    max_dd, exposed = _equity_path(fills, nf, close, cash0, day_end, eod, curve)
    return nf, nt, cash, shares, max_dd, exposed, fees


@nb.njit(cache=True, nogil=True, inline="always")
def _drawdown_floor(peak: float, max_dd: float) -> float:
    """Equity below which a new drawdown may exceed max_dd (generous; exact test follows)."""
    return peak * (1.0 - max_dd) * (1.0 + 1e-9) if max_dd < 0.5 else np.inf


@nb.njit(cache=True, nogil=True)
def _equity_path(fills, nf, close, cash0, day_end, eod, curve):
    """Walk the bar-close equity between fills: (max drawdown, bars exposed); fills the
    end-of-day equity and, when `curve` has room, the whole curve."""
    n, record = close.shape[0], curve.shape[0] > 0
    peak, max_dd, floor, exposed, day = cash0, 0.0, _drawdown_floor(cash0, 0.0), 0, 0
    cash, shares = cash0, 0.0
    for segment in range(nf + 1):
        # bars [start, stop) close with the state after fill `segment - 1`
        start = 0 if segment == 0 else int(fills[segment - 1, 1])
        stop = n if segment == nf else int(fills[segment, 1])
        if segment > 0:
            cash = fills[segment - 1, 6]
            shares = fills[segment - 1, 4] if fills[segment - 1, 2] > 0 else 0.0
        if stop <= start:
            continue
        if shares > 0.0:
            exposed += stop - start
            for j in range(start, stop):
                equity = cash + shares * close[j]
                if equity > peak:
                    peak, floor = equity, _drawdown_floor(equity, max_dd)
                elif equity < floor:  # a cheap, slightly generous test before the exact one
                    drawdown = 1.0 - equity / peak
                    if drawdown > max_dd:
                        max_dd, floor = drawdown, _drawdown_floor(peak, drawdown)
        elif cash > peak:
            peak, floor = cash, _drawdown_floor(cash, max_dd)
        elif cash < floor:
            drawdown = 1.0 - cash / peak
            if drawdown > max_dd:
                max_dd, floor = drawdown, _drawdown_floor(peak, drawdown)
        while day < day_end.shape[0] and day_end[day] < stop:
            eod[day] = cash + shares * close[day_end[day]]
            day += 1
        if record:
            for j in range(start, stop):
                curve[j] = cash + shares * close[j]
    return max_dd, exposed


@nb.njit(cache=True, nogil=True)
def _random_baselines(counts, ranks, close, fill_px, cost, delay, cash0):
    """Mean final equity, per count (sorted descending), of alternating buy/sell orders at
    the bars ranked below the count, over every draw (row of `ranks`); one scan per draw."""
    n, k = close.shape[0], counts.shape[0]
    total = np.zeros(k)
    for draw in range(ranks.shape[0]):
        cash, shares, done = np.full(k, cash0), np.zeros(k), np.zeros(k, dtype=np.int64)
        for i in range(n):
            rank, members = ranks[draw, i], 0
            while members < k and counts[members] > rank:
                members += 1
            if members == 0:
                continue
            due = i + delay
            price = fill_px[due] if due < n else close[n - 1]
            for c in range(members):
                side = 1 if done[c] % 2 == 0 else -1
                _, cash[c], shares[c], _ = _fill(side, price, cash[c], shares[c], cost)
                done[c] += 1
        total += cash + shares * close[n - 1]
    return total / ranks.shape[0]
