"""Training through the pipeline into a real MLflow store, and simulations reading only
the models' out-of-sample predictions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.folds import FoldConfig
from stock_assets.pipelines.features import build_features, build_regimes
from stock_assets.pipelines.ingest import ingest_and_derive
from stock_assets.pipelines.models import (
    ModelInputError,
    TrainedModels,
    record_best_simulations,
    train,
)
from stock_assets.pipelines.simulations import simulate_symbol
from stock_assets.pipelines.specs import GridSpec
from stock_assets.providers.synthetic import SyntheticProvider
from stock_assets.storage.models import ModelRegistry, UnknownModelId, default_tracking_uri
from stock_assets.storage.warehouse import Warehouse

DAYS = calendar.sessions(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
FOLD = FoldConfig(train_days=5, test_days=2)


@pytest.fixture(scope="module")
def stocked(tmp_path_factory):
    """SPY, QQQ, VIXY bars and SPY/QQQ features (with fold_5_2) for February 2024."""
    home = tmp_path_factory.mktemp("models")
    warehouse = Warehouse(home)
    ingest_and_derive(warehouse, [SyntheticProvider()], {s: DAYS for s in ("SPY", "QQQ", "VIXY")})
    build_regimes(warehouse, DAYS)
    for symbol in ("SPY", "QQQ"):
        build_features(warehouse, symbol, DAYS, [FOLD])
    registry = ModelRegistry(default_tracking_uri(home), artifact_root=home / "mlflow" / "a")
    return warehouse, registry


def spec(**fields):
    from stock_assets.core.training import ModelSpec

    return ModelSpec(fold="fold_5_2", **{"algorithm": "ridge_regression", **fields})


def test_a_trained_model_is_logged_reloads_identically_and_is_recognized(stocked):
    warehouse, registry = stocked
    (record,) = train(warehouse, registry, "SPY", spec(context=("QQQ",)))
    model = record.model
    assert not record.reused and model.symbol == "SPY"
    assert model.tags["evaluation"] == "walk_forward" and model.tags["context"] == "QQQ"
    assert model.tags["fingerprint"].startswith("v2-")
    assert {"oos_hit_rate", "baseline_hit_rate", "oos_rmse", "oos_price_rmse_usd"} <= set(
        model.metrics
    )
    assert not any(k.startswith("train_") and k.replace("train_", "oos_") not in model.metrics
                   for k in model.metrics)  # fmt: skip
    example = record.trained.example
    reloaded = registry.load(model)
    np.testing.assert_array_equal(
        np.asarray(reloaded.predict(example)), record.trained.pipeline.predict(example)
    )
    oos = registry.oos_predictions(model)
    pd.testing.assert_frame_equal(oos, record.trained.oos, check_dtype=False)
    assert any(name.endswith("_QQQ") for name in record.trained.features)

    (again,) = train(warehouse, registry, "SPY", spec(context=("QQQ",)))
    assert again.reused and again.model_id == model.model_id  # same spec, same data

    with pytest.raises(ModelInputError, match="context symbol VIXY has no features"):
        train(warehouse, registry, "SPY", spec(context=("VIXY",)))
    with pytest.raises(UnknownModelId):
        registry.get("SPY-ridge_regression-nope")


def test_simulations_read_only_out_of_sample_predictions(stocked):
    warehouse, registry = stocked
    (record,) = train(warehouse, registry, "SPY", spec(algorithm="lightgbm_regressor"))
    store = TrainedModels(registry)
    assert record.model_id in store.model_ids("SPY")
    predictor = store.predictor("SPY", record.model_id)
    frame = warehouse.read_features("SPY")
    pred = predictor.predict(frame)
    tested = frame["ts"].isin(record.trained.oos["ts"]).to_numpy()
    assert np.isnan(pred[~tested]).all()  # nothing on bars any fit could have seen
    assert np.isfinite(pred[tested]).mean() > 0.9
    assert (frame.loc[tested, "fold_5_2"] == "test").all()

    grid = GridSpec(models=[record.model_id], thresholds=[0.0], zscore=[False], volnorm=[False],
                    regimes=[""], fill_delays=[0])  # fmt: skip
    runs = simulate_symbol(warehouse, store, "SPY", grid)
    rows = warehouse.catalog.read("SELECT * FROM sim_runs WHERE model_id = ?", [record.model_id])
    assert rows["mlflow_run_id"].tolist() == [record.model.run_id]
    record_best_simulations(registry, runs)
    logged = registry.get(record.model_id).metrics
    assert logged["sim_best_sqn"] == pytest.approx(rows["sqn"].iloc[0], nan_ok=True) or np.isnan(
        rows["sqn"].iloc[0]
    )
    assert logged["sim_best_total_return"] == pytest.approx(rows["total_return"].iloc[0])
