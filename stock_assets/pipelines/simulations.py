"""Running a simulation grid for one symbol over its stored features: each model's
predictions from the model store, the whole grid, the buy-and-hold and random
baselines, and the plots of the best combination."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from stock_assets.core import bot as core_bot
from stock_assets.core import predictors
from stock_assets.core.errors import UsageError
from stock_assets.core.regimes import REGIME_CODES
from stock_assets.core.sim_results import plot_equity, plot_hit_rate, sim_runs_frame
from stock_assets.core.simulation import GridResult, simulate_baselines, simulate_grid
from stock_assets.pipelines.models import ModelStore
from stock_assets.pipelines.specs import GridSpec
from stock_assets.storage.warehouse import Warehouse


class SimulationError(UsageError):
    """A simulation that cannot run as asked (no features, no rows in the split)."""


def load_features(warehouse: Warehouse, symbol: str) -> pd.DataFrame:
    """Every stored feature row of one symbol."""
    frame = warehouse.read_features(symbol)
    if frame is None or frame.empty:
        raise SimulationError(
            f"no features stored for {symbol}: stock-assets features build {symbol} --start D"
        )
    return frame


@dataclass
class GridRun:
    """The sim_runs rows of one (symbol, model) grid and the plots of its best combination."""

    grid_id: str
    model_id: str
    rows: pd.DataFrame
    best_combo: int
    plots: dict[str, bytes]
    mlflow_run_id: str | None = None
    result: GridResult | None = field(default=None, repr=False)  # the curves, in memory

    @property
    def model_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["grid_id"] == self.grid_id]

    def save_plots(self, home: Path) -> dict[str, Path]:
        """Write the PNGs under <home>/plots/<grid id>-<name>.png."""
        folder = home / "plots"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, png in self.plots.items():
            paths[name] = folder / f"{self.grid_id}-{name}.png"
            paths[name].write_bytes(png)
        return paths


def grid_id(symbol: str, model_id: str, spec: GridSpec, frame: pd.DataFrame) -> str:
    """A stable id of one grid over one data window: re-running it replaces its rows."""
    key = json.dumps(
        [symbol, model_id, spec.model_dump(exclude={"models"}), str(frame["ts"].iloc[0]),
         str(frame["ts"].iloc[-1]), len(frame)], sort_keys=True,
    )  # fmt: skip
    slug = model_id.replace(":", "-")
    return f"{symbol}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def simulate_symbol(
    warehouse: Warehouse, models: ModelStore, symbol: str, spec: GridSpec
) -> list[GridRun]:
    """Run the grid for every model of `spec` (every current model of the symbol when it
    names none) and store the rows in `sim_runs`, replacing an earlier run of the same
    grid over the same data."""
    spec.build()  # a bad grid fails before any work
    frame = load_features(warehouse, symbol)
    runs = [
        run_grid(frame, symbol, models.predictor(symbol, model_id), spec)
        for model_id in spec.models or models.model_ids(symbol)
    ]
    if runs:
        warehouse.catalog.replace_sim_runs(pd.concat([r.rows for r in runs], ignore_index=True))
    return runs


def run_grid(
    frame: pd.DataFrame, symbol: str, predictor: predictors.Predictor, spec: GridSpec
) -> GridRun:
    """Simulate every combination for one model's predictions, plus buy-and-hold and
    random baselines, on the rows of `split` (a fold column's train/test label).

    With the bot in the grid, the bot is trained on the fold's train rows and the grid
    must run on the test rows, so every reported figure is out of sample.
    """
    model_id, split, fold = predictor.model_id, spec.split, spec.fold
    run_id = grid_id(symbol, model_id, spec, frame)
    grid = replace(spec.build(), target_kind=getattr(predictor, "target_kind", "regressor"))
    pred = predictor.predict(frame)
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
    model_rows = sim_runs_frame(result, symbol=symbol, model_id=model_id, grid_id=run_id)
    parts = [model_rows.assign(mlflow_run_id=getattr(predictor, "run_id", None))]
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
    return GridRun(grid_id=run_id, model_id=model_id, rows=rows, best_combo=best, plots=plots,
                   mlflow_run_id=getattr(predictor, "run_id", None), result=result)  # fmt: skip


def _bot_probability(frame: pd.DataFrame, pred: np.ndarray, fold: str) -> np.ndarray:
    if fold not in frame:
        raise SimulationError(f"the bot needs the fold column {fold} to find its train rows")
    close = frame["close"].to_numpy(dtype=np.float64)
    realized = np.append(np.log(close[1:] / close[:-1]), np.nan)  # the next bar's move
    features = frame[predictors.STATIONARY_FEATURES].astype(np.float64).fillna(0.0)
    train = (frame[fold] == "train").to_numpy()
    bot = core_bot.train_bot(features, pred, realized, train, target_kind="regressor")
    return core_bot.bot_probability(bot, features, pred)
