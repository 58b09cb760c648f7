"""Unexpected exceptions reach the client as INTERNAL with no detail; GatewayErrors keep theirs."""

import strawberry
from prometheus_client import CollectorRegistry

from gateway.errors import NotFound
from gateway.graphql_errors import INTERNAL_MESSAGE, format_error
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema import GatewaySchema
from schema.extensions import limit_extensions


@strawberry.type
class FailingQuery:
    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("db password is hunter2")

    @strawberry.field
    def missing(self) -> str:
        raise NotFound("schedule PXYZ not found", resource="schedule")


def schema_with(query: type) -> GatewaySchema:
    metrics = GatewayMetrics(CollectorRegistry())
    return GatewaySchema(query=query, extensions=limit_extensions(QueryLimits(), metrics))


async def test_unexpected_exception_is_masked_as_internal() -> None:
    result = await schema_with(FailingQuery).execute("{ broken }")
    assert result.errors is not None
    error = format_error(result.errors[0], "req-1")
    assert error["message"] == INTERNAL_MESSAGE
    assert "hunter2" not in str(error)
    assert error["extensions"] == {"code": "INTERNAL", "request_id": "req-1"}


async def test_gateway_error_keeps_its_message_code_and_extensions() -> None:
    result = await schema_with(FailingQuery).execute("{ missing }")
    assert result.errors is not None
    error = format_error(result.errors[0], "req-2")
    assert error["message"] == "schedule PXYZ not found"
    assert error["extensions"] == {
        "code": "NOT_FOUND",
        "request_id": "req-2",
        "resource": "schedule",
    }
