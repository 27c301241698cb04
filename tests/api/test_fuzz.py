"""A property-based fuzz of every endpoint against the app (schemathesis): no 5xx, every
answer as the OpenAPI document says. Endpoints that launch runs are fuzzed with a token
set and none sent: each must answer 401 and launch nothing."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from stock_assets.api.app import create_app

from .conftest import point_at

# positive_data_acceptance is left out: values the schema allows can still be refused by
# the project's validators (a date outside the calendar, an unknown metric) with a 422
CHECKS = [
    schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, negative_data_rejection,
]  # fmt: skip
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.fixture
def fuzzed(data_copy, monkeypatch):
    """The apps read their environment per request: this test's is a copy of the data."""
    return point_at(monkeypatch, data_copy)


# the apps are built here (their documents need no data); each request reads the env
reads = schemathesis.openapi.from_asgi("/openapi.json", create_app(token="")).exclude(tag="work")
mutations = schemathesis.openapi.from_asgi("/openapi.json", create_app(token="s3cret")).include(
    method=["POST", "DELETE"]
)


@reads.parametrize()
@SETTINGS
def test_no_server_error_and_no_schema_violation(case, fuzzed):
    case.call_and_validate(checks=CHECKS)


@mutations.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_mutations_without_the_token_are_401(case, fuzzed):
    from stock_assets.cli.common import dagster_instance

    runs = dagster_instance().get_runs_count()
    response = case.call()
    if case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, response.text
    else:  # schemathesis also tries other methods on the path: refused, never served
        assert response.status_code in (401, 405, 422), (case.method, response.text)
    assert dagster_instance().get_runs_count() == runs
