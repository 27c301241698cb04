"""Where simulations get their predictors: a model store, by symbol and model id.

`BaselineModels` serves the baseline predictors of `core.predictors` for every symbol;
a store of trained models serves each model's out-of-sample predictions behind the same
interface, so a simulation never scores a bar a model was trained on.
"""

from __future__ import annotations

from typing import Protocol

from stock_assets.core import predictors
from stock_assets.core.errors import UsageError


class UnknownModel(UsageError):
    """A model id the store does not hold for the symbol."""


class ModelStore(Protocol):
    def model_ids(self, symbol: str) -> list[str]:
        """The current models of a symbol, in a stable order."""
        ...

    def predictor(self, symbol: str, model_id: str) -> predictors.Predictor: ...


class BaselineModels:
    """The baseline predictors, the same for every symbol."""

    def model_ids(self, symbol: str) -> list[str]:
        return list(predictors.PREDICTORS)

    def predictor(self, symbol: str, model_id: str) -> predictors.Predictor:
        if model_id not in predictors.PREDICTORS:
            raise UnknownModel(
                f"model {model_id!r}: choose one of {', '.join(self.model_ids(symbol))}"
            )
        return predictors.Baseline(model_id)
