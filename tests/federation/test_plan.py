"""Planning and splicing as data: forwarded documents qontract-server accepts, splices by key."""

import json
from typing import Any

import pytest
from graphql import (
    GraphQLError,
    build_client_schema,
    introspection_from_schema,
    parse,
    validate,
)
from graphql import build_schema as graphql_build_schema
from prometheus_client import CollectorRegistry

from gateway.federation.merge import MergedSchema, SchemaConflict, merge_schema
from gateway.federation.plan import PREFIX, ReservedAlias, plan_operation
from gateway.federation.splice import Splicer
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from resolvers.systems import SYSTEMS
from schema import build_schema
from schema.app_interface import TABLE
from tests.emulators.qontract_bundle import GOLDENS_DIR, INTROSPECTION_PATH

INTROSPECTION = json.loads(INTROSPECTION_PATH.read_text())
INTROSPECTION = INTROSPECTION.get("data", INTROSPECTION)
REMOTE = build_client_schema(INTROSPECTION)
DESIRED = json.loads((GOLDENS_DIR / "03-desired-state.json").read_text())["request"]["json"][
    "query"
]


@pytest.fixture(scope="module")
def merged() -> MergedSchema:
    """The gateway schema merged with the recorded qontract-server introspection."""
    gateway = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    return merge_schema(gateway._schema, INTROSPECTION, TABLE.sdl())


def forwarded_for(merged: MergedSchema, document: str, name: str | None = None) -> str:
    """The document the plan forwards, after checking the caller's document is valid."""
    parsed = parse(document)
    assert validate(merged.schema, parsed) == []
    plan = plan_operation(parsed, name, merged.schema, merged.remote_roots, TABLE)
    assert plan.forwarded is not None
    return plan.forwarded


def test_the_merged_schema_has_both_roots_and_documented_live_fields(
    merged: MergedSchema,
) -> None:
    """Remote roots, gateway roots, live fields with descriptions; JSON is the gateway's."""
    query = merged.schema.query_type
    assert query is not None
    assert {"users_v1", "permissions_v1", "pagerduty_schedules_v1"} <= set(query.fields)
    assert "pagerduty_schedules_v1" not in merged.remote_roots
    target = merged.schema.get_type("PagerDutyTarget_v1")
    assert isinstance(target, type(query))
    assert "on call now" in (target.fields["oncall_users"].description or "")
    assert len(merged.remote_roots) == len(REMOTE.query_type.fields)  # type: ignore[union-attr]


def test_a_conflicting_type_name_is_refused() -> None:
    """A remote type named like a gateway type (other than a shared scalar) is a conflict."""
    gateway = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    remote = json.loads(json.dumps(INTROSPECTION))
    text = json.dumps(remote).replace('"User_v1"', '"SlackUser_v1"')
    with pytest.raises(SchemaConflict):
        merge_schema(gateway._schema, json.loads(text), TABLE.sdl())


def test_the_forwarded_desired_state_query_is_valid_for_qontract_server(
    merged: MergedSchema,
) -> None:
    """Live fields out, reserved key fields in, the caller's fragment kept, the variable used
    only by a live field's directive and the gateway root field dropped."""
    document = (
        DESIRED.replace("query SlackUsergroupsDesiredState {", "query D($x: Boolean!) {")
        .replace(
            "escalationPolicyID\n",
            "escalationPolicyID\n oncall_users @include(if: $x) { ...P }\n",
            1,
        )
        .replace("ownersFromRepos\n", "ownersFromRepos\n repo_owners { approvers }\n", 1)
        .replace("users: users_v1 {", "info: gateway_info_v1 { version } users: users_v1 { ...U")
        + " fragment U on User_v1 { org_username } fragment P on PagerDutyUser_v1 { username }"
    )
    forwarded = forwarded_for(merged, document)
    assert validate(REMOTE, parse(forwarded)) == []
    assert "oncall_users" not in forwarded
    assert "repo_owners" not in forwarded
    assert "gateway_info_v1" not in forwarded
    assert "$x" not in forwarded
    assert "fragment U on User_v1" in forwarded
    assert "fragment P" not in forwarded
    assert f"{PREFIX}scheduleID: scheduleID" in forwarded
    assert f"{PREFIX}typename: __typename" in forwarded


def test_a_fragment_used_twice_records_both_paths(merged: MergedSchema) -> None:
    """A named fragment with a live field spread at two places: two parents' paths, one
    transformed fragment."""
    document = parse(
        """{ a: users_v1 { ...S } b: roles_v1 { users { ...S } } }
        fragment S on User_v1 { org_username slack_user(workspace: "coreos") { id } }"""
    )
    plan = plan_operation(document, None, merged.schema, merged.remote_roots, TABLE)
    assert [o.path for o in plan.occurrences] == [("a",), ("b", "users")]
    assert plan.forwarded is not None
    assert plan.forwarded.count("fragment S on User_v1") == 1


