"""Prometheus metrics of the HTTP and GraphQL layers, on a registry owned by one app."""

from collections.abc import Iterable, Iterator
from importlib.abc import Traversable
from importlib.resources import files

from graphql import GraphQLError, OperationDefinitionNode, parse
from prometheus_client import CollectorRegistry, Counter, Histogram

# reconcile_client operations whose documents are built in code, not shipped as .gql files.
CLIENT_OPERATIONS_BUILT_IN_CODE = ("SlackUsergroupsLookups", "EventLogSink", "EventLogSinkAck")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """HTTP requests, GraphQL operations and GraphQL errors by code."""

    def __init__(
        self, registry: CollectorRegistry, operation_names: Iterable[str] = frozenset()
    ) -> None:
        self.registry = registry
        self.operation_names = frozenset(operation_names)
        self.http_requests = Counter(
            "qontract_gateway_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.graphql_operations = Counter(
            "qontract_gateway_graphql_operations",
            "GraphQL operations by operation name, type and outcome",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.graphql_latency = Histogram(
            "qontract_gateway_graphql_operation_seconds",
            "GraphQL operation latency by type and outcome",
            ["type", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.graphql_errors = Counter(
            "qontract_gateway_graphql_errors",
            "GraphQL errors by extensions.code",
            ["code"],
            registry=registry,
        )

    def operation_label(self, name: str | None) -> str:
        """`name` when it is a known operation, `anonymous` without one, else `other`."""
        if not name:
            return "anonymous"
        return name if name in self.operation_names else "other"


def client_operation_names() -> frozenset[str]:
    """The operations reconcile_client sends: its documents under reconcile_client/gql and more."""
    names = set(CLIENT_OPERATIONS_BUILT_IN_CODE)
    for document in _gql_files(files("reconcile_client").joinpath("gql")):
        try:
            definitions = parse(document.read_text()).definitions
        except GraphQLError:
            continue
        names.update(
            definition.name.value
            for definition in definitions
            if isinstance(definition, OperationDefinitionNode) and definition.name
        )
    return frozenset(names)


def _gql_files(folder: Traversable) -> Iterator[Traversable]:
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _gql_files(entry)
        elif entry.name.endswith(".gql"):
            yield entry
