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

This module validates inputs and holds the public API; the engine is `sim_kernels` (shared
arrays, filters) and `sim_machine` (the fill state machine: the whole grid in one call, every
metric's inputs gathered in the same pass), the `sim_runs` table, leaderboard and plots
`sim_results`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from stock_assets.core import metrics
from stock_assets.core.calendar import EXCHANGE_TZ
from stock_assets.core.sim_kernels import FILL_COLUMNS, GridInputs, baseline_params, random_ranks
from stock_assets.core.sim_params import (  # noqa: F401  (re-exported: the engine's API)
    FILL_AT_CLOSE,
    FILL_REALISTIC,
    FillPreset,
    InvalidSimulationInput,
    RegimeFilter,
    SimGrid,
    SimParams,
    SimRun,
    TargetKind,
    TargetTransform,
)

BUY_AND_HOLD = "baseline:buy_and_hold"
RANDOM = "baseline:random"
_NS_PER_DAY = 86_400_000_000_000


@dataclass
class GridResult:
    """All combinations of one grid over one prediction series, in `combinations()` order.

    Fills, trades and equity curves are recomputed on demand for a chosen combination.
    """

    runs: list[SimRun]
    ts: pd.DatetimeIndex
    hits: np.ndarray = field(repr=False)
    _inputs: GridInputs = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Parameters and metrics, one row per combination."""
        rows = [{"combo": i, **r.params.as_row(), **r.metrics} for i, r in enumerate(self.runs)]
        return pd.DataFrame(rows)

    def best(self, metric: str) -> int:
        """Index of the best combination by `metric` (NaN never wins; all NaN: 0)."""
        values = self.table()[metric].astype(float)
        if values.isna().all():
            return 0
        return int(values.idxmin() if metric in metrics.LOWER_IS_BETTER else values.idxmax())

    def fills(self, combo: int) -> pd.DataFrame:
        """Every fill: signal bar, fill bar, side (+1 buy, -1 sell), price, shares, fee, cash."""
        table = self._inputs.replay(self.runs[combo].params)[0]
        frame = pd.DataFrame(table, columns=list(FILL_COLUMNS))
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
        params = baseline_params(self.runs[combo].params)
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
    inputs = _grid_inputs(bars, pred, grid, regimes or {}, bot_proba)
    scores = inputs.score(combos)
    runs = [SimRun(params=p, metrics=m) for p, m in zip(combos, scores, strict=True)]
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
    return np.flatnonzero(random_ranks(n, seed, draw) < count)


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


# --- input validation ----------------------------------------------------------------


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


def _grid_inputs(
    bars: pd.DataFrame,
    pred: object,
    grid: SimGrid,
    regimes: dict[str, np.ndarray],
    bot_proba: object,
) -> GridInputs:
    """Validate the bars and per-bar inputs into the arrays every combination shares."""
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
    return GridInputs(
        ts=ts,
        close=close,
        mid=np.where(np.isfinite(mid) & (mid > 0), mid, close),
        pred=pred_array,
        regimes=codes,
        bot_proba=None if bot_proba is None else _per_bar(bot_proba, n, "bot_proba"),
        day_end=np.flatnonzero(np.diff(local_day, append=local_day[-1] + 1)),
        bar_week=np.cumsum(np.diff(monday, prepend=monday[0]) != 0),  # bars are in time order
        hits=metrics.direction_hits(pred_array, metrics.next_bar_moves(close), grid.target_kind),
        grid=grid,
        buy_hold_pred=buy_and_hold_prediction(n, grid.target_kind),
    )
