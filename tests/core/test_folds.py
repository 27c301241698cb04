"""Train/test episodes over trading days, and listing the fold configurations present."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stock_assets.core.folds import (
    FoldConfig,
    fold_episode,
    label_folds,
    list_fold_configs,
    symbols_with_fold,
)

DAYS = list(pd.bdate_range("2024-01-02", periods=80).date)


def test_thirty_train_then_five_test_repeating() -> None:
    labels = label_folds(DAYS, 30, 5).tolist()
    assert labels[:30] == ["train"] * 30
    assert labels[30:35] == ["test"] * 5
    assert labels[35:65] == ["train"] * 30 and labels[65:70] == ["test"] * 5
    assert fold_episode(DAYS, 30, 5).tolist()[33:37] == [0, 0, 1, 1]


def test_every_minute_of_a_day_shares_the_days_label_in_eastern_time() -> None:
    minutes = pd.date_range(
        "2024-03-08 09:30", "2024-03-12 15:59", freq="min", tz="America/New_York"
    )
    minutes = minutes[(minutes.hour * 60 + minutes.minute >= 570) & (minutes.hour < 16)]
    minutes = minutes[minutes.dayofweek < 5]
    ts = pd.Series(minutes.tz_convert("UTC"), index=np.arange(len(minutes)) + 100)
    labels = label_folds(ts, 1, 1)
    assert labels.index.equals(ts.index) and labels.name == "fold_split"
    per_day = pd.DataFrame({"day": minutes.date, "label": labels.to_numpy()}).groupby("day")
    assert per_day["label"].nunique().eq(1).all()
    assert per_day["label"].first().tolist() == ["train", "test", "train"]  # Fri, Mon, Tue


@settings(max_examples=30, deadline=None)
@given(
    train=st.integers(1, 40),
    test=st.integers(1, 10),
    keep=st.integers(1, 80),
)
def test_appending_later_days_never_relabels_earlier_ones(train: int, test: int, keep: int) -> None:
    full = label_folds(DAYS, train, test).tolist()
    assert label_folds(DAYS[:keep], train, test).tolist() == full[:keep]
    splits = np.array(full) == "train"
    assert splits.sum() == sum(1 for k in range(len(DAYS)) if k % (train + test) < train)


def test_a_shared_session_list_aligns_symbols_that_start_on_different_days() -> None:
    late_starter = DAYS[7:]
    aligned = label_folds(late_starter, 5, 2, sessions=DAYS).tolist()
    assert aligned == label_folds(DAYS, 5, 2).tolist()[7:]
    with pytest.raises(ValueError, match="not one of the sessions"):
        label_folds([dt.date(2024, 1, 6)], 5, 2, sessions=DAYS)  # a Saturday


@pytest.mark.parametrize("bad", [(0, 5), (30, -1), (2.5, 1), (True, 1)])
def test_fold_sizes_must_be_whole_positive_days(bad) -> None:
    with pytest.raises(ValueError, match="whole number of days"):
        FoldConfig(*bad)


def test_config_key_round_trips_and_rejects_unknown_keys() -> None:
    config = FoldConfig(30, 5)
    assert config.key == '{"train_days":30,"test_days":5}'
    assert FoldConfig.parse(config.key) == config
    assert FoldConfig.parse({"test_days": 5, "train_days": 30}) == config
    with pytest.raises(ValueError, match="unknown keys"):
        FoldConfig.parse('{"train_days": 30, "test_days": 5, "regime_col": "regime_vix"}')
    with pytest.raises(ValueError, match="needs train_days"):
        FoldConfig.parse({"train_days": 30})


def test_global_data_options_list_configs_and_the_symbols_that_have_one() -> None:
    rows = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT", "AAPL", "QQQ", "XOM"],
            "fold_config": [
                '{"train_days":30,"test_days":5}',
                '{"test_days": 5, "train_days": 30}',
                {"train_days": 60, "test_days": 10},
                None,
                "",
            ],
        }
    )
    assert list_fold_configs(rows) == [FoldConfig(30, 5), FoldConfig(60, 10)]
    assert symbols_with_fold(rows, '{"train_days":30,"test_days":5}') == ["AAPL", "MSFT"]
    assert symbols_with_fold(rows.to_dict("records"), FoldConfig(60, 10)) == ["AAPL"]
    assert symbols_with_fold(rows, FoldConfig(1, 1)) == []
