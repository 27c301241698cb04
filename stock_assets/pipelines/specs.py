"""Specifications people write (run config in the launchpad, CLI options, API bodies),
as pydantic models that import nothing heavy: the Dagster definitions load them at
import time, and validating one never starts any work."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from stock_assets.core.errors import UsageError

SPLITS = ("all", "train", "test")
# the `models` asset's default set: one linear, one boosted regressor, one classifier
DEFAULT_MODEL_CONFIGS = [
    {"algorithm": name}
    for name in ("ridge_regression", "lightgbm_regressor", "logistic_regression")
]
MAX_FILL_DELAY = 1000


class InvalidSpec(UsageError):
    """A specification with a value out of its range; the message names the field."""


class GridSpec(BaseModel):
    """A simulation grid in plain values. The default is 4 thresholds x z-score on/off x
    volatility normalization on/off x 3 regime whitelists x 2 fill presets = 96
    combinations, for every current model of the symbol."""

    models: list[str] = Field(
        default=[],
        description="Model ids whose predictions are simulated (empty: every current model "
        "of the symbol; the baselines baseline:momentum_5 and baseline:reversal_5 until "
        "models are trained).",
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
    fold: str = Field(default="fold_30_5", description="The fold column that defines the split.")
    rank_by: str = Field(default="sqn", description="Metric that picks the plotted combination.")

    def build(self):
        """The core grid (a `SimGrid`); a bad value raises before any work starts."""
        from stock_assets.core.sim_params import (
            FILL_AT_CLOSE,
            FILL_REALISTIC,
            FillPreset,
            InvalidSimulationInput,
            SimGrid,
        )

        if self.split not in SPLITS:
            raise InvalidSpec(f"split {self.split!r}: choose one of {', '.join(SPLITS)}")
        from stock_assets.core.sim_results import rankable_metrics

        for delay in self.fill_delays:
            if not 0 <= delay <= MAX_FILL_DELAY:
                raise InvalidSpec(
                    f"fill_delays: {delay} is not a number of bars 0..{MAX_FILL_DELAY}"
                )
        if self.rank_by not in rankable_metrics():
            raise InvalidSpec(f"rank_by {self.rank_by!r}: one of {', '.join(rankable_metrics())}")
        fills = [
            FILL_AT_CLOSE if d == 0 else FillPreset(d, FILL_REALISTIC.price)
            for d in self.fill_delays
        ]
        try:
            return SimGrid(
                thresholds=tuple(self.thresholds),
                zscore=tuple(self.zscore),
                volnorm=tuple(self.volnorm),
                regimes=tuple(parse_regime(text) for text in self.regimes),
                bot=tuple(self.bot),
                fills=tuple(fills),
                fee_per_trade=self.fee_per_trade,
                fee_bps=self.fee_bps,
                fractional=self.fractional,
            )
        except InvalidSimulationInput as error:
            raise InvalidSpec(str(error)) from None


def parse_regime(text: str):
    """`regime_gmm=0,1` -> RegimeFilter('regime_gmm', (0, 1)); empty -> no gating."""
    from stock_assets.core.regimes import REGIME_CODES
    from stock_assets.core.sim_params import RegimeFilter

    if not text.strip():
        return None
    column, _, codes = text.partition("=")
    column = column.strip()
    if column not in REGIME_CODES or not codes:
        raise InvalidSpec(
            f"regime filter {text!r}: use COLUMN=CODES with COLUMN one of "
            f"{', '.join(REGIME_CODES)}, e.g. regime_gmm=0"
        )
    try:
        allowed = tuple(sorted({int(code) for code in codes.split(",")}))
    except ValueError:
        raise InvalidSpec(f"regime filter {text!r}: codes are integers") from None
    unknown = [code for code in allowed if code not in REGIME_CODES[column]]
    if unknown:
        raise InvalidSpec(
            f"regime filter {text!r}: {column} has codes {list(REGIME_CODES[column])}"
        )
    return RegimeFilter(column, allowed)


class ModelEntry(BaseModel):
    """One model to train. Algorithms: linear_regression, ridge_regression,
    lasso_regression, elasticnet_regression, logistic_regression, random_forest_regressor,
    random_forest_classifier, gradient_boosting_regressor, gradient_boosting_classifier,
    xgboost_regressor, xgboost_classifier, lightgbm_regressor, lightgbm_classifier."""

    algorithm: str = Field(description="The estimator (a *_classifier predicts direction).")
    target: str = Field(default="close", description="close, open, high or low.")
    transform: str = Field(
        default="log_return",
        description="log_return (default), pct_change, or price (allowed, flagged).",
    )
    horizon: int = Field(default=1, description="Bars ahead (>= 1).")
    timeframe: str = Field(default="1m", description="1m 5m 15m 30m 1h 4h 8h 1d.")
    fold: str = Field(default="fold_30_5", description="Fold column of train/test episodes.")
    evaluation: str = Field(
        default="walk_forward",
        description="walk_forward: each test episode predicted by a fit on rows before it; "
        "folds: one fit on all train episodes (labelled so in every figure).",
    )
    context: list[str] = Field(default=[], description="Up to 3 context symbols, e.g. QQQ.")
    parent: str = Field(default="", description="Model id whose features are inherited.")
    features: list[str] = Field(default=[], description="Whitelist of features (empty: all).")
    exclude: list[str] = Field(default=[], description="Blacklist of features.")
    params: str = Field(default="{}", description="Estimator parameters as JSON.")
    auto_select: bool = Field(
        default=False, description="Also train a child on the top 2 features per category."
    )
    group_id: str = Field(default="", description="Group the model belongs to (train-group).")

    def spec(self):
        from stock_assets.core.training import ModelSpec

        try:
            params = json.loads(self.params or "{}")
        except ValueError:
            raise InvalidSpec(f"params {self.params!r}: a JSON object") from None
        return ModelSpec(
            algorithm=self.algorithm, target=self.target, transform=self.transform,
            horizon=self.horizon, timeframe=self.timeframe, fold=self.fold,
            evaluation=self.evaluation, context=tuple(self.context),
            features=tuple(self.features) or None, exclude=tuple(self.exclude), params=params,
        )  # fmt: skip


class EvolutionSpec(BaseModel):
    """An evolution run (see stock_assets.pipelines.evolution). Defaults: the orchestrator
    notes' (XGBoost, 4 generations, SQN 3-5, profit factor 2-4, 200-10,000 trades, weekly
    consistency < 0.5), plus a Deflated Sharpe test and the baselines to beat."""

    symbol: str = Field(description="The symbol whose stored features are modelled.")
    context: list[str] = Field(default=[], description="Up to 3 context symbols, e.g. SPY, QQQ.")
    algorithms: list[str] = Field(
        default=["xgboost_regressor"],
        description="Algorithms of the candidates (cycled): any of `stock-assets train`'s.",
    )
    target: str = Field(default="close", description="close, open, high or low.")
    transform: str = Field(default="log_return", description="log_return, pct_change or price.")
    horizon: int = Field(default=1, description="Bars ahead (>= 1).")
    timeframe: str = Field(default="1m", description="1m 5m 15m 30m 1h 4h 8h 1d.")
    fold: str = Field(default="fold_30_5", description="Fold column of train/test episodes.")
    refit_every: int = Field(
        default=1, description="Test episodes per walk-forward fit (more: fewer, faster fits)."
    )
    max_generations: int = Field(default=4, description="Generations at most (1..10).")
    candidates: int = Field(default=5, description="Candidates trained per generation (1..50).")
    sampler: str = Field(
        default="random",
        description="random (independent draws from the search space), tpe (Optuna TPE on "
        "SQN) or nsga2 (Optuna NSGA-II on SQN x profit factor x drawdown).",
    )
    crossover: bool = Field(
        default=True,
        description="One candidate per later generation blends the two best models' features.",
    )
    seed: int = Field(default=0, description="Seed of the samplers, crossover and models.")
    seed_features: list[str] = Field(
        default=[], description="Features of generation 0 (empty: all, or the parent's)."
    )
    parent: str = Field(
        default="", description="A model id to start from: its features and parameters."
    )
    thresholds: list[float] = Field(
        default=[0.0, 0.0001, 0.0003, 0.0005],
        description="Simulated thresholds (log-return units for regressors).",
    )
    regime_configs: list[str] = Field(
        default=["", "regime_gmm=0", "regime_vix=0,1"],
        description="Regime whitelists simulated, one grid chunk each (empty: no gating).",
    )
    fill_delays: list[int] = Field(
        default=[4], description="Fill delays in bars (4: the realistic, conservative fill)."
    )
    fee_per_trade: float = Field(default=0.02, description="Dollars per fill.")
    sqn_min: float = Field(default=3.0, description="Promotion: SQN at least this.")
    sqn_max: float = Field(default=5.0, description="Promotion: SQN at most this (too good).")
    profit_factor_min: float = Field(default=2.0, description="Promotion: profit factor from.")
    profit_factor_max: float = Field(default=4.0, description="Promotion: profit factor up to.")
    trades_min: int = Field(default=200, description="Promotion: round trips at least.")
    trades_max: int = Field(default=10_000, description="Promotion: round trips at most.")
    weekly_consistency_max: float = Field(
        default=0.5, description="std/mean of trades per week must be below this."
    )
    dsr_min: float = Field(
        default=0.95, description="Deflated Sharpe probability the promoted one must reach."
    )
    beat_baselines: bool = Field(default=True, description="Must beat buy-and-hold and random.")
    shap_rows: int = Field(
        default=1000, description="Test rows explained by SHAP per candidate (0: none)."
    )
    evolution_id: str = Field(
        default="",
        description="The evolution's id (default: the Dagster run id). The id of a recorded "
        "evolution resumes it with its stored configuration: its rows are rewritten, its "
        "models reused.",
    )

    def criteria(self):
        from stock_assets.core.evolution import Criteria

        return Criteria(**{name: getattr(self, name) for name in Criteria.names()})

    def check(self) -> None:
        """Every setting in range; raises before any work starts."""
        from stock_assets.core.evolution import MAX_GENERATIONS, SAMPLERS, search_space

        if not 1 <= self.max_generations <= MAX_GENERATIONS:
            raise InvalidSpec(f"max_generations {self.max_generations}: 1..{MAX_GENERATIONS}")
        if not 1 <= self.candidates <= 50:
            raise InvalidSpec(f"candidates {self.candidates}: 1..50")
        if self.sampler not in SAMPLERS:
            raise InvalidSpec(f"sampler {self.sampler!r}: choose one of {', '.join(SAMPLERS)}")
        if not self.algorithms:
            raise InvalidSpec("algorithms: name at least one")
        for name in self.algorithms:
            search_space(name)
        if self.refit_every < 1:
            raise InvalidSpec(f"refit_every {self.refit_every}: >= 1")
        if not self.thresholds or not self.regime_configs or not self.fill_delays:
            raise InvalidSpec("thresholds, regime_configs and fill_delays need a value each")
        self.criteria()
        self.grid("").build()
        for text in self.regime_configs:
            parse_regime(text)
        for algorithm in self.algorithms:
            self.model_spec(algorithm, list(self.seed_features) or None, {})

    def grid(self, regime: str) -> GridSpec:
        """The simulation grid of one chunk: every threshold and fill over one regime
        whitelist, on the fold's test rows (where out-of-sample predictions are)."""
        return GridSpec(
            thresholds=self.thresholds, zscore=[False], volnorm=[False], regimes=[regime],
            fill_delays=self.fill_delays, fee_per_trade=self.fee_per_trade, split="test",
            fold=self.fold,
        )  # fmt: skip

    def model_spec(self, algorithm: str, features: list[str] | None, params: dict):
        from stock_assets.core.training import ModelSpec

        return ModelSpec(
            algorithm=algorithm, target=self.target, transform=self.transform,
            horizon=self.horizon, timeframe=self.timeframe, fold=self.fold,
            context=tuple(self.context), features=tuple(features) if features else None,
            params=params, refit_every=self.refit_every, seed=self.seed,
            shap_rows=self.shap_rows,
        )  # fmt: skip
