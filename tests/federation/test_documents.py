"""Joined documents as integrations write them: aliases, fragments, variables, directives."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.auth import mint_token
from gateway.graphql_view import GatewayGraphQL
from tests.emulators.qontract_bundle import BUNDLE_PATH, bundle_sha
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import Servers, post
from tests.support.server_thread import ServerThread

SHA = bundle_sha(BUNDLE_PATH)
SHAPED = """query Shaped($withOncall: Boolean!, $instance: String!) {
  perms: permissions_v1 {
    ... on PermissionSlackUsergroup_v1 { handle targets: pagerduty { ...Target } }
  }
  primary: pagerduty_schedules_v1(instance: $instance, ids: ["PSCHED1"]) { id }
}
fragment Target on PagerDutyTarget_v1 {
  name
  now: oncall_users @include(if: $withOncall) { login: username }
}"""
PLAIN = """{ perms: permissions_v1 {
  ... on PermissionSlackUsergroup_v1 { handle targets: pagerduty { name } } } }"""


def test_aliases_fragments_and_variables_used_only_by_gateway_fields(joined: Servers) -> None:
    """The caller's aliases and fragment apply to live fields; `$withOncall` and `$instance`
    are used only by gateway fields, so they are not forwarded (qontract-server refuses an
    unused variable); with the live field excluded, the answer is qontract-server's own."""
    gateway, standin, _, _ = joined
    with_oncall = post(gateway.url, SHAPED, withOncall=True, instance="app-sre")
    assert "errors" not in with_oncall
    assert with_oncall["data"]["primary"] == [{"id": "PSCHED1"}]
    targets = {
        t["name"]: t["now"] for p in with_oncall["data"]["perms"] for t in p.get("targets") or []
    }
    assert targets["app-sre-primary"] == [{"login": "alice"}, {"login": "bob"}]
    assert targets["app-sre-escalation"] == [{"login": "carol"}]
    forwarded = [r for r in standin.graphql_requests() if b"withOncall" in r.body]
    assert forwarded == []
    without = post(gateway.url, SHAPED, withOncall=False, instance="app-sre")
    plain = httpx.post(f"{standin.url}/graphqlsha/{SHA}", json={"query": PLAIN}).json()
    del without["data"]["primary"]
    assert without["data"] == plain["data"]


def test_items_left_empty_for_the_caller_are_dropped(joined: Servers) -> None:
    """As qontract-server drops `{}` from lists: the key fields the gateway added do not keep
    an item the caller selected nothing of."""
    gateway, _, _, _ = joined
    query = """query E($x: Boolean!) { permissions_v1 {
      ... on PermissionGithubOrgTeam_v1 { org }
      ... on PermissionSlackUsergroup_v1 { repo_owners @include(if: $x) { approvers } } } }"""
    assert post(gateway.url, query, x=False)["data"] == {"permissions_v1": []}
    shown = post(gateway.url, query, x=True)["data"]["permissions_v1"]
    assert len(shown) > 1
    assert all(set(item) == {"repo_owners"} for item in shown)


def test_skip_on_a_live_field_and_abstract_parents(joined: Servers) -> None:
    """@skip on the live field; parents reached through an interface and inline fragments."""
    gateway, _, _, _ = joined
    query = """query S($no: Boolean!) { permissions_v1 { __typename
      ... on PermissionSlackUsergroup_v1 { handle pagerduty {
        oncall_users @skip(if: $no) { username } } } } }"""
    shown = post(gateway.url, query, no=False)["data"]["permissions_v1"]
    hidden = post(gateway.url, query, no=True)["data"]["permissions_v1"]
    assert len(shown) == len(hidden)
    targets = [t for p in shown for t in p.get("pagerduty") or []]
    assert targets
    assert all(isinstance(t["oncall_users"], list) for t in targets)
    assert all(t == {} for p in hidden for t in p.get("pagerduty") or [])


def test_a_reserved_alias_is_bad_user_input(joined: Servers) -> None:
    """The gateway's alias prefix is refused, in joined and in pass-through queries."""
    gateway, _, _, _ = joined
    for query in (
        "{ users_v1 { _qgw_x: org_username } }",
        '{ users_v1 { _qgw_x: org_username slack_user(workspace: "coreos") { id } } }',
        "{ users_v1 { org_username } gateway_info_v1 { _qgw_v: version } }",
    ):
        body = post(gateway.url, query)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", query


def test_an_unknown_live_key_is_null_with_its_own_not_found(joined: Servers) -> None:
    """One schedule PagerDuty does not know: its value is null with NOT_FOUND at its path;
    every other target is served."""
    gateway, _, pagerduty, _ = joined
    del pagerduty.state.oncall["PSCHED1"]
    query = """{ permissions_v1 { ... on PermissionSlackUsergroup_v1 {
      pagerduty { name oncall_users { username } } } } }"""
    body = post(gateway.url, query)
    permissions = body["data"]["permissions_v1"]
    found = [
        (i, j, t) for i, p in enumerate(permissions) for j, t in enumerate(p.get("pagerduty") or [])
    ]
    missing = [(i, j) for i, j, t in found if t["name"] == "app-sre-primary"]
    assert missing
    assert all(t["oncall_users"] is None for _, _, t in found if t["name"] == "app-sre-primary")
    assert all(
        isinstance(t["oncall_users"], list) for _, _, t in found if t["name"] != "app-sre-primary"
    )
    paths = sorted(tuple(e["path"]) for e in body["errors"])
    expected = [("permissions_v1", i, "pagerduty", j, "oncall_users") for i, j in missing]
    assert paths == sorted(expected)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"NOT_FOUND"}


