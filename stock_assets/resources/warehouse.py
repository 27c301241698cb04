"""The warehouse resource: where the lake and the catalog live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from stock_assets.storage.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The lake and the catalog under `home` (default: STOCK_ASSETS_HOME when first used)."""

    home: str = Field(default="", description="Data home (empty: STOCK_ASSETS_HOME or ./data).")

    def open(self) -> Warehouse:
        from stock_assets import settings
        from stock_assets.storage.warehouse import Warehouse

        return Warehouse(Path(self.home).expanduser().resolve() if self.home else settings.home())
