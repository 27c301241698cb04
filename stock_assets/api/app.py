"""The application factory. Everything the app reads (STOCK_ASSETS_HOME, DAGSTER_HOME,
STOCK_ASSETS_DAGSTER_URL, MLFLOW_TRACKING_URI) is read per request, except the token,
read once here. No CORS middleware: browsers of other origins are not served."""

from __future__ import annotations

import os

from fastapi import FastAPI

from stock_assets.api import errors
from stock_assets.api.common import TOKEN_ENV
from stock_assets.api.routes import data, evolution, features, logs, results, work


def create_app(token: str | None = None) -> FastAPI:
    """The REST API; mutating endpoints need `Authorization: Bearer <token>` when a token
    is given or set in STOCK_ASSETS_API_TOKEN (none: they are open, on loopback only)."""
    app = FastAPI(
        title="stock-assets",
        summary="Launch Dagster runs and read the warehouse of US 1-minute stock bars.",
        version="1",
    )
    app.state.api_token = token if token is not None else os.environ.get(TOKEN_ENV, "")
    errors.install(app)
    # results first: its fixed paths (/health, /runs...) never meet a {symbol:path}
    routers = (results, logs, evolution, features, data, work)
    for router in (module.router for module in routers):
        app.include_router(router)
    if app.state.api_token:
        _check_token_first(app, app.state.api_token)
    else:
        _document_without_auth(app)
    return app


def _check_token_first(app: FastAPI, token: str) -> None:
    """A mutating request without the token is a 401 before anything else is looked at
    (its body, its parameters, even whether the path exists)."""
    from fastapi.responses import JSONResponse

    from stock_assets.api.common import MUTATING_METHODS, UNAUTHORIZED, authorized

    @app.middleware("http")
    async def bearer_token(request, call_next):
        if request.method in MUTATING_METHODS and not authorized(
            request.headers.get("authorization"), token
        ):
            return JSONResponse({"error": UNAUTHORIZED}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return await call_next(request)


def _document_without_auth(app: FastAPI) -> None:
    """With no token the mutating endpoints are open (the server binds loopback only):
    the OpenAPI document says so, with no bearer scheme and no 401 answers."""
    build = app.openapi

    def openapi() -> dict:
        document = build()
        for operations in document["paths"].values():
            for operation in operations.values():
                operation.pop("security", None)
                operation["responses"].pop("401", None)
        document.get("components", {}).pop("securitySchemes", None)
        return document

    app.openapi = openapi