def test_a_reserved_alias_is_refused(merged: MergedSchema) -> None:
    """No caller alias may start with the reserved prefix."""
    with pytest.raises(ReservedAlias):
        plan_operation(
            parse("{ users_v1 { _qgw_x: org_username } }"),
            None,
            merged.schema,
            merged.remote_roots,
            TABLE,
        )


def test_splicing_is_by_key_and_strips_only_what_was_added(merged: MergedSchema) -> None:
    """Results come back in another order than the parents: each goes to its own parent;
    the reserved keys go, the caller's fields stay; an item left {} is dropped."""
    document = parse(
        """query Q($x: Boolean!) { users_v1 { org_username
          me: slack_user(workspace: "coreos") @include(if: $x) { id } } }"""
    )
    plan = plan_operation(document, "Q", merged.schema, merged.remote_roots, TABLE)

    def answer() -> dict[str, Any]:
        keys = {f"{PREFIX}typename": "User_v1"}
        return {
            "users_v1": [
                {"org_username": "alice", **keys, f"{PREFIX}org_username": "alice"},
                {"org_username": "bob", **keys, f"{PREFIX}org_username": "bob"},
                {"org_username": "zed", **keys, f"{PREFIX}org_username": "zed"},
            ]
        }

    data = answer()
    splicer = Splicer(plan, TABLE, merged.schema, {"x": True})
    splicer.collect(data)
    documents = splicer.gateway_documents()
    assert len(documents) == 1  # one batch for (slack, coreos, users)
    alias = next(iter(splicer.batches.values())).calls[0][0]
    gateway = {
        alias: [
            {f"{PREFIX}key": "bob", "id": "U2"},
            {f"{PREFIX}key": "alice", "id": "U1"},
        ]
    }
    splicer.read(gateway, [])
    errors = splicer.splice(data)
    assert data == {
        "users_v1": [
            {"org_username": "alice", "me": {"id": "U1"}},
            {"org_username": "bob", "me": {"id": "U2"}},
            {"org_username": "zed", "me": None},
        ]
    }
    assert [(e.path, e.original_error.code.value) for e in errors] == [  # type: ignore[union-attr]
        (["users_v1", 2, "me"], "NOT_FOUND")
    ]
    skipped = answer()
    splicer = Splicer(plan, TABLE, merged.schema, {"x": False})
    splicer.collect(skipped)
    assert splicer.gateway_documents() == []
    splicer.read({}, [])
    splicer.splice(skipped)
    assert skipped == {"users_v1": [{"org_username": n} for n in ("alice", "bob", "zed")]}


def test_a_failed_call_fails_each_of_its_parents_at_the_field(merged: MergedSchema) -> None:
    """The whole batch failing (an unknown account): every parent's value is null with the
    error at its own path."""
    document = parse('{ users_v1 { slack_user(workspace: "nope") { id } } }')
    plan = plan_operation(document, None, merged.schema, merged.remote_roots, TABLE)
    keys = {f"{PREFIX}typename": "User_v1"}
    data: dict[str, Any] = {"users_v1": [{**keys, f"{PREFIX}org_username": n} for n in ("a", "b")]}
    splicer = Splicer(plan, TABLE, merged.schema, None)
    splicer.collect(data)
    splicer.gateway_documents()
    alias = next(iter(splicer.batches.values())).calls[0][0]
    error = GraphQLError("unknown Slack workspace", path=[alias])
    splicer.read({}, [error])
    errors = splicer.splice(data)
    assert data == {"users_v1": [{"slack_user": None}, {"slack_user": None}]}
    assert [e.path for e in errors] == [
        ["users_v1", 0, "slack_user"],
        ["users_v1", 1, "slack_user"],
    ]


def test_live_fields_of_types_a_bundle_lacks_are_left_out() -> None:
    """A qontract-server schema with only some app-interface types still merges; the live
    fields of the types it has are there, the others left out."""
    gateway = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    small = graphql_build_schema(
        "scalar JSON type Query { users_v1(filter: JSON): [User_v1!] } "
        "type User_v1 { org_username: String! slack_user: String }"
    )
    remote = dict(introspection_from_schema(small))
    merged = merge_schema(gateway._schema, remote, TABLE.sdl())
    assert merged.schema.get_type("PagerDutyTarget_v1") is None
    user = merged.schema.get_type("User_v1")
    assert str(user.fields["slack_user"].type) == "String"  # type: ignore[union-attr]
    assert merged.remote_roots == frozenset({"users_v1"})
