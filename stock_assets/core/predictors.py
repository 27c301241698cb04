"""The baseline predictors simulations run beside trained models, the interface every
predictor meets, and the stationary feature set learners (the bot, the models) may read.

A predictor maps a symbol's feature frame to one prediction per bar in log-return units
(a regressor): `momentum_5` expects the last 5 minutes' move to continue, `reversal_5` to
revert. Each uses bars up to its own only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from stock_assets.core.features import model_feature_columns

MOMENTUM_BARS = 5
# What learners (the trading bot, the models) may read: the feature registry's one list of
# stationary columns, never a price or volume level.
STATIONARY_FEATURES = model_feature_columns()


def momentum(frame: pd.DataFrame, bars: int = MOMENTUM_BARS) -> np.ndarray:
    """log(close_t / close_{t-bars}): NaN for the first `bars` rows."""
    close = frame["close"].to_numpy(dtype=np.float64)
    out = np.full(len(close), np.nan)
    out[bars:] = np.log(close[bars:] / close[:-bars])
    return out


PREDICTORS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "baseline:momentum_5": momentum,
    "baseline:reversal_5": lambda frame: -momentum(frame),
}


class Predictor(Protocol):
    """What a simulation needs of a model: one prediction per row of a feature frame (in
    log-return units), NaN where the model has no out-of-sample prediction."""

    model_id: str

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class Baseline:
    """A baseline predictor by id, from PREDICTORS."""

    model_id: str

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return PREDICTORS[self.model_id](frame)
