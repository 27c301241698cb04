"""The evolution: start one (the orchestrator notes' `POST /evolve` body, as the launchpad's
config), its generations and lineage, the promoted models (the hall of fame)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from stock_assets.api import common
from stock_assets.api.common import Limit, Mutating, Offset
from stock_assets.api.errors import NotFound, responses
from stock_assets.api.routes.results import MODEL_ID, OptionalSymbol
from stock_assets.api.schemas import Launched
from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import normalize_symbol, normalize_symbols
from stock_assets.pipelines.specs import EvolutionSpec

router = APIRouter(tags=["evolution"], responses=responses(422))
EVOLUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EvolutionId = Annotated[str, Path(json_schema_extra={"pattern": f"^{EVOLUTION_ID.pattern}$"})]
ModelId = Annotated[str, Path(json_schema_extra={"pattern": f"^{MODEL_ID.pattern}$"})]


class Rows(BaseModel):
    total: int
    limit: int
    offset: int
    rows: list[dict[str, Any]] = Field(description="Catalog rows (NaN as null).")


class Generations(BaseModel):
    evolution: dict[str, Any] = Field(description="The evolution_runs row.")
    generations: list[dict[str, Any]] = Field(description="Every candidate, by generation.")


class Promoted(BaseModel):
    promoted: dict[str, Any] = Field(description="The promoted_models row.")
    lineage: list[dict[str, Any]] = Field(description="Its ancestry back to the seed.")


def _evolution(evolution_id: str) -> dict:
    if not EVOLUTION_ID.fullmatch(evolution_id):
        raise UsageError(f"evolution id {evolution_id!r}: a lower-case UUID (GET /evolutions)")
    found = common.warehouse().catalog.read(
        "SELECT * FROM evolution_runs WHERE evolution_id = ? OR dagster_run_id = ?",
        [evolution_id, evolution_id],
    )
    if found.empty:
        raise NotFound(f"no evolution {evolution_id} (GET /evolutions)")
    row = common.records(found)[0]
    row["config"] = json.loads(row["config"])
    return row


@router.post("/evolve", status_code=202, dependencies=Mutating,
             responses=responses(401, 404, 503))  # fmt: skip
def evolve(spec: Annotated[EvolutionSpec, Body()]) -> Launched:
    """Run `evolution_job` (every field as in the launchpad; the answer comes when the run
    ends, with the evolution id in `outputs`)."""
    from stock_assets.cli.models import registry
    from stock_assets.jobs import launcher as launches
    from stock_assets.pipelines.evolution import parent_record

    warehouse = common.warehouse()
    config = spec.model_dump()
    config["symbol"] = normalize_symbol(spec.symbol)
    config["context"] = normalize_symbols(spec.context) if spec.context else []
    EvolutionSpec(**config).check()
    for name in (config["symbol"], *config["context"]):
        if not warehouse.feature_days(name):
            raise NotFound(f"{name} has no features: POST /features/{name}/rebuild")
    parent_sqn = None
    if spec.parent:
        from stock_assets.storage.models import UnknownModelId

        try:
            parent_sqn = parent_record(warehouse, registry().get(spec.parent))[0]
        except UnknownModelId as error:
            raise NotFound(str(error)) from None
    config["evolution_id"] = config.get("evolution_id") or str(uuid.uuid4())
    outcome = common.launch(launches.evolve(config, parent_sqn))
    return common.launched([outcome], {"evolution_id": config["evolution_id"]})


@router.get("/evolutions")
def evolutions(symbol: OptionalSymbol = None, limit: Limit = 50, offset: Offset = 0) -> Rows:
    """Evolution runs, newest first (status, stop reason, best model, trials)."""
    sql, params = "SELECT * EXCLUDE (config) FROM evolution_runs", []
    if symbol is not None:
        sql, params = sql + " WHERE symbol = ?", [normalize_symbol(symbol)]
    rows = common.records(common.warehouse().catalog.read(sql + " ORDER BY updated_at DESC",
                                                          params))  # fmt: skip
    return Rows(total=len(rows), limit=limit, offset=offset, rows=common.page(rows, limit, offset))


@router.get("/runs/{evolution_id}/generations", responses=responses(404))
def generations(evolution_id: EvolutionId) -> Generations:
    """An evolution (by its id or its Dagster run id) and every candidate of each
    generation: parent, pruned and remaining features, figures, verdict."""
    evolution = _evolution(evolution_id)
    log = common.warehouse().catalog.read(
        "SELECT * FROM evolution_log WHERE evolution_id = ? ORDER BY generation, candidate",
        [evolution["evolution_id"]],
    )
    rows = common.records(log)
    for row in rows:
        for key in ("params", "remaining_features", "pruned_features"):
            row[key] = json.loads(row[key])
    return Generations(evolution=evolution, generations=rows)


@router.get("/promoted")
def promoted(symbol: OptionalSymbol = None, limit: Limit = 50, offset: Offset = 0) -> Rows:
    """The hall of fame: promoted models, best SQN first, with their Deflated Sharpe."""
    sql, params = "SELECT * FROM promoted_models", []
    if symbol is not None:
        sql, params = sql + " WHERE symbol = ?", [normalize_symbol(symbol)]
    rows = common.records(common.warehouse().catalog.read(sql + " ORDER BY sqn DESC", params))
    return Rows(total=len(rows), limit=limit, offset=offset, rows=common.page(rows, limit, offset))


@router.get("/promoted/{model_id}", responses=responses(404))
def promoted_model(model_id: ModelId) -> Promoted:
    """One promoted model: its figures, simulation config, features, parameters and
    lineage back to the seed."""
    from stock_assets.pipelines.lineage import lineage

    if not MODEL_ID.fullmatch(model_id):
        raise UsageError(f"model id {model_id!r}: e.g. SPY-xgboost_regressor-1a2b3c4d")
    warehouse = common.warehouse()
    found = warehouse.catalog.read(
        "SELECT * FROM promoted_models WHERE model_id = ? ORDER BY promoted_at DESC LIMIT 1",
        [model_id],
    )
    if found.empty:
        raise NotFound(f"{model_id} was not promoted (GET /promoted)")
    row = common.records(found)[0]
    for key in ("simulation_config", "features", "params", "lineage"):
        row[key] = json.loads(row[key])
    steps = [{k: common.json_value(v) for k, v in step.items()}
             for step in lineage(warehouse, model_id)]  # fmt: skip
    return Promoted(promoted=row, lineage=steps)
