"""The trading bot: a meta-learner that predicts whether the base model's direction is right.

A RandomForest is fit on the train split only: features (market context, and the base
prediction itself by default) against the label "the base prediction's direction matched
the realized move" (metrics.direction_hits; rows with no move or no prediction are left
out). Its probability of class 1 then gates entries in the simulation (bot_proba >
bot_threshold, 0.55 by default). `realized_return[i]` is the move prediction i is about
(its target); it is read on train rows only, so test labels never reach the bot. Rows
whose target window crosses into the test split must be purged by the caller's split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stock_assets.core.metrics import direction_hits

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestClassifier

PREDICTION_FEATURE = "base_prediction"


class InvalidBotInput(ValueError):
    """Features, predictions or splits the bot cannot be trained or applied on."""


@dataclass(frozen=True)
class BotModel:
    """A fitted bot, or a constant one when the train split held a single class."""

    estimator: RandomForestClassifier | None
    feature_names: tuple[str, ...]
    include_prediction: bool
    target_kind: str
    train_rows: int
    train_hit_rate: float
    constant_proba: float | None = None


def _matrix(features: pd.DataFrame | np.ndarray, names: tuple[str, ...] | None) -> pd.DataFrame:
    if isinstance(features, pd.DataFrame):
        frame = features.reset_index(drop=True)
        if names is not None:
            missing = [name for name in names if name not in frame.columns]
            if missing:
                raise InvalidBotInput(f"features lack the bot's columns {missing}")
            frame = frame[list(names)]
        return frame.astype(np.float64)
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidBotInput(f"features have shape {array.shape}: a 2-D (rows, columns) table")
    columns = names or tuple(f"f{i}" for i in range(array.shape[1]))
    if len(columns) != array.shape[1]:
        raise InvalidBotInput(f"features have {array.shape[1]} columns, the bot {len(columns)}")
    return pd.DataFrame(array, columns=list(columns))


def _with_prediction(frame: pd.DataFrame, base_pred: np.ndarray, include: bool) -> pd.DataFrame:
    pred = np.asarray(base_pred, dtype=np.float64)
    if pred.shape != (len(frame),):
        raise InvalidBotInput(
            f"base_pred has shape {pred.shape}: one value per row ({len(frame)},)"
        )
    return frame.assign(**{PREDICTION_FEATURE: pred}) if include else frame


def train_bot(
    features: pd.DataFrame | np.ndarray,
    base_pred: np.ndarray,
    realized_return: np.ndarray,
    train_mask: np.ndarray,
    *,
    target_kind: str = "regressor",
    include_prediction: bool = True,
    n_estimators: int = 200,
    max_depth: int | None = 6,
    min_samples_leaf: int = 20,
    random_state: int = 0,
    n_jobs: int = 1,
) -> BotModel:
    """Fit the bot on the rows of `train_mask` whose base prediction had a verdict."""
    frame = _matrix(features, None)
    names = tuple(str(c) for c in frame.columns)
    if PREDICTION_FEATURE in names and include_prediction:
        raise InvalidBotInput(f"a feature is named {PREDICTION_FEATURE!r}, the bot's own column")
    table = _with_prediction(frame, base_pred, include_prediction)
    mask = np.asarray(train_mask, dtype=bool)
    realized = np.asarray(realized_return, dtype=np.float64)
    if mask.shape != (len(frame),) or realized.shape != (len(frame),):
        raise InvalidBotInput(
            f"train_mask {mask.shape} and realized_return {realized.shape}: one per row"
        )
    hits = direction_hits(
        np.asarray(base_pred, dtype=np.float64), np.where(mask, realized, np.nan), target_kind
    )
    rows = mask & np.isfinite(hits)
    if not rows.any():
        raise InvalidBotInput("no train row has both a base prediction and a realized move")
    labels = hits[rows].astype(np.int64)
    common = dict(
        feature_names=names,
        include_prediction=include_prediction,
        target_kind=target_kind,
        train_rows=int(rows.sum()),
        train_hit_rate=float(labels.mean()),
    )
    if np.unique(labels).size == 1:
        return BotModel(estimator=None, constant_proba=float(labels[0]), **common)
    from sklearn.ensemble import RandomForestClassifier  # a slow import

    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    forest.fit(table.to_numpy()[rows], labels)
    return BotModel(estimator=forest, **common)


def bot_probability(
    bot: BotModel, features: pd.DataFrame | np.ndarray, base_pred: np.ndarray
) -> np.ndarray:
    """Probability, per row, that the base prediction's direction is right."""
    frame = _matrix(features, bot.feature_names)
    table = _with_prediction(frame, base_pred, bot.include_prediction)
    if bot.estimator is None:
        return np.full(len(table), bot.constant_proba, dtype=np.float64)
    return bot.estimator.predict_proba(table.to_numpy())[:, 1].astype(np.float64)
