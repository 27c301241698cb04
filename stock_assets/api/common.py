"""What every router shares: the token check, paging and symbol parameters, the Dagster
instance and the warehouse of the current environment, rows as JSON, and launching."""

from __future__ import annotations

import datetime as dt
import hmac
import math
import os
import threading
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stock_assets.api.errors import ApiError, Unauthorized
from stock_assets.api.schemas import Launched, RunRef
from stock_assets.core.symbols import RULE

if TYPE_CHECKING:
    import pyarrow as pa

    from stock_assets.jobs.launcher import Launch, RunOutcome

TOKEN_ENV = "STOCK_ASSETS_API_TOKEN"
DAGSTER_URL_ENV = "STOCK_ASSETS_DAGSTER_URL"  # as jobs.launcher, without importing dagster
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
# documents the rule of core.symbols (which alone enforces it, with its own message)
SYMBOL_SCHEMA = {"pattern": r"^[A-Za-z][A-Za-z0-9.\-]{0,9}$"}

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many (1..{MAX_LIMIT}).")
]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many first.")]
Symbol = Annotated[str, Path(description=RULE, json_schema_extra=SYMBOL_SCHEMA)]
Day = Annotated[str | None, Query(description="A day, YYYY-MM-DD.",
                                  json_schema_extra={"format": "date"})]  # fmt: skip

_bearer = HTTPBearer(auto_error=False, description=f"The token in {TOKEN_ENV}.")


MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNAUTHORIZED = f"a bearer token is required: Authorization: Bearer <{TOKEN_ENV}>"


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the token (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), token.encode())


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Mutating endpoints need `Authorization: Bearer <token>` when the app has a token
    (the app's middleware checks it first, before the body is read; this documents it)."""
    token = request.app.state.api_token
    if token and not authorized(request.headers.get("authorization"), token):
        raise Unauthorized(UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


Mutating = [Depends(require_token)]
"""The dependencies of every endpoint that changes something (POST, DELETE)."""


# --- the environment, read per request ------------------------------------------------


def instance():
    """The Dagster instance under DAGSTER_HOME (cached per home)."""
    from stock_assets.cli.common import dagster_instance

    return dagster_instance()


def warehouse():
    from stock_assets.cli.common import open_warehouse

    return open_warehouse()


def registry():
    """The MLflow model registry of the project's store."""
    from stock_assets.cli.models import registry as open_registry

    return open_registry()


def dagster_url(run_id: str) -> str:
    """The run's page in the Dagster UI."""
    base = os.environ.get(DAGSTER_URL_ENV) or DEFAULT_DAGSTER_URL
    base = base if "://" in base else f"http://{base}"
    return f"{base.rstrip('/')}/runs/{run_id}"


def page(items: list, limit: int, offset: int) -> list:
    return items[offset : offset + limit]


# --- rows as JSON ---------------------------------------------------------------------


def json_value(value: object) -> object:
    """JSON has no NaN or infinity: NaN becomes null, infinities the strings inf/-inf (as
    `stock-assets ... --format json`); times are ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return json_value(value.item())
    return value


def records(data) -> list[dict[str, Any]]:
    """Rows of an Arrow table or a DataFrame as JSON-ready dicts."""
    import pyarrow as pa

    table: pa.Table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(
        data, preserve_index=False
    )  # fmt: skip
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]


# --- launching ------------------------------------------------------------------------

_IN_PROCESS = threading.Lock()  # runs executed in this process go one at a time


def launch(request: Launch) -> RunOutcome:
    """A run through the project's launcher: in this process (the embedded default, one at
    a time, answering when the run ends), or submitted to the Dagster webserver at
    STOCK_ASSETS_DAGSTER_URL (the launcher waits for its end too)."""
    from stock_assets.jobs.launcher import InProcessLauncher, launcher

    chosen = launcher(instance())
    if isinstance(chosen, InProcessLauncher):
        with _IN_PROCESS:
            return chosen.launch(request)
    from dagster_graphql import DagsterGraphQLClientError

    try:
        return chosen.launch(request)
    except (OSError, DagsterGraphQLClientError) as error:
        url = os.environ.get(DAGSTER_URL_ENV)
        raise ApiError(f"the Dagster webserver at {url} did not take the run: {error}",
                       status_code=503) from error  # fmt: skip


def run_ref(outcome: RunOutcome) -> RunRef:
    run = outcome.instance.get_run_by_id(outcome.run_id)
    status = run.status.value if run else ("SUCCESS" if outcome.success else "FAILURE")
    return RunRef(
        run_id=outcome.run_id,
        job=run.job_name if run else "",
        status=status,
        dagster_url=dagster_url(outcome.run_id),
        error=None if outcome.success else outcome.failure_reason(),
    )


def launched(outcomes: list[RunOutcome], outputs: dict | None = None) -> Launched:
    """The answer of a launch: the last run, every run it took, what they produced. A run
    that failed on what was asked (a UsageError inside it) is a 422, as the CLI's exit 2."""
    for outcome in outcomes:
        if not outcome.success and outcome.failed_on_usage():
            raise ApiError(outcome.failure_reason(), status_code=422, run_id=outcome.run_id)
    runs = [run_ref(outcome) for outcome in outcomes]
    last = runs[-1]
    return Launched(
        run_id=last.run_id, dagster_url=last.dagster_url, status=last.status, error=last.error,
        runs=runs, outputs=outputs or {},
    )  # fmt: skip
