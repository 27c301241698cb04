"""The trading bot: trained on the train split only, its probability gates entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_assets.core import bot as trading_bot
from stock_assets.core import simulation as sim


def _market(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features, a base prediction that is right exactly when `calm` > 0, realized moves."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({"calm": rng.normal(size=n), "noise": rng.normal(size=n)})
    pred = rng.normal(0, 0.001, n)
    right = features["calm"].to_numpy() > 0
    realized = np.abs(rng.normal(0, 0.001, n)) * np.sign(pred) * np.where(right, 1, -1)
    return features, pred, realized


def test_the_bot_learns_when_the_base_model_is_right():
    features, pred, realized = _market()
    train = np.arange(len(pred)) < 3000
    bot = trading_bot.train_bot(features, pred, realized, train, n_estimators=50)
    proba = trading_bot.bot_probability(bot, features, pred)
    test = ~train
    calm = features["calm"].to_numpy() > 0
    assert proba.shape == (len(pred),)
    assert proba[test & calm].mean() > 0.8 and proba[test & ~calm].mean() < 0.2
    assert bot.train_rows == 3000 and bot.train_hit_rate == pytest.approx(calm[train].mean())


def test_labels_outside_the_train_split_never_reach_the_bot():
    features, pred, realized = _market()
    train = np.arange(len(pred)) < 2000
    scrambled = realized.copy()
    scrambled[~train] = -scrambled[~train] * 1e6
    scrambled[~train][::2] = np.nan
    first = trading_bot.train_bot(features, pred, realized, train, n_estimators=20)
    second = trading_bot.train_bot(features, pred, scrambled, train, n_estimators=20)
    np.testing.assert_array_equal(
        trading_bot.bot_probability(first, features, pred),
        trading_bot.bot_probability(second, features, pred),
    )


def test_a_single_class_train_split_gives_a_constant_bot():
    features, pred, _ = _market(200)
    always_right = np.sign(pred) * 0.001
    bot = trading_bot.train_bot(features, pred, always_right, np.ones(200, dtype=bool))
    assert bot.estimator is None
    np.testing.assert_array_equal(trading_bot.bot_probability(bot, features, pred), 1.0)


def test_features_as_arrays_and_without_the_prediction():
    features, pred, realized = _market(500)
    train = np.ones(500, dtype=bool)
    bot = trading_bot.train_bot(
        features.to_numpy(), pred, realized, train, include_prediction=False, n_estimators=10
    )
    assert bot.feature_names == ("f0", "f1")
    assert trading_bot.bot_probability(bot, features.to_numpy(), pred).shape == (500,)


def test_bad_bot_inputs_raise():
    features, pred, realized = _market(100)
    with pytest.raises(trading_bot.InvalidBotInput, match="no train row"):
        trading_bot.train_bot(features, pred, realized, np.zeros(100, dtype=bool))
    with pytest.raises(trading_bot.InvalidBotInput, match="one value per row"):
        trading_bot.train_bot(features, pred[:50], realized, np.ones(100, dtype=bool))
    bot = trading_bot.train_bot(features, pred, realized, np.ones(100, dtype=bool), n_estimators=5)
    with pytest.raises(trading_bot.InvalidBotInput, match="lack the bot's columns"):
        trading_bot.bot_probability(bot, features[["calm"]], pred)


def test_bot_probability_gates_the_simulation_entries():
    features, pred, realized = _market(1500)
    n = len(pred)
    # the base prediction at bar i is about the move from bar i to bar i+1
    close = 100 * np.exp(np.concatenate(([0.0], np.cumsum(realized[:-1]))))
    ts = pd.date_range("2024-03-04 14:30", periods=n, freq="min", tz="UTC")
    bars = pd.DataFrame({"ts": ts, "close": close})
    train = np.arange(n) < 1000
    bot = trading_bot.train_bot(features, pred, realized, train, n_estimators=30)
    proba = trading_bot.bot_probability(bot, features, pred)
    grid = sim.SimGrid(bot=(False, True), fee_per_trade=0.0)
    plain, gated = sim.simulate_grid(bars, pred, grid, bot_proba=proba).runs
    assert gated.params.bot and gated.metrics["trades"] < plain.metrics["trades"]
    assert gated.metrics["win_rate"] > plain.metrics["win_rate"]
