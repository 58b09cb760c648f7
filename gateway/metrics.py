"""Prometheus metrics of the HTTP and GraphQL layers, on a registry owned by one app."""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The operations reconcile_client sends (its .gql documents and those it builds in code), counted
# by name. Listed here because the client is a distribution of its own that the server does not
# install; tests/security/test_metric_labels.py fails when the client sends one not listed.
CLIENT_OPERATIONS = frozenset(
    {
        "EventLogSink",
        "EventLogSinkAck",
        "GitHubOwnersDesiredState",
        "GitHubOwnersReconcile",
        "GitHubOwnersTask",
        "Integrations",
        "LdapUsersCheck",
        "LdapUsersWithPaths",
        "OpenShiftNamespacesDesiredState",
        "OpenShiftNamespacesReconcile",
        "OpenShiftNamespacesTask",
        "SlackUsergroupsDesiredState",
        "SlackUsergroupsJoined",
        "SlackUsergroupsLookups",
        "SlackUsergroupsReconcile",
        "SlackUsergroupsTask",
        "VcsFile",
        "VcsFileSync",
        "VcsFileSyncTask",
    }
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """HTTP requests, GraphQL operations and errors by code, Redis readiness, task backlog."""

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
        self.redis_up = Gauge(
            "qontract_gateway_redis_up",
            "1 when Redis answered the last /readyz PING in time, else 0",
            registry=registry,
        )
        self.tasks = Gauge(
            "qontract_gateway_tasks",
            "Tasks in the shared task indexes by state (pending, running), read by the sweep",
            ["state"],
            registry=registry,
        )
        self.task_oldest_seconds = Gauge(
            "qontract_gateway_task_oldest_seconds",
            "Age of the oldest task by state: since submission (pending), since start (running)",
            ["state"],
            registry=registry,
        )
        self.task_queue_messages = Gauge(
            "qontract_gateway_task_queue_messages",
            "Delivery messages waiting in each Celery broker queue (serve --role api)",
            ["queue"],
            registry=registry,
        )

    def operation_label(self, name: str | None) -> str:
        """`name` when it is a known operation, `anonymous` without one, else `other`."""
        if not name:
            return "anonymous"
        return name if name in self.operation_names else "other"
