"""Running a simulation grid for one symbol and model over its stored features: the
`simulations` asset, the grid-search job and the CLI call this."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from stock_assets.core import bot as core_bot
from stock_assets.core import predictors
from stock_assets.core.regimes import REGIME_CODES
from stock_assets.core.sim_results import plot_equity, plot_hit_rate, sim_runs_frame
from stock_assets.core.simulation import (
    FILL_AT_CLOSE,
    FILL_REALISTIC,
    FillPreset,
    RegimeFilter,
    SimGrid,
    simulate_baselines,
    simulate_grid,
)
from stock_assets.resources.warehouse import WarehouseResource

SPLITS = ("all", "train", "test")
DEFAULT_FOLD = "fold_30_5"


class SimulationError(ValueError):
    """A simulation that cannot run as asked (no features, bad split, bad grid)."""


class GridSpec(dg.Config):
    """A simulation grid in plain values, as run config and the CLI carry it. The default
    is 4 thresholds x z-score on/off x volatility normalization on/off x 3 regime
    whitelists x 2 fill presets = 96 combinations."""

    models: list[str] = Field(
        default=list(predictors.PREDICTORS),
        description="Model ids whose predictions are simulated.",
    )
    thresholds: list[float] = Field(
        default=[0.0, 0.0005, 0.001, 0.002],
        description="Regressor thresholds t in log-return units: buy pred > t, sell pred <= -t.",
    )
    zscore: list[bool] = Field(
        default=[False, True], description="Outlier filter off/on (|z| > 3)."
    )
    volnorm: list[bool] = Field(
        default=[False, True], description="Volatility-normalized t off/on."
    )
    regimes: list[str] = Field(
        default=["", "regime_gmm=0", "regime_vix=0,1"],
        description="Regime whitelists, e.g. regime_gmm=0 (empty: no gating).",
    )
    bot: list[bool] = Field(default=[False], description="Bot gating off/on (needs split=test).")
    fill_delays: list[int] = Field(
        default=[0, 4], description="Fill delays in bars: 0 = signal close, k = bar k's midpoint."
    )
    fee_per_trade: float = Field(default=0.02, description="Dollars per fill.")
    fee_bps: float = Field(default=0.0, description="Basis points of notional per fill.")
    fractional: bool = Field(default=False, description="Fractional shares instead of whole.")
    split: str = Field(default="all", description="Rows simulated: all, or a fold's train/test.")
    fold: str = Field(default=DEFAULT_FOLD, description="The fold column that defines the split.")
    rank_by: str = Field(default="sqn", description="Metric that picks the plotted combination.")

    def build(self) -> SimGrid:
        return SimGrid(
            thresholds=tuple(self.thresholds),
            zscore=tuple(self.zscore),
            volnorm=tuple(self.volnorm),
            regimes=tuple(parse_regime(text) for text in self.regimes),
            bot=tuple(self.bot),
            fills=tuple(fill_preset(delay) for delay in self.fill_delays),
            fee_per_trade=self.fee_per_trade,
            fee_bps=self.fee_bps,
            fractional=self.fractional,
        )


def parse_regime(text: str) -> RegimeFilter | None:
    """`regime_gmm=0,1` -> RegimeFilter('regime_gmm', (0, 1)); empty -> no gating."""
    if not text.strip():
        return None
    column, _, codes = text.partition("=")
    column = column.strip()
    if column not in REGIME_CODES or not codes:
        raise SimulationError(
            f"regime filter {text!r}: use COLUMN=CODES with COLUMN one of "
            f"{', '.join(REGIME_CODES)}, e.g. regime_gmm=0"
        )
    try:
        allowed = tuple(sorted({int(code) for code in codes.split(",")}))
    except ValueError:
        raise SimulationError(f"regime filter {text!r}: codes are integers") from None
    unknown = [code for code in allowed if code not in REGIME_CODES[column]]
    if unknown:
        raise SimulationError(
            f"regime filter {text!r}: {column} has codes {list(REGIME_CODES[column])}"
        )
    return RegimeFilter(column, allowed)


def fill_preset(delay: int) -> FillPreset:
    """Delay 0 fills at the signal bar's close; k > 0 at bar k's midpoint (realistic)."""
    if delay < 0:
        raise SimulationError(f"fill delay {delay}: a number of bars >= 0")
    if delay == 0:
        return FILL_AT_CLOSE
    return FillPreset(delay, FILL_REALISTIC.price)


def load_features(
    warehouse: WarehouseResource,
    symbol: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """The stored feature rows of one symbol between start and end (all when None)."""
    days = [
        day
        for day in warehouse.lake.days("features", symbol)
        if (start is None or day >= start) and (end is None or day <= end)
    ]
    frame = warehouse.lake.read_days("features", symbol, days)
    if frame is None or frame.empty:
        raise SimulationError(
            f"no features stored for {symbol}: stock-assets features build {symbol} --start D"
        )
    return frame


@dataclass
class GridRun:
    """The sim_runs rows of one (symbol, model) grid and the plots of its best combination."""

    grid_id: str
    rows: pd.DataFrame
    best_combo: int
    plots: dict[str, bytes]

    def save_plots(self, home: Path) -> dict[str, Path]:
        """Write the PNGs under <home>/plots/<grid id>-<name>.png."""
        folder = home / "plots"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, png in self.plots.items():
            paths[name] = folder / f"{self.grid_id}-{name}.png"
            paths[name].write_bytes(png)
        return paths

    def metadata(self, home: Path) -> dict[str, dg.MetadataValue]:
        """Dagster metadata: the plots inline and as files, the top combinations."""
        paths = self.save_plots(home)
        model_rows = self.rows[self.rows["grid_id"] == self.grid_id]
        top = model_rows.sort_values("sqn", ascending=False).head(5)
        shown = ["combo", "threshold", "zscore", "volnorm", "regime_column", "regime_allowed",
                 "fill_delay", "trades", "total_return", "excess_vs_buy_hold", "sqn"]  # fmt: skip
        out: dict[str, dg.MetadataValue] = {
            "grid_id": dg.MetadataValue.text(self.grid_id),
            "combinations": dg.MetadataValue.int(len(model_rows)),
            "top_by_sqn": dg.MetadataValue.md(top[shown].to_markdown(index=False)),
        }
        for name, png in self.plots.items():
            encoded = base64.b64encode(png).decode()
            out[f"{name}_plot"] = dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})")
            out[f"{name}_png"] = dg.MetadataValue.path(str(paths[name]))
        return out


def grid_id(symbol: str, model_id: str, spec: GridSpec, frame: pd.DataFrame) -> str:
    """A stable id of one grid over one data window: re-running it replaces its rows."""
    key = json.dumps(
        [symbol, model_id, spec.model_dump(exclude={"models"}), str(frame["ts"].iloc[0]),
         str(frame["ts"].iloc[-1]), len(frame)], sort_keys=True,
    )  # fmt: skip
    slug = model_id.replace(":", "-")
    return f"{symbol}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def run_grid(frame: pd.DataFrame, symbol: str, model_id: str, spec: GridSpec) -> GridRun:
    """Simulate every combination for one model's predictions, plus buy-and-hold and
    random baselines, on the rows of `split` (a fold column's train/test label).

    With the bot in the grid, the bot is trained on the fold's train rows and the grid
    must run on the test rows, so every reported figure is out of sample.
    """
    split, fold, run_id = spec.split, spec.fold, grid_id(symbol, model_id, spec, frame)
    if split not in SPLITS:
        raise SimulationError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    grid = spec.build()
    pred = predictors.predict(model_id, frame)
    bot_proba = None
    if any(grid.bot):
        if split != "test":
            raise SimulationError("the bot is trained on the train split: simulate split=test")
        bot_proba = _bot_probability(frame, pred, fold)
    if split != "all":
        if fold not in frame:
            raise SimulationError(f"no fold column {fold} in the features of {symbol}")
        keep = (frame[fold] == split).to_numpy()
        frame, pred = frame.loc[keep].reset_index(drop=True), pred[keep]
        bot_proba = bot_proba[keep] if bot_proba is not None else None
    if len(frame) < 2:
        raise SimulationError(f"{symbol}: {len(frame)} rows in split {split}: nothing to simulate")
    regimes = {c: frame[c].to_numpy(dtype=np.int64) for c in REGIME_CODES if c in frame}
    result = simulate_grid(frame, pred, grid, regimes=regimes, bot_proba=bot_proba)
    table = result.table()
    signals = max(1, int(table["fills"].median()))
    parts = [sim_runs_frame(result, symbol=symbol, model_id=model_id, grid_id=run_id)]
    for baseline_id, baseline in simulate_baselines(frame, grid, n_signals=signals).items():
        baseline_grid = f"{run_id}-{baseline_id.split(':')[1]}"
        parts.append(
            sim_runs_frame(baseline, symbol=symbol, model_id=baseline_id, grid_id=baseline_grid)
        )
    best = result.best(spec.rank_by)
    title = f"{symbol} {model_id} (combo {best}, best by {spec.rank_by})"
    plots = {
        "equity": plot_equity(result.ts, result.equity(best).to_numpy(),
                              result.buy_hold_equity(best).to_numpy(), title=title),
        "hit_rate": plot_hit_rate(result.ts, result.rolling_hit_rate(grid.hit_window).to_numpy(),
                                  close=frame["close"].to_numpy(), title=title),
    }  # fmt: skip
    rows = pd.concat(parts, ignore_index=True)
    return GridRun(grid_id=run_id, rows=rows, best_combo=best, plots=plots)


def _bot_probability(frame: pd.DataFrame, pred: np.ndarray, fold: str) -> np.ndarray:
    if fold not in frame:
        raise SimulationError(f"the bot needs the fold column {fold} to find its train rows")
    close = frame["close"].to_numpy(dtype=np.float64)
    realized = np.append(np.log(close[1:] / close[:-1]), np.nan)  # the next bar's move
    features = frame[predictors.STATIONARY_FEATURES].astype(np.float64).fillna(0.0)
    train = (frame[fold] == "train").to_numpy()
    bot = core_bot.train_bot(features, pred, realized, train, target_kind="regressor")
    return core_bot.bot_probability(bot, features, pred)
