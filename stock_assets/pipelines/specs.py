"""Specifications people write (run config in the launchpad, CLI options, API bodies),
as pydantic models that import nothing heavy: the Dagster definitions load them at
import time, and validating one never starts any work."""

from __future__ import annotations

from pydantic import BaseModel, Field

from stock_assets.core.errors import UsageError

SPLITS = ("all", "train", "test")
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
