"""Metric definitions against hand-computed values, the sim_runs schema and the plots."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from stock_assets.core import metrics, sim_results
from stock_assets.core import simulation as sim
from stock_assets.core.tables import SIM_RUNS

SQRT_252 = math.sqrt(252)


def test_sqn_is_sqrt_n_times_mean_over_sample_std():
    # mean 1/120; squared deviations 1/360000 + 1/5625 + 49/360000 = 19/60000; var = 19/120000
    expected = math.sqrt(3) * (1 / 120) / math.sqrt(19 / 120000)
    assert metrics.sqn(np.array([0.01, -0.005, 0.02])) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.1470786693528, rel=1e-12)


def test_sqn_100_caps_the_trade_count_at_100():
    returns = np.tile([0.01, -0.005, 0.02], 100)  # 300 trades
    plain, capped = metrics.sqn(returns), metrics.sqn(returns, cap=100)
    assert capped == pytest.approx(plain * math.sqrt(100 / 300), rel=1e-12)


def test_sqn_is_nan_below_two_trades_or_with_identical_returns():
    assert math.isnan(metrics.sqn(np.array([0.01])))
    assert math.isnan(metrics.sqn(np.array([0.1, 0.1, 0.1])))  # 0.1*3/3 is not exactly 0.1


def test_profit_factor_is_gains_over_losses():
    assert metrics.profit_factor(np.array([0.01, -0.005, 0.02])) == pytest.approx(6.0)


def test_profit_factor_with_no_losing_trade_is_infinite():
    assert metrics.profit_factor(np.array([0.01, 0.02, 0.0])) == math.inf


def test_profit_factor_without_gains_or_losses_is_nan():
    assert math.isnan(metrics.profit_factor(np.array([])))
    assert math.isnan(metrics.profit_factor(np.array([0.0, 0.0])))
    assert metrics.profit_factor(np.array([-0.01])) == 0.0


def test_trade_metrics_win_rate_and_expectancy():
    got = metrics.trade_metrics(np.array([0.01, -0.005, 0.02, 0.0]))
    assert got["trades"] == 4
    assert got["win_rate"] == 0.5  # a zero return is no win
    assert got["expectancy"] == pytest.approx(0.025 / 4)
    empty = metrics.trade_metrics(np.array([]))
    assert (
        empty["trades"] == 0 and math.isnan(empty["win_rate"]) and math.isnan(empty["expectancy"])
    )


def test_daily_returns_start_from_the_initial_cash():
    eod = np.array([101.0, 101.0, 100.495, 100.495])
    np.testing.assert_allclose(metrics.daily_returns(eod, 100.0), [0.01, 0.0, -0.005, 0.0])


def test_sharpe_counts_flat_days_as_zero_returns():
    daily = np.array([0.01, 0.0, -0.005, 0.0])
    # mean 0.00125; squared deviations sum 1.1875e-4; sample var 3.958333e-5
    expected = 0.00125 / math.sqrt(1.1875e-4 / 3) * SQRT_252
    assert metrics.sharpe_ratio(daily) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(3.153944898227, rel=1e-12)


def test_sharpe_of_all_flat_days_is_zero_and_of_one_day_nan():
    assert metrics.sharpe_ratio(np.zeros(5)) == 0.0
    assert math.isnan(metrics.sharpe_ratio(np.array([0.01])))


def test_sortino_uses_downside_deviation_over_all_days():
    daily = np.array([0.01, 0.0, -0.005, 0.0])
    # downside deviation sqrt(0.005^2 / 4) = 0.0025
    assert metrics.sortino_ratio(daily) == pytest.approx(0.00125 / 0.0025 * SQRT_252)
    assert metrics.sortino_ratio(np.array([0.01, 0.0])) == math.inf
    assert metrics.sortino_ratio(np.zeros(3)) == 0.0


def test_max_drawdown_takes_the_initial_cash_as_first_peak():
    assert metrics.max_drawdown(np.array([110.0, 99.0, 120.0, 90.0]), 100.0) == pytest.approx(0.25)
    assert metrics.max_drawdown(np.array([90.0, 95.0]), 100.0) == pytest.approx(0.10)
    assert metrics.max_drawdown(np.array([100.0, 101.0]), 100.0) == 0.0


def test_weekly_consistency_is_std_over_mean_of_trades_per_week():
    # counts 2, 0, 4: mean 2, population std sqrt(8/3)
    expected = math.sqrt(8 / 3) / 2
    assert metrics.weekly_consistency(np.array([2, 0, 4])) == pytest.approx(expected)
    assert metrics.weekly_consistency(np.array([3, 3])) == 0.0
    assert math.isnan(metrics.weekly_consistency(np.array([0, 0])))


def test_direction_hits_skip_flat_moves_and_missing_predictions():
    pred = np.array([0.5, -0.5, 0.0, np.nan, 0.2])
    moves = np.array([1.0, -1.0, 1.0, 1.0, 0.0])
    hits = metrics.direction_hits(pred, moves, "regressor")
    np.testing.assert_array_equal(hits, [1.0, 1.0, 0.0, np.nan, np.nan])
    assert metrics.hit_rate(hits) == pytest.approx(2 / 3)
    rolling = metrics.rolling_hit_rate(hits, window=2)
    np.testing.assert_array_equal(rolling, [1.0, 1.0, 0.5, 0.0, np.nan])


def test_classifier_hits_read_1_as_up_and_0_as_down():
    pred = np.array([1.0, 0.0, 1.0, 0.5])
    hits = metrics.direction_hits(pred, np.array([2.0, 3.0, -1.0, 1.0]), "classifier")
    np.testing.assert_array_equal(hits, [1.0, 0.0, 0.0, np.nan])


def test_next_bar_moves_end_with_nan():
    np.testing.assert_array_equal(
        metrics.next_bar_moves(np.array([1.0, 3.0, 2.0])), [2, -1, np.nan]
    )


# --- sim_runs and the leaderboard ----------------------------------------------------


def _grid_result() -> sim.GridResult:
    n = 600
    rng = np.random.default_rng(3)
    ts = pd.date_range("2024-03-04 14:30", periods=n, freq="min", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    bars = pd.DataFrame({"ts": ts, "high": close + 0.01, "low": close - 0.01, "close": close})
    pred = rng.normal(0, 0.001, n)
    grid = sim.SimGrid(thresholds=(0.0, 0.0005, 0.05), zscore=(False, True))
    return sim.simulate_grid(bars, pred, grid)


def test_sim_runs_frame_has_every_parameter_and_metric_as_a_column():
    result = _grid_result()
    frame = sim_results.sim_runs_frame(result, symbol="SPY", model_id="m1", grid_id="g1")
    assert tuple(frame.columns) == sim_results.SIM_RUNS_COLUMNS
    assert set(metrics.METRIC_NAMES) <= set(frame.columns)
    assert set(sim.SimParams().as_row()) <= set(frame.columns)
    assert len(frame) == 6 and frame["run_id"].is_unique
    assert frame.loc[0, "run_id"] == "g1-00000"


def test_sim_runs_rows_load_into_the_ddl_and_rank_by_the_chosen_metric():
    result = _grid_result()
    frame = sim_results.sim_runs_frame(result, symbol="SPY", model_id="m1", grid_id="g1")
    other = sim_results.sim_runs_frame(result, symbol="QQQ", model_id="m2", grid_id="g2")
    con = duckdb.connect()
    con.execute(SIM_RUNS.ddl())
    con.register("rows", pd.concat([frame, other]))
    con.execute("INSERT INTO sim_runs SELECT * FROM rows")
    sql, params = sim_results.leaderboard_sql("total_return", symbol="SPY", limit=4)
    board = con.execute(sql, params).df()
    assert len(board) == 4 and set(board["symbol"]) == {"SPY"}
    expected = frame.sort_values("total_return", ascending=False)["run_id"].head(4).tolist()
    assert board["run_id"].tolist() == expected
    sql, params = sim_results.leaderboard_sql("max_drawdown")
    drawdowns = con.execute(sql, params).df()["max_drawdown"].tolist()
    assert drawdowns == sorted(drawdowns)  # lower is better
    sql, params = sim_results.leaderboard_sql("sqn", min_trades=10**9)
    assert con.execute(sql, params).df().empty


def test_leaderboard_leaves_out_nan_metrics():
    result = _grid_result()
    frame = sim_results.sim_runs_frame(result, symbol="SPY", model_id="m1", grid_id="g1")
    con = duckdb.connect()
    con.execute(SIM_RUNS.ddl())
    con.register("rows", frame)
    con.execute("INSERT INTO sim_runs SELECT * FROM rows")
    sql, params = sim_results.leaderboard_sql("win_rate", limit=100)
    board = con.execute(sql, params).df()
    assert len(board) == int(frame["win_rate"].notna().sum())
    assert frame["win_rate"].isna().any()  # the 0.05 threshold never trades


def test_leaderboard_rejects_unknown_metrics():
    with pytest.raises(ValueError, match="rankable"):
        sim_results.leaderboard_sql("total_return; DROP TABLE sim_runs")
    with pytest.raises(ValueError, match="limit"):
        sim_results.leaderboard_sql("sharpe", limit=0)


def test_plots_are_png_bytes():
    result = _grid_result()
    png = b"\x89PNG\r\n\x1a\n"
    equity = sim_results.plot_equity(result.ts, result.equity(0), result.buy_hold_equity(0))
    hits = sim_results.plot_hit_rate(result.ts, result.rolling_hit_rate(100), close=None)
    assert equity.startswith(png) and hits.startswith(png)
    assert len(equity) > 5000
