"""Results: Dagster runs, the simulation leaderboard, trained models, the platform's
status (daemons, sensors' and schedules' ticks, freshness) and counts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from stock_assets.api import common
from stock_assets.api.common import Limit, Offset
from stock_assets.api.errors import NotFound, responses
from stock_assets.api.schemas import (
    Health,
    Leaderboard,
    ModelDetail,
    ModelsPage,
    ModelSummary,
    RunInfo,
    RunsPage,
    Stats,
    Status,
)
from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import normalize_symbol

router = APIRouter(tags=["results"], responses=responses(422))
# dagster.DagsterRunStatus, spelled out so that building the app does not import dagster
RUN_STATUSES = ("QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUCCESS",
                "FAILURE", "CANCELING", "CANCELED")  # fmt: skip
RunStatus = Literal[RUN_STATUSES]  # type: ignore[valid-type]
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}")
OptionalSymbol = Annotated[str | None, Query(json_schema_extra=common.SYMBOL_SCHEMA)]


@router.get("/health")
def health() -> Health:
    """The API answers (it touches neither Dagster nor the warehouse)."""
    return Health()


def _time(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return common.json_value(value)


def _run_info(record) -> RunInfo:
    run = record.dagster_run
    return RunInfo(
        run_id=run.run_id, job=run.job_name, status=run.status.value,
        dagster_url=common.dagster_url(run.run_id), tags=dict(run.tags),
        created_at=_time(record.create_timestamp), updated_at=_time(record.update_timestamp),
        started_at=_time(record.start_time), ended_at=_time(record.end_time),
    )  # fmt: skip


@router.get("/runs")
def runs(
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    job: Annotated[str | None, Query(description="Only runs of this job.", max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunsPage:
    """Dagster runs of the instance, newest first."""
    import dagster as dg

    filters = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus(status)] if status else [], job_name=job or None
    )
    instance = common.instance()
    records = instance.get_run_records(filters, limit=offset + limit)[offset:]
    return RunsPage(total=instance.get_runs_count(filters), limit=limit, offset=offset,
                    runs=[_run_info(record) for record in records])  # fmt: skip


@router.get("/runs/{run_id}", responses=responses(404))
def run(
    run_id: Annotated[str, Path(json_schema_extra={"pattern": f"^{RUN_ID.pattern}$"})],
) -> RunInfo:
    """One Dagster run: status, tags and times."""
    if not RUN_ID.fullmatch(run_id):
        raise UsageError(f"run id {run_id!r}: a Dagster run id (a lower-case UUID)")
    record = common.instance().get_run_record_by_id(run_id)
    if record is None:
        raise NotFound(f"no run {run_id} (GET /runs)")
    info = _run_info(record)
    if info.job == "evolution_job":  # its lineage: GET /runs/{evolution_id}/generations
        found = common.warehouse().catalog.read(
            "SELECT * EXCLUDE (config) FROM evolution_runs WHERE dagster_run_id = ?", [run_id]
        )
        info.evolution = common.records(found)[0] if len(found) else None
    return info


@router.get("/leaderboard", response_model=Leaderboard)
def leaderboard(
    symbol: OptionalSymbol = None,
    by: Annotated[
        str, Query(description="A rankable metric: sqn, sharpe, total_return...")
    ] = "sqn",
    limit: Annotated[int, Query(ge=1, le=common.MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    """Stored simulations (sim_runs rows), best first by a metric. A page's JSON is kept
    until `sim_runs` changes: dashboards poll it, and it changes only when a grid runs."""
    symbol = normalize_symbol(symbol) if symbol is not None else None
    catalog = common.warehouse().catalog
    key = (by, symbol, limit, offset, catalog.version("sim_runs"))
    body = _BOARDS.get(key)
    if body is None:
        board = catalog.leaderboard(by, symbol, offset + limit)
        rows = common.records(board.iloc[offset:])
        page = Leaderboard(by=by, symbol=symbol, limit=limit, offset=offset, rows=rows)
        body = _BOARDS[key] = page.model_dump_json().encode()
        while len(_BOARDS) > 64:
            _BOARDS.pop(next(iter(_BOARDS)), None)
    return Response(body, media_type="application/json")


_BOARDS: dict[tuple, bytes] = {}  # leaderboard pages by parameters and sim_runs version


def _summary(model) -> dict:
    return {"model_id": model.model_id, "symbol": model.symbol, "mlflow_run_id": model.run_id,
            "parent": model.parent, "group_id": model.tags.get("group_id") or None,
            "algorithm": model.tags.get("algorithm"), "target": model.tags.get("target"),
            "evaluation": model.tags.get("evaluation"), "metrics": model.metrics}  # fmt: skip


@router.get("/models")
def models(symbol: OptionalSymbol = None, limit: Limit = 100, offset: Offset = 0) -> ModelsPage:
    """Trained models (oldest first), with parent and group for the tree."""
    symbol = normalize_symbol(symbol) if symbol is not None else None
    found = common.registry().models(symbol)
    shown = [ModelSummary(**_summary(m)) for m in common.page(found, limit, offset)]
    return ModelsPage(total=len(found), limit=limit, offset=offset, models=shown)


@router.get("/models/{model_id}", responses=responses(404))
def model(
    model_id: Annotated[str, Path(json_schema_extra={"pattern": f"^{MODEL_ID.pattern}$"})],
) -> ModelDetail:
    """One model: its MLflow run and link, tags, parameters, metrics, top features."""
    from stock_assets.storage.models import UnknownModelId

    if not MODEL_ID.fullmatch(model_id):
        raise UsageError(f"model id {model_id!r}: e.g. SPY-ridge_regression-1a2b3c4d")
    registry = common.registry()
    try:
        found = registry.get(model_id)
    except UnknownModelId as error:
        raise NotFound(str(error)) from None
    top = [{k: common.json_value(v) for k, v in row.items()}
           for row in registry.top_features(found, 10)]  # fmt: skip
    return ModelDetail(**_summary(found), url=registry.run_url(found.symbol, found.run_id),
                       tags=found.tags, params=found.params, top_features=top)  # fmt: skip


@router.get("/status")
def status() -> Status:
    """Status at a glance (as `stock-assets status`): daemon health, every sensor's and
    schedule's last tick, the live sensor, each symbol's newest bar, lag behind the
    session clock, today's missing minutes and staleness, and the firing alerts."""
    from stock_assets.sensors.health import report

    return Status(**report(common.instance(), common.warehouse()).to_dict())


@router.get("/stats")
def stats() -> Stats:
    """Counts: symbols, stored bar and feature days, sim_runs rows, models, runs."""
    import dagster as dg

    from stock_assets.sensors.health import symbols as known_symbols

    instance = common.instance()
    store = common.warehouse()
    symbols = known_symbols(instance)
    sim_runs = store.catalog.read("SELECT count(*) AS n FROM sim_runs")["n"].iloc[0]
    runs = {
        status: instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus(status)]))
        for status in RUN_STATUSES
    }
    return Stats(
        symbols=len(symbols),
        bar_days=sum(len(store.bar_days(s)) for s in symbols),
        feature_days=sum(len(store.feature_days(s)) for s in symbols),
        sim_runs=int(sim_runs),
        models=len(common.registry().models()),
        runs={status: count for status, count in runs.items() if count},
    )
