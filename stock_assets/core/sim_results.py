"""Simulation results kept and shown: the `sim_runs` table (one row per simulated
combination), the leaderboard query over it, and the equity and hit-rate plots.

What each metric column means is in `stock_assets.core.metrics`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stock_assets.core.errors import UsageError
from stock_assets.core.metrics import LOWER_IS_BETTER, METRIC_NAMES
from stock_assets.core.tables import SIM_RUNS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from stock_assets.core.simulation import GridResult

# --- sim_runs: one row per simulated combination -------------------------------------

SIM_RUNS_COLUMNS = tuple(SIM_RUNS.column_names)


class UnknownMetric(UsageError):
    """A leaderboard request naming no rankable metric, or asking for no rows."""


_RANKABLE = frozenset(METRIC_NAMES) - {"open_position"}


def sim_runs_frame(
    result: GridResult,
    *,
    symbol: str,
    model_id: str,
    grid_id: str,
    created_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One `sim_runs` row per combination of a grid result, columns in SIM_RUNS_COLUMNS order.

    `run_id` is `<grid_id>-<combo>` (5 digits); NaN metrics load into DuckDB as NULL.
    """
    created = pd.Timestamp.now(tz="UTC") if created_at is None else pd.Timestamp(created_at)
    ts = result.ts
    rows = []
    for combo, run in enumerate(result.runs):
        rows.append(
            {
                "run_id": f"{grid_id}-{combo:05d}",
                "grid_id": grid_id,
                "combo": combo,
                "symbol": symbol,
                "model_id": model_id,
                "created_at": created,
                "bars": len(ts),
                "start_ts": ts[0] if len(ts) else pd.NaT,
                "end_ts": ts[-1] if len(ts) else pd.NaT,
                **run.params.as_row(),
                **run.metrics,
            }
        )
    frame = pd.DataFrame(rows, columns=list(SIM_RUNS_COLUMNS))
    return frame.astype({"trades": "Int64", "fills": "Int64", "combo": "int32"})


def rankable_metrics() -> list[str]:
    """The metrics a leaderboard can rank by, sorted."""
    return sorted(_RANKABLE)


def leaderboard_sql(
    metric: str,
    symbol: str | None = None,
    limit: int = 20,
    *,
    min_trades: int = 0,
    ascending: bool | None = None,
) -> tuple[str, list[object]]:
    """A parameterized query over `sim_runs`, best first by `metric`: (sql, parameters).

    Rows whose metric is NULL or NaN are left out. Lower is better for max_drawdown and
    weekly_consistency unless `ascending` says otherwise.
    """
    if metric not in _RANKABLE:
        raise UnknownMetric(f"{metric!r} is not a rankable metric: use one of {sorted(_RANKABLE)}")
    if limit < 1:
        raise UnknownMetric(f"limit {limit!r} must be >= 1")
    order = "ASC" if (metric in LOWER_IS_BETTER if ascending is None else ascending) else "DESC"
    where = [f"{metric} IS NOT NULL", f"NOT isnan(CAST({metric} AS DOUBLE))", "trades >= ?"]
    params: list[object] = [int(min_trades)]
    if symbol is not None:
        where.append("symbol = ?")
        params.append(symbol)
    sql = (
        f"SELECT * FROM sim_runs WHERE {' AND '.join(where)} "
        f"ORDER BY {metric} {order}, created_at DESC, run_id LIMIT ?"
    )
    params.append(int(limit))
    return sql, params


# --- plots ---------------------------------------------------------------------------


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="tight")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _bar_axis(axes: Axes, ts: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """Bars evenly spaced (no empty nights and weekends), labelled with their ET dates."""
    days = pd.DatetimeIndex(ts).tz_convert("America/New_York").normalize()
    x = np.arange(len(days))
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else x
    step = max(1, len(starts) // 8)
    axes.set_xticks(x[starts[::step]], [d.strftime("%Y-%m-%d") for d in days[starts[::step]]])
    axes.set_xlim(-0.5, max(len(x) - 0.5, 0.5))
    return x


def plot_equity(
    ts: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    equity: np.ndarray,
    buy_hold_equity: np.ndarray,
    *,
    title: str = "Equity vs buy and hold",
) -> bytes:
    """PNG of the strategy's bar-close equity against buy-and-hold's."""
    figure, axes = _figure()
    x = _bar_axis(axes, ts)
    axes.plot(x, equity, label="strategy", linewidth=1.0)
    axes.plot(x, buy_hold_equity, label="buy and hold", linewidth=1.0)
    axes.set_title(title)
    axes.set_ylabel("equity ($)")
    axes.legend(loc="best")
    return _png(figure)


def plot_hit_rate(
    ts: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    rolling_hits: np.ndarray,
    *,
    close: np.ndarray | None = None,
    title: str = "Rolling directional hit rate",
) -> bytes:
    """PNG of the rolling hit rate (0.5 marked), the close on a second axis if given."""
    figure, axes = _figure()
    x = _bar_axis(axes, ts)
    axes.plot(x, rolling_hits, color="tab:green", linewidth=0.8, label="hit rate")
    axes.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("hit rate")
    axes.set_title(title)
    if close is not None:
        price_axes = axes.twinx()
        price_axes.plot(x, close, color="tab:blue", linewidth=0.6, alpha=0.5)
        price_axes.set_ylabel("close")
    return _png(figure)
