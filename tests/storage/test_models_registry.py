"""Every algorithm through a real MLflow store: logged, reloaded with mlflow.pyfunc, and
predicting identically on a raw feature frame, on generated data and on real minutes."""

from __future__ import annotations

import numpy as np
import pytest

from stock_assets.core.training import ALGORITHMS, train_model
from stock_assets.storage.models import ModelRegistry, default_tracking_uri
from tests.core.test_training import fast_spec, minute_frame, real_spy


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlflow")
    return ModelRegistry(default_tracking_uri(home), artifact_root=home / "artifacts")


def round_trip(registry: ModelRegistry, frame, name: str, fold: str, symbol: str) -> None:
    trained = train_model(frame, fast_spec(name, fold=fold), explain=False)
    model_id = f"{symbol}-{name}-{len(registry.models(symbol))}"
    registry.log(trained, model_id, symbol, {"symbol": symbol, "kind": trained.spec.kind})
    logged = registry.get(model_id)
    sample = trained.example
    reloaded = np.asarray(registry.load(logged).predict(sample), dtype=np.float64)
    np.testing.assert_array_equal(reloaded, trained.pipeline.predict(sample).astype(np.float64))
    assert registry.oos_predictions(logged)["prediction"].tolist() == (
        trained.oos["prediction"].tolist()
    )


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_reloads_and_predicts_identically_on_generated_data(registry, name):
    round_trip(registry, minute_frame(6, 2, 1), name, "fold_2_1", "GEN")


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_reloads_and_predicts_identically_on_real_minutes(
    registry, real_data, name
):
    round_trip(registry, real_spy(str(real_data)), name, "fold_5_2", "SPY")
