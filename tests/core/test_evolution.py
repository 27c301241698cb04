"""The evolution's rules: Deflated Sharpe against independent references, pruning,
crossover, criteria, proposals, the Pareto front and every stopping condition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stock_assets.core import evolution as evo


def reference_dsr(sr, n, skew, kurt, trials, var):
    """Bailey and Lopez de Prado (2014), eqs. 2 and 6, written out with scipy."""
    gamma = 0.5772156649015329
    sr0 = math.sqrt(var) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / trials)
        + gamma * stats.norm.ppf(1 - 1 / (trials * math.e))
    )
    z = (sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return stats.norm.cdf(z), sr0


def test_the_papers_example_matches_the_formula_written_out():
    # Bailey and Lopez de Prado's setting: 100 trials, annualized SR variance 1/2, best
    # annualized SR 2.5 over 1250 daily observations, skew -3, kurtosis 10 (per day below).
    per_day = math.sqrt(250)
    sr, var = 2.5 / per_day, 0.5 / 250
    dsr = evo.deflated_sharpe(sr, 1250, -3.0, 10.0, 100, var)
    expected, sr0 = reference_dsr(sr, 1250, -3.0, 10.0, 100, var)
    assert evo.expected_max_sharpe(100, var) == pytest.approx(sr0, rel=1e-12)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)  # the paper's SR0, per day
    assert dsr == pytest.approx(expected, rel=1e-9)
    assert dsr == pytest.approx(0.9004, abs=1e-4)  # the paper's DSR


def test_the_expected_maximum_matches_a_monte_carlo_of_unskilled_trials():
    rng = np.random.default_rng(0)
    for trials in (10, 100, 1000):
        maxima = rng.normal(0.0, 0.3, size=(4000, trials)).max(axis=1)
        assert evo.expected_max_sharpe(trials, 0.09) == pytest.approx(maxima.mean(), rel=0.03)


@settings(max_examples=60, deadline=None)
@given(
    sr=st.floats(0.01, 0.5),
    trials=st.integers(1, 10_000),
    var=st.floats(1e-6, 0.05),
    n=st.integers(20, 5000),
)
def test_more_trials_never_raise_the_deflated_sharpe(sr, trials, var, n):
    one = evo.deflated_sharpe(sr, n, 0.0, 3.0, trials, var)
    more = evo.deflated_sharpe(sr, n, 0.0, 3.0, trials * 10, var)
    assert 0.0 <= more <= one <= 1.0


def test_one_trial_is_the_probabilistic_sharpe_against_zero():
    sr, n = 0.1, 250
    expected = stats.norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + 2 / 4 * sr**2))
    assert evo.deflated_sharpe(sr, n, 0.0, 3.0, 1, 0.01) == pytest.approx(expected)
    assert math.isnan(evo.deflated_sharpe(sr, 1, 0.0, 3.0, 10, 0.01))


def test_daily_moments_match_scipy():
    r = np.random.default_rng(1).standard_t(5, size=300) * 0.01 + 0.001
    m = evo.daily_moments(np.append(r, np.nan))
    assert m.days == 300
    assert m.sr == pytest.approx(r.mean() / r.std(ddof=1))
    assert m.skew == pytest.approx(stats.skew(r))
    assert m.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False))


def test_pruning_removes_what_does_not_help_out_of_sample_and_says_why():
    importance = [
        {"feature": "rsi_14", "permutation": 0.002, "shap_mean_abs": 0.1},
        {"feature": "ibs", "permutation": 0.0, "shap_mean_abs": 0.3},
        {"feature": "stoch_k", "permutation": -1e-4, "shap_mean_abs": 0.2},
        {"feature": "bb_width", "permutation": None, "shap_mean_abs": 0.0},
        {"feature": "time_sin", "permutation": float("nan"), "shap_mean_abs": 0.5},
    ]
    names = ["rsi_14", "ibs", "stoch_k", "bb_width", "time_sin", "unknown"]
    result = evo.prune(names, importance)
    assert result.kept == ["rsi_14", "time_sin", "unknown"]
    assert result.pruned == {
        "ibs": "permutation importance 0 <= 0 (out of sample)",
        "stoch_k": "permutation importance -0.0001 <= 0 (out of sample)",
        "bb_width": "mean |SHAP| 0: never used",
    }


def test_crossover_keeps_the_shared_features_and_blends_the_rest():
    first, second = ["a", "b", "c", "d"], ["c", "d", "e", "f"]
    child = evo.crossover(first, second, seed=3)
    assert {"c", "d"} <= set(child) <= set(first) | set(second)
    assert child == sorted(child) == evo.crossover(first, second, seed=3)
    children = {tuple(evo.crossover(first, second, seed=s)) for s in range(20)}
    assert len(children) > 1


def test_criteria_name_every_miss_and_refuse_inverted_ranges():
    criteria = evo.Criteria()
    row = {"sqn": 2.5, "profit_factor": 5.0, "trades": 150, "weekly_consistency": 0.7}
    assert criteria.failures(row) == [
        "sqn 2.5 not in [3, 5]",
        "profit factor 5 not in [2, 4]",
        "trades 150 not in [200, 10000]",
        "weekly consistency 0.7 >= 0.5",
    ]
    good = {"sqn": 3.5, "profit_factor": 2.5, "trades": 500, "weekly_consistency": 0.3}
    assert criteria.failures(good) == []
    assert criteria.baseline_failures({"excess_vs_buy_hold": 0.01, "excess_vs_random": -0.02}) == [
        "does not beat random (excess -0.02)"
    ]
    for bad in ({"sqn_min": 5, "sqn_max": 3}, {"trades_min": 0}, {"dsr_min": 1.0}):
        with pytest.raises(evo.EvolutionError):
            evo.Criteria(**bad)


def test_judging_goes_criteria_then_baselines_then_deflated_sharpe():
    criteria = evo.Criteria()
    row = {"sqn": 3.5, "profit_factor": 2.5, "trades": 500, "weekly_consistency": 0.3,
           "excess_vs_buy_hold": 0.02, "excess_vs_random": 0.03}  # fmt: skip
    strong = evo.Moments(sr=0.3, skew=0.0, kurtosis=3.0, days=200)
    assert evo.judge(row, criteria, strong, 100, 0.001).promoted
    weak = evo.Moments(sr=0.05, skew=0.0, kurtosis=3.0, days=200)
    verdict = evo.judge(row, criteria, weak, 1000, 0.01)
    assert not verdict.promoted and verdict.reason.startswith("deflated sharpe: ")
    assert "over 1000 trials" in verdict.reason
    losing = {**row, "excess_vs_buy_hold": -0.01}
    assert evo.judge(losing, criteria, strong, 1, 0.0).reason.startswith("baselines: ")
    assert evo.judge({**row, "sqn": 1.0}, criteria, strong, 1, 0.0).reason.startswith("criteria:")
    assert evo.judge(None, criteria, None, 1, 0.0).reason == "criteria: no simulation"


def test_the_best_row_prefers_rows_that_pass():
    criteria = evo.Criteria()
    passing = {"sqn": 3.2, "profit_factor": 2.5, "trades": 500, "weekly_consistency": 0.3,
               "excess_vs_buy_hold": 0.1, "excess_vs_random": 0.1}  # fmt: skip
    too_good = {**passing, "sqn": 9.0}
    nan = {**passing, "sqn": float("nan")}
    assert evo.best_row([too_good, passing, nan], criteria) is passing
    assert evo.best_row([too_good, nan], criteria) is too_good
    lucky = {**passing, "sqn": 8.0, "trades": 4}
    busy = {**passing, "sqn": 1.1, "profit_factor": 1.2}
    assert evo.best_row([lucky, busy], criteria) is busy
    assert evo.best_row([lucky], criteria) is lucky
    assert evo.best_row([nan], criteria) is None


@pytest.mark.parametrize(
    ("generation", "promoted", "pruning", "expected"),
    [
        (0, True, evo.Pruning(["a"], {"b": "x"}), "promoted"),
        (3, False, evo.Pruning(["a"], {"b": "x"}), "max_generations"),
        (0, False, evo.Pruning([], {"a": "x"}), "all_pruned"),
        (0, False, evo.Pruning(["a", "b"], {}), "no_pruning"),
        (0, False, evo.Pruning(["a"], {"b": "x"}), None),
    ],
)
def test_every_stopping_condition(generation, promoted, pruning, expected):
    assert evo.stop_reason(generation, 4, promoted, pruning) == expected


@pytest.mark.parametrize("sampler", evo.SAMPLERS)
def test_proposals_are_reproducible_and_inside_the_space(sampler):
    space = evo.search_space("xgboost_regressor")
    history = [
        evo.Trial(params, (float(i), 1.0 + i / 10, -0.1))
        for i, params in enumerate(evo.propose_params("xgboost_regressor", [], 6, "random", 1))
    ]
    first = evo.propose_params("xgboost_regressor", history, 5, sampler, seed=42)
    assert first == evo.propose_params("xgboost_regressor", history, 5, sampler, seed=42)
    assert len(first) == 5 and len({str(p) for p in first}) > 1
    for params in first:
        assert set(params) == set(space)
        for name, values in space.items():
            if isinstance(values, evo.Uniform):
                assert values.low <= params[name] <= values.high
            else:
                assert params[name] in values


def test_a_trial_outside_the_space_is_ignored_and_linear_regression_has_nothing_to_tune():
    foreign = [evo.Trial({"alpha": 0.123}, (1.0, 1.0, 0.0))]
    assert len(evo.propose_params("ridge_regression", foreign, 3, "tpe", 0)) == 3
    assert evo.propose_params("linear_regression", [], 2, "random", 0) == [{}, {}]
    with pytest.raises(evo.EvolutionError, match="choose one of"):
        evo.propose_params("ridge_regression", [], 1, "grid", 0)
    with pytest.raises(evo.EvolutionError, match="algorithm 'svm'"):
        evo.search_space("svm")


def test_every_algorithm_of_the_zoo_has_a_space_of_its_own_parameters():
    from stock_assets.core.training import ALGORITHMS, build_pipeline

    assert set(evo.SEARCH_SPACES) == set(ALGORITHMS)
    for name in ALGORITHMS:
        (params,) = evo.propose_params(name, [], 1, "random", 0)
        build_pipeline(["rsi_14"], name, params)  # the estimator accepts every parameter


def test_the_pareto_front():
    points = [(3.0, 2.0, -0.1), (2.0, 3.0, -0.1), (1.0, 1.0, -0.5), (3.0, 2.0, -0.2),
              (float("nan"), 1.0, 0.0)]  # fmt: skip
    assert evo.pareto_front(points) == [0, 1]
    assert evo.objectives({"sqn": 1.5, "profit_factor": float("inf"), "max_drawdown": 0.2}) == (
        1.5,
        evo.PROFIT_FACTOR_CAP,
        -0.2,
    )
