"""Operation names are metric labels only when a registered client uses them; others are `other`."""

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from graphql import DocumentNode, OperationDefinitionNode, parse

import reconcile_client
from reconcile_client import event_log_sink
from reconcile_client.integrations.ldap_users_api import ldap_query
from reconcile_client.integrations.slack_usergroups_api import Lookups
from reconcile_client.integrations.slack_usergroups_state import PagerDutyRef
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
RANDOM_NAMES = 500


def operations(text: str) -> dict[tuple[str, str], float]:
    """`qontract_gateway_graphql_operations_total` by (operation, outcome), summed over types."""
    counts: dict[tuple[str, str], float] = {}
    pattern = r'^qontract_gateway_graphql_operations_total\{operation="([^"]*)",outcome="(\w+)"'
    for match in re.finditer(pattern + r',type="\w+"\} (\S+)$', text, re.MULTILINE):
        key = (match[1], match[2])
        counts[key] = counts.get(key, 0) + float(match[3])
    return counts


def test_random_operation_names_leave_metrics_small_and_known_names_counted(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = gateway_factory(
        auth={"secret": SECRET}, metrics={"operation_names": ["ConfiguredByOperator"]}
    )
    client = httpx.Client(base_url=server.url, timeout=30)

    def ask(name: str, by_operation_name: bool = False) -> None:
        body = {"query": f"query {name} {{ gateway_info_v1 {{ version }} }}"}
        client.post("/graphql", json={**body, "operationName": name} if by_operation_name else body)

    for name in ("SlackUsergroupsTask", "SlackUsergroupsLookups", "ConfiguredByOperator", "Warmup"):
        ask(name)
    before = client.get("/metrics").text
    for n in range(RANDOM_NAMES):
        ask(f"R{uuid.uuid4().hex}", by_operation_name=n % 2 == 0)
    after = client.get("/metrics").text

    assert len(after) - len(before) < 500, f"/metrics grew from {len(before)} to {len(after)}"
    counts = operations(after)
    assert counts[("other", "error")] == RANDOM_NAMES + 1, counts
    assert counts[("SlackUsergroupsTask", "error")] == 1
    assert counts[("SlackUsergroupsLookups", "error")] == 1
    assert counts[("ConfiguredByOperator", "error")] == 1


def test_every_operation_the_client_sends_is_counted_by_name(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    lookups = Lookups()
    lookups.pagerduty.add(PagerDutyRef("app-sre", "schedule", "PS00001"))
    query = lookups.query()
    assert query is not None
    shipped = Path(reconcile_client.__file__).parent.joinpath("gql").rglob("*.gql")
    documents: list[DocumentNode] = [
        parse(query[0]),
        parse(ldap_query(["alice"])[0]),
        parse(event_log_sink.SUBSCRIPTION),
        parse(event_log_sink.ACKNOWLEDGE),
        *(parse(path.read_text()) for path in shipped),
    ]
    names = {
        definition.name.value
        for document in documents
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode) and definition.name
    }
    server = gateway_factory()
    for name in names:
        httpx.post(
            f"{server.url}/graphql",
            json={"query": f"query {name} {{ gateway_info_v1 {{ version }} }}"},
            timeout=30,
        )
    counted = {name for name, _ in operations(httpx.get(f"{server.url}/metrics").text)}
    assert names <= counted
