"""The stand-in's fast executor answers exactly as graphql-core does, and falls back on errors."""

import json
from typing import Any

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, get_introspection_query, parse
from graphql.execution.values import get_variable_values

from tests.emulators.qontract_bundle import BUNDLE_PATH, Bundle, load_bundle_dict, ref
from tests.emulators.qontract_execution import FallBack, FastExecution
from tests.emulators.qontract_schema import Touched, build_schema
from tests.emulators.qontract_server_standin import run_graphql
from tests.support.qontract_goldens import load_goldens

GOLDEN_REQUESTS = [
    e.json for g in load_goldens() for e in g.exchanges if e.json and "query" in e.json
]

QUERIES: list[dict[str, Any]] = [
    {
        "query": """
        query Q($skipRoles: Boolean!, $withName: Boolean = true) {
          __typename
          permissions_v1 {
            __typename
            ...Perm
            ... on PermissionSlackUsergroup_v1 {
              handle
              roles @skip(if: $skipRoles) { name }
              workspace { n: name name @include(if: $withName) }
            }
          }
        }
        fragment Perm on Permission_v1 { name service ...Desc }
        fragment Desc on Permission_v1 { description }
        """,
        "variables": {"skipRoles": False},
    },
    {
        "query": "query ($skipRoles: Boolean!) { permissions_v1 { ... on "
        "PermissionSlackUsergroup_v1 { roles @skip(if: $skipRoles) { name } handle } } }",
        "variables": {"skipRoles": True},
    },
    {"query": "{ users_v1 { roles { name } roles { description users { org_username } } } }"},
    {"query": "{ users_v1 { schema path labels tag_on_merge_requests schedules { name } } }"},
    {"query": "{ schedules_v1 { schedule { start users { name roles { path } } } } }"},
    {
        "query": 'query ($n: String = "bob") { users_v1(org_username: $n) { ...on User_v1 '
        "{ name } } }"
    },
    {"query": "{ users_v1(filter: {pagerduty_username: {ne: null}}) { org_username } }"},
    {
        "query": '{ roles_v1(filter: {permissions: {filter: {handle: {in: ["backend-team"]}}}}) '
        "{ name users { org_username } } }"
    },
    {
        "query": "{ integrations_v1 { name schemas } slack_workspaces_v1 { api_client "
        "{ global { max_retries } } integrations { name token { path field } } } }"
    },
    {"query": "{ slack_workspaces_v1 { name token { path } } }"},
    {"query": "{ users_v1(filter: {org_username: {in: 5}}) { name } }"},
    {"query": '{ __schema { queryType { name } } users_v1(org_username: "alice") { name } }'},
    {"query": "{ resources_v1 { path } }"},
]


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    """The schema of the recorded bundle."""
    return build_schema(Bundle.load(BUNDLE_PATH))


@pytest.mark.parametrize("request_body", GOLDEN_REQUESTS + QUERIES)
def test_fast_execution_equals_graphql_core(
    schema: GraphQLSchema, request_body: dict[str, Any]
) -> None:
    """Status, data, errors and the `$schema`s touched (in order) are graphql-core's."""
    args = (request_body["query"], request_body.get("operationName"), request_body.get("variables"))
    assert run_graphql(schema, *args) == run_graphql(schema, *args, fast=False)


@pytest.mark.parametrize(
    "query",
    [
        next(g for g in load_goldens() if g.name.startswith("03")).exchanges[0].json["query"],
        next(g for g in load_goldens() if g.name.startswith("04")).exchanges[0].json["query"],
    ],
    ids=["desired-state", "reconcile-permissions"],
)
def test_the_large_recorded_queries_take_the_fast_path(schema: GraphQLSchema, query: str) -> None:
    """The desired-state queries the benchmarks run never fall back to graphql-core."""
    document = parse(query)
    operation = document.definitions[-1]
    assert isinstance(operation, OperationDefinitionNode)
    variables = get_variable_values(schema, (), {})
    assert not isinstance(variables, list)
    FastExecution(schema, document, variables, Touched()).run(operation)


def test_errors_fall_back_to_graphql_cores_paths_and_partial_data() -> None:
    """A dangling reference and a missing required field give graphql-core's errors."""
    bundle = load_bundle_dict()
    users = bundle["data"]["/teams/app-sre/users/alice.yml"]
    users["roles"] = [ref("/nowhere.yml")]
    del bundle["data"]["/teams/app-sre/users/bob.yml"]["github_username"]
    schema = build_schema(Bundle.load(bundle))
    query = '{ users_v1(filter: {org_username: {in: ["alice", "bob"]}}) { roles { name } } '
    query += 'u: users_v1(org_username: "bob") { github_username } }'
    status, body = run_graphql(schema, query, None, None)
    assert (status, body) == run_graphql(schema, query, None, None, fast=False)
    bob_roles = [{"name": "app-sre"}, {"name": "app-sre-ic"}]
    assert body["data"] == {"users_v1": [{"roles": None}, {"roles": bob_roles}], "u": None}
    paths = [e["path"] for e in body["errors"]]
    assert paths == [["users_v1", 0, "roles", 0], ["u", 0, "github_username"]]


def test_introspection_falls_back(schema: GraphQLSchema) -> None:
    """Introspection is graphql-core's own, so the fast walk hands it over."""
    document = parse(get_introspection_query())
    variables = get_variable_values(schema, (), {})
    assert not isinstance(variables, list)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    with pytest.raises(FallBack):
        FastExecution(schema, document, variables, Touched()).run(operation)


def test_integral_numbers_print_as_javascript_prints_them() -> None:
    """A 2.0 in a bundle is `"2"` as a String and `30` as a number, never `2.0` or `30.0`."""
    bundle = load_bundle_dict()
    workspace = bundle["data"]["/dependencies/slack/coreos.yml"]
    workspace["name"] = 2.0
    workspace["api_client"]["global"]["timeout"] = 30.0
    schema = build_schema(Bundle.load(bundle))
    query = "{ slack_workspaces_v1 { name api_client { global { timeout } } } }"
    status, body = run_graphql(schema, query, None, None)
    assert status == 200
    first = body["data"]["slack_workspaces_v1"][0]
    assert first["name"] == "2"
    assert json.dumps(first["api_client"]["global"]["timeout"]) == "30"