SECRET = "federation-test-secret-0123456789abcdef"


def test_app_interface_needs_its_scope_and_the_callers_token_is_never_forwarded(
    standin: QontractServerStandin,
    federated_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`read` alone cannot read app-interface; `app-interface:read` can; qontract-server gets
    the configured token verbatim (as qontract-reconcile sends it), never the caller's JWT."""
    monkeypatch.setenv("QGW_TEST_QS_TOKEN", "Basic cXM6c2VjcmV0")
    gateway = federated_factory(
        standin.url,
        auth={"secret": SECRET},
        qontract_server={"token": {"env": "QGW_TEST_QS_TOKEN"}, "auth_scheme": "verbatim"},
    )
    reader = mint_token(SECRET, "reader", ["read"], 1)
    app_reader = mint_token(SECRET, "integration", ["app-interface:read"], 1)
    query = '{ users_v1(org_username: "alice") { name } }'
    joined = '{ users_v1(org_username: "alice") { name } gateway_info_v1 { redis_mode } }'
    for document in (query, joined):
        refused = httpx.post(
            f"{gateway.url}/graphql",
            json={"query": document},
            headers={"authorization": f"Bearer {reader}"},
        ).json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", document
    standin.reset()
    allowed = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {app_reader}"},
    ).json()
    assert allowed["data"] == {"users_v1": [{"name": "Alice Archer"}]}
    sent = {r.headers.get("authorization") for r in standin.requests}
    assert sent == {"Basic cXM6c2VjcmV0"}
    anonymous = httpx.get(f"{gateway.url}/sha256")
    assert anonymous.status_code == 401


def test_graphiql_sees_the_merged_schema_with_documented_live_fields(joined: Servers) -> None:
    """Introspection (what GraphiQL sends) answers from the merged schema."""
    gateway, _, _, _ = joined
    body = post(
        gateway.url,
        """{ __schema { queryType { fields { name } } }
        __type(name: "PagerDutyTarget_v1") { fields { name description } } }""",
    )
    roots = {f["name"] for f in body["data"]["__schema"]["queryType"]["fields"]}
    assert {"users_v1", "permissions_v1", "pagerduty_schedules_v1"} <= roots
    fields = {f["name"]: f["description"] for f in body["data"]["__type"]["fields"]}
    assert "on call now" in fields["oncall_users"]


def test_the_gateways_limits_apply_before_anything_is_forwarded(joined: Servers) -> None:
    """Too many aliases (pass-through) or too deep (joined): refused, qontract-server not asked."""
    gateway, standin, _, _ = joined
    standin.reset()
    aliases = " ".join(f"a{n}: users_v1 {{ org_username }}" for n in range(40))
    many = post(gateway.url, f"{{ {aliases} }}")
    assert many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    deep = "roles { users { " * 8 + "org_username" + " } }" * 8
    too_deep = post(
        gateway.url, "{ users_v1 { " + deep + ' slack_user(workspace: "coreos") { id } } }'
    )
    assert too_deep["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert standin.count("/graphql") == 0


def test_a_refused_pass_through_query_is_refused_again_and_never_forwarded(
    joined: Servers,
) -> None:
    """Limit checks are kept per document: asked again, the answer is the same refusal, and
    qontract-server sees neither; an accepted document is then served."""
    gateway, standin, _, _ = joined
    standin.reset()
    for _ in range(2):
        body = post(gateway.url, "{ users_v1 { _qgw_x: org_username } }")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert standin.count("/graphql") == 0
    assert post(gateway.url, "{ users_v1 { org_username } }")["data"]["users_v1"]


def test_answers_are_encoded_with_orjson_and_json_for_wide_integers() -> None:
    """orjson refuses integers beyond 64 bits: those answers are encoded by `json` instead."""
    view: Any = None  # encode_json reads nothing of the view
    assert GatewayGraphQL.encode_json(view, {"a": "é", "n": 1}) == '{"a":"é","n":1}'.encode()
    assert GatewayGraphQL.encode_json(view, {"n": 2**70}) == b'{"n":1180591620717411303424}'


def test_pass_through_operation_names_are_bounded_metric_labels(joined: Servers) -> None:
    """A caller's own operation name is counted as `other`; a known client operation by name."""
    gateway, _, _, _ = joined
    for name in ("CallerChosenA", "CallerChosenB", "SlackUsergroupsDesiredState"):
        body = post(gateway.url, f"query {name} {{ users_v1 {{ org_username }} }}")
        assert body["data"]["users_v1"]
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert "CallerChosen" not in metrics
    counted = 'qontract_gateway_graphql_operations_total{operation="%s",outcome="ok",type="query"}'
    assert counted % "other" in metrics
    assert counted % "SlackUsergroupsDesiredState" in metrics
