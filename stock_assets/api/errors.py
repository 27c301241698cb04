"""Errors as JSON `{"error": "..."}`, each with its status code, mapped in one place.

A UsageError (bad symbol, date, fold, spec, metric...) is the request's fault: 422, as
the CLI's exit code 2. `NotFound` is a valid request for something that is not there.
"""

from __future__ import annotations

from pydantic import BaseModel

from stock_assets.core.errors import UsageError


class ErrorBody(BaseModel):
    """What every 4xx and 5xx answer holds."""

    error: str
    run_id: str | None = None


class ApiError(Exception):
    """An answer other than success, with its status, message and headers."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None,
                 headers: dict[str, str] | None = None, run_id: str | None = None):  # fmt: skip
        super().__init__(message)
        self.message = message
        self.status_code = status_code or self.status_code
        self.headers = headers
        self.run_id = run_id


class NotFound(ApiError):
    status_code = 404


class Unauthorized(ApiError):
    status_code = 401


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries of error answers, so every documented status has its schema."""
    return {code: {"model": ErrorBody} for code in codes}


def install(app) -> None:
    """Map the project's errors, FastAPI's validation errors and HTTP errors to JSON."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from stock_assets.storage.lake import CorruptPartition

    def answer(status: int, message: str, headers=None, run_id=None) -> JSONResponse:
        body = ErrorBody(error=message, run_id=run_id).model_dump(exclude_none=True)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request, error: ApiError):
        return answer(error.status_code, error.message, error.headers, error.run_id)

    @app.exception_handler(UsageError)
    async def usage_error(request, error: UsageError):
        return answer(422, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, error: RequestValidationError):
        return answer(422, "; ".join(_describe(item) for item in error.errors()) or "invalid")

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return answer(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(CorruptPartition)
    async def corrupt(request, error: CorruptPartition):
        from stock_assets.cli.common import repair_command

        return answer(500, f"{error}; repair: {repair_command(error)}")


def _describe(item: dict) -> str:
    """One validation problem as `query limit: Input should be ...`."""
    location = " ".join(str(part) for part in item.get("loc", ()))
    return f"{location}: {item.get('msg', 'invalid')}".strip(": ")
