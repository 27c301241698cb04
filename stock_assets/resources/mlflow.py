"""The MLflow resource: where trained models are tracked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from stock_assets.storage.models import ModelRegistry


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: MLFLOW_TRACKING_URI, or by default a SQLite database under
    STOCK_ASSETS_HOME/mlflow with the artifacts beside it (`stock-assets mlflow` opens
    its UI). A small wrapper around MlflowClient with explicit run ids."""

    tracking_uri: str = Field(default="", description="MLflow tracking URI (empty: local).")
    ui_url: str = Field(
        default="http://127.0.0.1:5000", description="Where the MLflow UI answers, for links."
    )

    def open(self, home: Path | None = None) -> ModelRegistry:
        from stock_assets import settings
        from stock_assets.storage.models import ModelRegistry, default_tracking_uri

        root = home or settings.home()
        if self.tracking_uri:
            return ModelRegistry(self.tracking_uri, ui_url=self.ui_url)
        return ModelRegistry(
            default_tracking_uri(root), artifact_root=root / "mlflow" / "artifacts",
            ui_url=self.ui_url,
        )  # fmt: skip
