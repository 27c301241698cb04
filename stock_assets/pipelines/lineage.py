"""Reading what the evolution recorded: a model's ancestry and a run's generations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from stock_assets.storage.models import ModelRegistry
    from stock_assets.storage.warehouse import Warehouse


def lineage(
    warehouse: Warehouse, model_id: str, registry: ModelRegistry | None = None
) -> list[dict]:
    """The ancestry of a model back to its seed, the model first: per step its evolution,
    generation, parent, what was pruned to make it and its best figures. A model trained
    outside an evolution continues through its MLflow `parent` tag when `registry` is given."""
    steps, seen, current = [], set(), model_id
    while current and current not in seen:
        seen.add(current)
        found = warehouse.catalog.read(
            "SELECT * FROM evolution_log WHERE child_model_id = ? ORDER BY created_at LIMIT 1",
            [current],
        )
        if not found.empty:
            row = found.iloc[0]
            steps.append(
                {
                    "model_id": current,
                    "evolution_id": row["evolution_id"],
                    "generation": int(row["generation"]),
                    "parent": row["parent_model_id"],
                    "pruned": json.loads(row["pruned_features"]),
                    "origin": row["origin"],
                    "features": len(json.loads(row["remaining_features"])),
                    "sqn": row["sqn"],
                    "reason": row["reason"],
                }
            )
            current = row["parent_model_id"]
            continue
        parent = None
        if registry is not None:
            parent = registry.get(current).parent
        steps.append(
            {
                "model_id": current,
                "evolution_id": None,
                "generation": None,
                "parent": parent,
                "pruned": {},
                "origin": "trained",
                "features": None,
                "sqn": None,
                "reason": "",
            }
        )
        current = parent
    return steps


def generation_summary(warehouse: Warehouse, evolution_id: str, top: int = 3) -> pd.DataFrame:
    """Each generation's `top` candidates by SQN."""
    return warehouse.catalog.read(
        """
        SELECT generation, candidate, child_model_id, origin, reused, sqn, profit_factor,
               trades, max_drawdown, weekly_consistency, deflated_sharpe, pareto, promoted,
               reason
        FROM (SELECT *, row_number() OVER (PARTITION BY generation
                                           ORDER BY sqn DESC NULLS LAST) AS rank
              FROM evolution_log WHERE evolution_id = ?)
        WHERE rank <= ? ORDER BY generation, rank
        """,
        [evolution_id, top],
    )
