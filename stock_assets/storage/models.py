"""Trained models in MLflow: one MLflow run per model, with explicit run ids (no active-run
globals, so parallel steps never share a run), in one experiment per symbol.

Each run holds the parameters, the out-of-sample metrics (`oos_*`, beside `baseline_*`),
tags for lineage, the Pipeline as an MLflow model (signature and input example), the
feature list, the importance tables, the SHAP summary plot and the out-of-sample
predictions (`predictions/oos.parquet`), which is all a simulation reads of a model.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from stock_assets.core.errors import UsageError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from stock_assets.core.training import TrainedModel

EXPERIMENT_PREFIX = "stock-assets/"
OOS_ARTIFACT = "predictions/oos.parquet"
SHAP_ARTIFACT = "shap_summary.png"
_MODEL_PACKAGES = ("scikit-learn", "xgboost-cpu", "lightgbm", "pandas", "numpy")


class UnknownModelId(UsageError):
    """A model id that is not in the registry."""


@dataclass(frozen=True)
class LoggedModel:
    """A model as the registry knows it: its id, MLflow run and what describes it."""

    model_id: str
    run_id: str
    symbol: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def parent(self) -> str | None:
        return self.tags.get("parent") or None


def default_tracking_uri(home: Path) -> str:
    """SQLite under the home, artifacts beside it (see `ModelRegistry`)."""
    return f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


class ModelRegistry:
    """The models of every symbol in the MLflow store at `tracking_uri`."""

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, ui_url: str = ""):
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.ui_url = ui_url.rstrip("/")

    @cached_property
    def client(self) -> MlflowClient:
        import logging

        # MLflow's own chatter (uv detection, pip version, download bars) is not ours to show
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        from mlflow import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        return MlflowClient(tracking_uri=self.tracking_uri)

    def _experiment_id(self, symbol: str) -> str:
        name = EXPERIMENT_PREFIX + symbol
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (self.artifact_root / symbol).as_uri() if self.artifact_root else None
        return self.client.create_experiment(name, artifact_location=location)

    def run_url(self, symbol: str, run_id: str) -> str:
        """The run's page in the MLflow UI (`stock-assets mlflow`)."""
        experiment = self._experiment_id(symbol)
        return f"{self.ui_url or 'http://127.0.0.1:5000'}/#/experiments/{experiment}/runs/{run_id}"

    # --- writing ------------------------------------------------------------------------

    def log(self, trained: TrainedModel, model_id: str, symbol: str, tags: dict[str, str]) -> str:
        """One MLflow run for a trained model; returns its run id."""
        import mlflow
        from mlflow.models import infer_signature

        client = self.client
        run = client.create_run(
            self._experiment_id(symbol), run_name=model_id, tags={**tags, "model_id": model_id}
        )
        run_id = run.info.run_id
        try:
            params = {k: str(v)[:6000] for k, v in trained.spec.as_params().items()}
            client.log_batch(run_id, params=[_param(k, v) for k, v in params.items()])
            for name, value in numeric(trained.metrics).items():
                client.log_metric(run_id, name, value)
            sample = trained.example
            with self._global_uri(), mlflow.start_run(run_id=run_id), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # integer-column and pickle-format hints
                mlflow.sklearn.log_model(
                    trained.pipeline, name="model", input_example=sample,
                    signature=infer_signature(sample, trained.pipeline.predict(sample)),
                    pip_requirements=_requirements(),
                    # boosters and pipelines are not all skops-safe types: cloudpickle
                    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                )  # fmt: skip
            self._log_text(run_id, "features.json", json.dumps(trained.features, indent=1))
            self._log_text(run_id, "fit_log.json", json.dumps(trained.fit_log, indent=1))
            self._log_frame(run_id, "importance.csv", trained.importance)
            self._log_frame(run_id, "shap_by_regime.csv", trained.shap_by_regime)
            if trained.shap_png:
                self._log_bytes(run_id, SHAP_ARTIFACT, trained.shap_png)
            self._log_bytes(run_id, OOS_ARTIFACT, _parquet(trained.oos))
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id)
        return run_id

    def evolution_run(self, symbol: str, evolution_id: str, tags: dict[str, str]) -> str:
        """The MLflow run of an evolution (its candidates' runs nest under it through
        `mlflow.parentRunId`), found again when the evolution is resumed."""
        found = self.client.search_runs(
            [self._experiment_id(symbol)], f"tags.evolution_id = '{_quoted(evolution_id)}' AND "
            "tags.kind = 'evolution'", max_results=1,
        )  # fmt: skip
        if found:
            return found[0].info.run_id
        run = self.client.create_run(
            self._experiment_id(symbol), run_name=f"evolution-{evolution_id[:8]}",
            tags={**tags, "evolution_id": evolution_id, "kind": "evolution"},
        )  # fmt: skip
        return run.info.run_id

    def end_run(self, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
        for name, value in tags.items():
            self.client.set_tag(run_id, name, value)
        self.log_metrics(run_id, metrics)
        self.client.set_terminated(run_id)

    def register(self, model: LoggedModel, name: str, alias: str, tags: dict[str, str]) -> str:
        """A version of registered model `name` from the model's logged artifact, with
        `tags`, and `alias` moved to it; returns the version."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as error:
            if "already exists" not in str(error).lower():
                raise
        source = self.client.get_run(model.run_id).info.artifact_uri.rstrip("/") + "/model"
        for logged in self.client.search_logged_models(
            experiment_ids=[self._experiment_id(model.symbol)],
            filter_string=f"source_run_id = '{model.run_id}'", max_results=1,
        ):  # fmt: skip
            source = f"models:/{logged.model_id}"
        version = self.client.create_model_version(
            name, source, run_id=model.run_id, tags={k: str(v)[:5000] for k, v in tags.items()}
        ).version
        self.client.set_registered_model_alias(name, alias, version)
        return str(version)

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        for name, value in numeric(metrics).items():
            self.client.log_metric(run_id, name, value)

    def delete(self, model_id: str) -> None:
        self.client.delete_run(self.get(model_id).run_id)

    def _log_bytes(self, run_id: str, path: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / Path(path).name
            file.write_bytes(data)
            folder_name = str(Path(path).parent)
            self.client.log_artifact(run_id, str(file), None if folder_name == "." else folder_name)

    def _log_text(self, run_id: str, path: str, text: str) -> None:
        self._log_bytes(run_id, path, text.encode())

    def _log_frame(self, run_id: str, path: str, frame: pd.DataFrame) -> None:
        if frame is not None and len(frame):
            self._log_text(run_id, path, frame.to_csv(index=False))

    # --- reading ------------------------------------------------------------------------

    def models(self, symbol: str | None = None, **tags: str) -> list[LoggedModel]:
        """Every finished model (of one symbol, with these tags), oldest first."""
        from mlflow.entities import ViewType

        names = [EXPERIMENT_PREFIX + symbol] if symbol else None
        experiments = [
            e.experiment_id
            for e in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            if e.name.startswith(EXPERIMENT_PREFIX) and (names is None or e.name in names)
        ]
        if not experiments:
            return []
        query = " AND ".join(
            ["attributes.status = 'FINISHED'", "tags.model_id != ''"]
            + [f"tags.{name} = '{_quoted(value)}'" for name, value in tags.items()]
        )
        runs = self.client.search_runs(
            experiments, query, max_results=50_000, order_by=["attributes.start_time ASC"]
        )
        return [_logged(run) for run in runs]

    def get(self, model_id: str) -> LoggedModel:
        found = self.models(None, model_id=model_id)
        if not found:
            raise UnknownModelId(f"model {model_id!r}: no such model (stock-assets models list)")
        return found[0]

    def oos_predictions(self, model: LoggedModel) -> pd.DataFrame:
        """The model's out-of-sample predictions (ts, prediction, probability, ...)."""
        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_artifacts(model.run_id, OOS_ARTIFACT, folder)
            return pd.read_parquet(path)

    def importance(self, model: LoggedModel) -> pd.DataFrame:
        """The model's importance table (feature, shap_mean_abs, permutation, ...); empty
        for a model logged without explanations."""
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = self.client.download_artifacts(model.run_id, "importance.csv", folder)
            except Exception:  # a model logged without explanations
                return pd.DataFrame(columns=["feature"])
            return pd.read_csv(path)

    def top_features(self, model: LoggedModel, count: int) -> list[dict]:
        """The model's features of largest mean |SHAP| (its importance table)."""
        table = self.importance(model)
        if "shap_mean_abs" in table:
            table = table.sort_values("shap_mean_abs", ascending=False)
        return table.head(count).to_dict(orient="records")

    def load(self, model: LoggedModel):
        """The logged model as an MLflow pyfunc (predicts on a raw feature frame)."""
        import mlflow

        with self._global_uri():
            return mlflow.pyfunc.load_model(f"runs:/{model.run_id}/model")

    def shap_png(self, run_id: str) -> bytes | None:
        """The SHAP summary plot logged with a model, None when it has none."""
        if SHAP_ARTIFACT not in {a.path for a in self.client.list_artifacts(run_id)}:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return Path(self.client.download_artifacts(run_id, SHAP_ARTIFACT, folder)).read_bytes()

    @contextmanager
    def _global_uri(self) -> Iterator[None]:
        """MLflow's fluent API (log_model, load_model) on this store. `set_tracking_uri`
        also exports MLFLOW_TRACKING_URI to the process environment; it is restored after,
        so one registry never decides where the next one (another home) writes."""
        import mlflow

        saved = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = saved


def _quoted(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a dict (MLflow metrics cannot hold text or NaN)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[name] = float(value)
    return out


def _param(key: str, value: str):
    from mlflow.entities import Param

    return Param(key, value)


def _logged(run) -> LoggedModel:
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    return LoggedModel(
        model_id=tags["model_id"], run_id=run.info.run_id, symbol=tags.get("symbol", ""),
        tags=tags, params=dict(run.data.params), metrics=dict(run.data.metrics),
    )  # fmt: skip


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _requirements() -> list[str]:
    """The packages a logged Pipeline needs, pinned to what trained it (given, so MLflow
    does not spend seconds inferring them)."""
    pins = []
    for package in _MODEL_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins
