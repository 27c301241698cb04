"""Work: each endpoint checks what is asked with the project's validators, then launches
Dagster runs through the one launcher and answers 202 with the run and its UI link.

Launching is the launcher's: in this process by default (the answer comes when the run
has ended, runs one at a time), or submitted to the webserver at STOCK_ASSETS_DAGSTER_URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from stock_assets.api import common
from stock_assets.api.common import Day, Mutating, Symbol
from stock_assets.api.errors import NotFound, responses
from stock_assets.api.schemas import Launched
from stock_assets.core.symbols import normalize_symbol, normalize_symbols
from stock_assets.pipelines.specs import GridSpec, ModelEntry

router = APIRouter(tags=["work"], dependencies=Mutating, responses=responses(401, 404, 422, 503))


@router.post("/ingest/{symbol:path}", status_code=202)
def ingest(
    symbol: Symbol,
    start: Annotated[str, Query(description="First day, YYYY-MM-DD.",
                                json_schema_extra={"format": "date"})],
    end: Day = None,
    provider: Annotated[str | None, Query(description="Provider order, e.g. alpaca,yahoo or "
                                          "synthetic (default: the server's).")] = None,
) -> Launched:  # fmt: skip
    """Fetch 1-minute bars and derive 5m..1d for the trading days from start to end (default
    today): one `ingest_job` run; the symbol becomes a partition when new."""
    from stock_assets.cli.common import trading_days
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(symbol)
    days = trading_days(start, end)
    if provider is not None:
        from stock_assets.core.ingest import parse_provider_order

        parse_provider_order(provider, has_alpaca_keys=True)
    instance = common.instance()
    if symbol not in instance.get_dynamic_partitions("symbols"):
        instance.add_dynamic_partitions("symbols", [symbol])
    outcome = common.launch(launches.ingest(symbol, days[0], days[-1], providers=provider))
    return common.launched([outcome], {"days": len(days), **_ingested(symbol, days)})


def _ingested(symbol: str, days: list) -> dict:
    """The ingest outcomes of those days, counted by status, and the rows stored."""
    import pandas as pd

    status = common.warehouse().catalog.ingest_status(symbol)
    status = status[status["date"].between(pd.Timestamp(days[0]), pd.Timestamp(days[-1]))]
    counts = status["status"].value_counts()
    return {"status": {name: int(counts.get(name, 0)) for name in sorted(counts.index)},
            "rows": int(status["rows"].sum())}  # fmt: skip


@router.post("/backfill/{symbol:path}", status_code=202)
def backfill(
    symbol: Symbol,
    max_iterations: Annotated[int, Query(ge=1, le=1000, description="Each iteration closes a "
                                         "gap by one minute from each side.")] = 10,
    start: Day = None,
    end: Day = None,
) -> Launched:  # fmt: skip
    """Fill missing minutes of the stored days from their neighbours, flagged
    (`gap_fill_job`, as `stock-assets backfill`)."""
    from stock_assets.core import calendar
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(symbol)
    if start or end:
        calendar.parse_range(start or calendar.FIRST_DAY, end or calendar.last_day())
    if not common.warehouse().bar_days(symbol):
        raise NotFound(f"no bars stored for {symbol}")
    outcome = common.launch(launches.gap_fill(symbol, start, end, max_iterations))
    filled = len(outcome.materializations("bars_1m")) if outcome.success else 0
    return common.launched([outcome], {"partitions_filled": filled})


@router.post("/features/{symbol:path}/rebuild", status_code=202)
def rebuild_features(symbol: Symbol, start: Day = None, end: Day = None) -> Launched:
    """Materialize `market_regimes` for the days, then the symbol's `features` (default:
    every stored day), as `stock-assets features build`: two runs."""
    from stock_assets.cli.common import trading_days
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(symbol)
    stored = common.warehouse().bar_days(symbol)
    if not stored:
        raise NotFound(f"no bars stored for {symbol} (POST /ingest/{symbol}?start=D)")
    days = trading_days(start or stored[0].isoformat(), end or stored[-1].isoformat())
    regimes = common.launch(launches.regimes(days[0], days[-1]))
    outcomes = [regimes]
    if regimes.success:
        outcomes.append(common.launch(launches.features(symbol, days[0], days[-1])))
    checks = outcomes[-1].checks() if regimes.success else {}
    return common.launched(outcomes, {"days": len(days), "checks": checks})


@router.post("/simulate/{symbol:path}", status_code=202)
def simulate(symbol: Symbol, spec: Annotated[GridSpec | None, Body()] = None) -> Launched:
    """Run `grid_search_job` for one symbol over a grid (the body: GridSpec fields, all
    optional; default the 96-combination grid over every current model)."""
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(symbol)
    spec = spec or GridSpec()
    combinations = len(spec.build().combinations())  # a bad grid fails here, before any run
    if not common.warehouse().feature_days(symbol):
        raise NotFound(f"no features stored for {symbol} (POST /features/{symbol}/rebuild)")
    outcome = common.launch(launches.grid_search([symbol], spec))
    return common.launched([outcome], {"combinations": combinations})


@router.post("/train/{symbol:path}", status_code=202)
def train(
    symbol: Symbol,
    entry: ModelEntry,
    force: Annotated[bool, Query(description="Train again a spec already trained.")] = False,
) -> Launched:
    """Materialize the `models` asset for one model spec (the body: ModelEntry fields), as
    `stock-assets train`; `outputs.model_ids` names the models."""
    from stock_assets.cli.models import check_inputs
    from stock_assets.jobs import launcher as launches

    symbol = normalize_symbol(symbol)
    config = entry.model_dump()
    config["context"] = normalize_symbols(entry.context) if entry.context else []
    ModelEntry(**config).spec()  # an unknown algorithm, target, horizon... fails here
    check_inputs(symbol, config["context"], config["parent"] or None)
    outcome = common.launch(launches.models(symbol, [config], force=force))
    ids = []
    if outcome.success:
        ids = list(outcome.materializations("models")[0].metadata["model_ids"].value)
    return common.launched([outcome], {"model_ids": ids})
