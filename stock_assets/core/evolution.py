"""The evolution's rules, pure: search spaces, proposals, pruning, crossover, promotion
criteria, the Deflated Sharpe Ratio and the stopping conditions.

A generation proposes candidates (hyperparameters from an algorithm's search space, drawn by
Optuna's random, TPE or NSGA-II sampler from the trials so far; features inherited from the
previous generation's best model after pruning). A candidate is promoted when its best
simulation meets the criteria (the orchestrator notes' "Holy Grail": SQN 3-5, profit factor
2-4, 200-10,000 trades, weekly consistency < 0.5), beats buy-and-hold and the random
baseline, and passes the Deflated Sharpe Ratio test counting every trial of its lineage.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from stock_assets.core.errors import UsageError

MAX_GENERATIONS = 10
SAMPLERS = ("random", "tpe", "nsga2")
EULER_GAMMA = 0.5772156649015329
PROFIT_FACTOR_CAP = 100.0  # an objective must be finite: a run without a loss scores this


class EvolutionError(UsageError):
    """An evolution that cannot start as configured; the message names the setting."""


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


# Each algorithm's space: a list of choices or a Uniform range per parameter. XGBoost's is
# the orchestrator notes'; the others follow the same spirit around this project's defaults.
_BOOST_RATES = [0.01, 0.05, 0.1, 0.2]
_XGB = {
    "n_estimators": [100, 200, 300, 500],
    "max_depth": [3, 4, 5, 6, 8],
    "learning_rate": _BOOST_RATES,
    "subsample": Uniform(0.7, 1.0),
    "colsample_bytree": Uniform(0.7, 1.0),
    "reg_alpha": [0, 0.1, 1, 10],
    "reg_lambda": [1, 10, 50, 100],
}
_LGBM = {
    "n_estimators": [100, 200, 300, 500],
    "num_leaves": [15, 31, 63, 127],
    "learning_rate": _BOOST_RATES,
    "min_child_samples": [20, 50, 100, 200],
    "subsample": Uniform(0.7, 1.0),
    "colsample_bytree": Uniform(0.7, 1.0),
    "reg_alpha": [0, 0.1, 1, 10],
    "reg_lambda": [0, 1, 10, 100],
}
_FOREST = {
    "n_estimators": [25, 50, 100],
    "max_depth": [4, 6, 8, 12],
    "min_samples_leaf": [20, 50, 100, 200],
    "max_features": ["sqrt", 0.3, 0.5],
}
_HIST = {
    "max_iter": [50, 100, 200],
    "learning_rate": [0.03, 0.1, 0.2],
    "max_leaf_nodes": [15, 31, 63],
    "min_samples_leaf": [50, 100, 200],
    "l2_regularization": [0.0, 0.1, 1.0],
}
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "linear_regression": {},  # nothing to tune: its candidates differ by features only
    "ridge_regression": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]},
    "lasso_regression": {"alpha": [1e-5, 1e-4, 1e-3, 1e-2]},
    "elasticnet_regression": {
        "alpha": [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0],
        "l1_ratio": [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99],
    },
    "logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "random_forest_regressor": _FOREST,
    "random_forest_classifier": _FOREST,
    "gradient_boosting_regressor": _HIST,
    "gradient_boosting_classifier": _HIST,
    "xgboost_regressor": _XGB,
    "xgboost_classifier": _XGB,
    "lightgbm_regressor": _LGBM,
    "lightgbm_classifier": _LGBM,
}


def search_space(algorithm: str) -> dict[str, Any]:
    if algorithm not in SEARCH_SPACES:
        raise EvolutionError(f"algorithm {algorithm!r}: choose one of {', '.join(SEARCH_SPACES)}")
    return SEARCH_SPACES[algorithm]


def _distributions(space: Mapping[str, Any]) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {
        name: FloatDistribution(v.low, v.high)
        if isinstance(v, Uniform)
        else CategoricalDistribution(list(v))
        for name, v in space.items()
    }


@dataclass(frozen=True)
class Trial:
    """A trained candidate as the sampler sees it: its parameters and objectives (best SQN,
    profit factor, minus max drawdown); NaN objectives mark a candidate without trades."""

    params: dict[str, Any]
    objectives: tuple[float, float, float]


def objectives(row: Mapping[str, Any] | None) -> tuple[float, float, float]:
    """(sqn, profit factor capped, -max drawdown) of a simulation row; NaN without one."""
    if row is None:
        return (math.nan, math.nan, math.nan)
    factor = min(float(row["profit_factor"]), PROFIT_FACTOR_CAP)
    return (float(row["sqn"]), factor, -float(row["max_drawdown"]))


def propose_params(
    algorithm: str, history: Sequence[Trial], count: int, sampler: str, seed: int
) -> list[dict[str, Any]]:
    """`count` hyperparameter sets for the algorithm, by Optuna's `sampler` told the trials
    so far: random (independent draws, the notes' mutation), tpe (maximizes SQN) or nsga2
    (SQN x profit factor x drawdown). The same inputs give the same proposals."""
    import optuna

    if sampler not in SAMPLERS:
        raise EvolutionError(f"sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    space = search_space(algorithm)
    if not space:
        return [{} for _ in range(count)]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = _distributions(space)
    if sampler == "nsga2":
        chosen = optuna.samplers.NSGAIISampler(population_size=max(2, count), seed=seed)
        directions = ["maximize"] * 3
    elif sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed, n_startup_trials=count, constant_liar=True)
        directions = ["maximize"]
    else:
        chosen = optuna.samplers.RandomSampler(seed=seed)
        directions = ["maximize"]
    study = optuna.create_study(directions=directions, sampler=chosen)
    for trial in history:
        values = list(trial.objectives[: len(directions)])
        if not _inside(space, trial.params):
            continue  # a parent's parameters from another space (or an older one)
        params = {name: trial.params[name] for name in dists}
        if all(math.isfinite(v) for v in values):
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=dists, values=values)
            )
        else:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=dists, state=optuna.trial.TrialState.FAIL
                )
            )
    return [study.ask(dists).params for _ in range(count)]


def _inside(space: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    for name, values in space.items():
        if name not in params:
            return False
        value = params[name]
        if isinstance(values, Uniform):
            if not (isinstance(value, int | float) and values.low <= value <= values.high):
                return False
        elif value not in values or isinstance(value, bool) != isinstance(values[0], bool):
            return False
    return True


# --- pruning and crossover ------------------------------------------------------------------


@dataclass(frozen=True)
class Pruning:
    kept: list[str]
    pruned: dict[str, str]  # feature -> reason


def prune(features: Sequence[str], importance: Sequence[Mapping[str, Any]]) -> Pruning:
    """Remove the features whose importance is <= 0: the permutation importance measured
    out of sample (on test rows), or, where that is missing, the mean |SHAP|. A feature
    without any importance figure is kept."""
    by_name = {row["feature"]: row for row in importance}
    kept, pruned = [], {}
    for name in features:
        row = by_name.get(name, {})
        perm, shap = _number(row.get("permutation")), _number(row.get("shap_mean_abs"))
        if perm is not None and perm <= 0:
            pruned[name] = f"permutation importance {perm:.3g} <= 0 (out of sample)"
        elif perm is None and shap is not None and shap <= 0:
            pruned[name] = "mean |SHAP| 0: never used"
        else:
            kept.append(name)
    return Pruning(kept, pruned)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def crossover(first: Sequence[str], second: Sequence[str], seed: int) -> list[str]:
    """Blend two feature sets: every feature both hold, and each feature only one holds
    with probability 1/2 (drawn with `seed`); sorted."""
    rng = random.Random(seed)
    both = set(first) & set(second)
    either = sorted(set(first) ^ set(second))
    return sorted(both | {name for name in either if rng.random() < 0.5})


# --- promotion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criteria:
    """What a promoted simulation must show (defaults: the orchestrator notes' "Holy
    Grail"), the Deflated Sharpe probability it must reach, and the baselines it must
    beat."""

    sqn_min: float = 3.0
    sqn_max: float = 5.0
    profit_factor_min: float = 2.0
    profit_factor_max: float = 4.0
    trades_min: int = 200
    trades_max: int = 10_000
    weekly_consistency_max: float = 0.5
    dsr_min: float = 0.95
    beat_baselines: bool = True

    def __post_init__(self) -> None:
        for name in ("sqn", "profit_factor", "trades"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if not low <= high:
                raise EvolutionError(f"criteria: {name}_min {low} > {name}_max {high}")
        if self.trades_min < 1:
            raise EvolutionError(f"criteria: trades_min {self.trades_min} < 1")
        if self.weekly_consistency_max <= 0:
            raise EvolutionError("criteria: weekly_consistency_max must be > 0")
        if not 0.0 <= self.dsr_min < 1.0:
            raise EvolutionError(f"criteria: dsr_min {self.dsr_min} not in [0, 1)")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def failures(self, row: Mapping[str, Any]) -> list[str]:
        """What the row misses of the criteria (empty: it meets them all)."""
        out = []
        for name, label in (
            ("sqn", "sqn"),
            ("profit_factor", "profit factor"),
            ("trades", "trades"),
        ):
            value = _number(row.get(name))
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if value is None or not low <= value <= high:
                out.append(f"{label} {_fmt(row.get(name))} not in [{low:g}, {high:g}]")
        consistency = _number(row.get("weekly_consistency"))
        if consistency is None or consistency >= self.weekly_consistency_max:
            out.append(
                f"weekly consistency {_fmt(row.get('weekly_consistency'))} "
                f">= {self.weekly_consistency_max:g}"
            )
        return out

    def baseline_failures(self, row: Mapping[str, Any]) -> list[str]:
        if not self.beat_baselines:
            return []
        out = []
        for name, label in (("excess_vs_buy_hold", "buy-and-hold"), ("excess_vs_random", "random")):
            value = _number(row.get(name))
            if value is None or value <= 0:
                out.append(f"does not beat {label} (excess {_fmt(row.get(name))})")
        return out


def _fmt(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.4g}"


def expected_max_sharpe(trials: int, sr_variance: float) -> float:
    """E[max SR] of `trials` independent strategies without skill whose Sharpe ratios
    vary with `sr_variance` (Bailey and Lopez de Prado 2014, eq. 6):
    sqrt(V) ((1 - g) Z^-1(1 - 1/N) + g Z^-1(1 - 1/(N e))), g the Euler-Mascheroni constant."""
    from statistics import NormalDist

    if trials <= 1 or not sr_variance > 0:
        return 0.0
    z = NormalDist().inv_cdf
    n = float(trials)
    return math.sqrt(sr_variance) * (
        (1 - EULER_GAMMA) * z(1 - 1 / n) + EULER_GAMMA * z(1 - 1 / (n * math.e))
    )


def deflated_sharpe(
    sr: float, observations: int, skew: float, kurtosis: float, trials: int, sr_variance: float
) -> float:
    """The probability that the true Sharpe ratio exceeds what the best of `trials`
    unskilled strategies would show (Bailey and Lopez de Prado 2014, eq. 2 with SR* of
    eq. 6). `sr`, `sr_variance`: per observation (not annualized); `kurtosis`: Pearson's
    (3 for a normal distribution). NaN with under 2 observations."""
    from statistics import NormalDist

    if observations < 2 or not math.isfinite(sr):
        return math.nan
    sr0 = expected_max_sharpe(trials, sr_variance)
    spread = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    if not spread > 0:
        return math.nan
    return NormalDist().cdf((sr - sr0) * math.sqrt(observations - 1) / math.sqrt(spread))


@dataclass(frozen=True)
class Moments:
    """Per-day Sharpe ratio (mean / std, ddof=1), skewness, Pearson kurtosis, days."""

    sr: float
    skew: float
    kurtosis: float
    days: int


def daily_moments(daily_returns) -> Moments:
    """The moments of a series of daily returns (NaN dropped)."""
    import numpy as np

    r = np.asarray(daily_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2 or r.std(ddof=1) == 0:
        return Moments(math.nan, math.nan, math.nan, int(r.size))
    centered = r - r.mean()
    m2 = np.mean(centered**2)
    skew = float(np.mean(centered**3) / m2**1.5)
    kurtosis = float(np.mean(centered**4) / m2**2)
    return Moments(float(r.mean() / r.std(ddof=1)), skew, kurtosis, int(r.size))


@dataclass
class Verdict:
    """A candidate's best simulation judged: promoted, or the failed tests."""

    failures: list[str] = field(default_factory=list)
    dsr: float = math.nan

    @property
    def promoted(self) -> bool:
        return not self.failures

    @property
    def reason(self) -> str:
        return "promoted: meets the criteria" if self.promoted else "; ".join(self.failures)


def judge(
    row: Mapping[str, Any] | None,
    criteria: Criteria,
    moments: Moments | None,
    trials: int,
    sr_variance: float,
) -> Verdict:
    """Criteria first, then the baselines, then the Deflated Sharpe Ratio over `trials`."""
    if row is None:
        return Verdict(["criteria: no simulation"])
    failed = criteria.failures(row)
    if failed:
        return Verdict([f"criteria: {', '.join(failed)}"])
    failed = criteria.baseline_failures(row)
    if failed:
        return Verdict([f"baselines: {', '.join(failed)}"])
    m = moments or Moments(math.nan, math.nan, math.nan, 0)
    dsr = deflated_sharpe(m.sr, m.days, m.skew, m.kurtosis, trials, sr_variance)
    if not dsr >= criteria.dsr_min:
        return Verdict(
            [
                f"deflated sharpe: {_fmt(dsr)} < {criteria.dsr_min:g} over {trials} "
                f"trials (daily SR {_fmt(m.sr)}, {m.days} days)"
            ],
            dsr,
        )
    return Verdict([], dsr)


def best_row(rows: Sequence[Mapping[str, Any]], criteria: Criteria) -> Mapping[str, Any] | None:
    """The row with the highest SQN among those meeting the criteria and beating the
    baselines, else among those meeting the criteria, else among those with a trade count
    in range (a few lucky trades make no leader), else among all (NaN never wins)."""

    def ranked(pool):  # noqa: E306
        finite = [r for r in pool if _number(r.get("sqn")) is not None]
        return max(finite, key=lambda r: float(r["sqn"])) if finite else None

    meeting = [r for r in rows if not criteria.failures(r)]
    beating = [r for r in meeting if not criteria.baseline_failures(r)]
    trading = [
        r for r in rows
        if criteria.trades_min <= (_number(r.get("trades")) or 0) <= criteria.trades_max
    ]  # fmt: skip
    return ranked(beating) or ranked(meeting) or ranked(trading) or ranked(rows)


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (every objective maximized, NaN
    points excluded)."""
    finite = [i for i, p in enumerate(points) if all(math.isfinite(v) for v in p)]
    front = []
    for i in finite:
        dominated = any(
            all(b >= a for a, b in zip(points[i], points[j], strict=True))
            and any(b > a for a, b in zip(points[i], points[j], strict=True))
            for j in finite
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


# --- stopping -------------------------------------------------------------------------------

STOP_REASONS = ("promoted", "max_generations", "all_pruned", "no_pruning")


def stop_reason(
    generation: int, max_generations: int, promoted: bool, pruning: Pruning | None
) -> str | None:
    """Why the evolution ends after `generation` (0-based), or None to go on."""
    if promoted:
        return "promoted"
    if generation + 1 >= max_generations:
        return "max_generations"
    if pruning is None or not pruning.kept:
        return "all_pruned"
    if not pruning.pruned:
        return "no_pruning"
    return None
