"""Every `.gql` operation validates against its schema; its models are qenerate's, regenerated."""

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    build_schema,
    parse,
    validate,
)

from reconcile_client.integrations.ldap_users_api import USERNAMES_PER_FIELD, ldap_query
from reconcile_client.integrations.slack_usergroups_api import Lookups
from reconcile_client.integrations.slack_usergroups_state import OwnersRef, PagerDutyRef
from reconcile_client.operations import (
    ESCALATION_POLICY_USERS,
    GITHUB_OWNERS_DESIRED_STATE,
    GITHUB_OWNERS_RECONCILE,
    GITHUB_OWNERS_TASK,
    INTEGRATIONS,
    LDAP_USER,
    LDAP_USERS_WITH_PATHS,
    OPENSHIFT_NAMESPACES_DESIRED_STATE,
    OPENSHIFT_NAMESPACES_RECONCILE,
    OPENSHIFT_NAMESPACES_TASK,
    OWNERS,
    SCHEDULE_USERS,
    SLACK_USERGROUPS_DESIRED_STATE,
    SLACK_USERGROUPS_JOINED,
    SLACK_USERGROUPS_RECONCILE,
    SLACK_USERGROUPS_TASK,
    VCS_FILE,
    VCS_FILE_SYNC,
    VCS_FILE_SYNC_TASK,
    Fragment,
    Operation,
)
from tests.client.recordings import qontract_server_file
from tests.emulators.qontract_server import SDL as QONTRACT_SERVER_SDL
from tests.support import qenerate
from tests.support.required import skip_unless_required

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_SCHEMA = build_schema(
    (REPO_ROOT / "schema" / "schema.graphql").read_text(), assume_valid_sdl=True
)  # Federation directives (@link, @key) are used there, not declared
QONTRACT_SERVER_SCHEMA = build_schema(QONTRACT_SERVER_SDL)
REAL_QONTRACT_SERVER_SCHEMA = build_schema(qontract_server_file("schema.graphql").read_text())
GQL_DIR = REPO_ROOT / "reconcile_client" / "gql"


GATEWAY_OPERATIONS = [
    SLACK_USERGROUPS_RECONCILE,
    SLACK_USERGROUPS_TASK,
    OPENSHIFT_NAMESPACES_RECONCILE,
    OPENSHIFT_NAMESPACES_TASK,
    GITHUB_OWNERS_RECONCILE,
    GITHUB_OWNERS_TASK,
    VCS_FILE_SYNC,
    VCS_FILE_SYNC_TASK,
    VCS_FILE,
]


def lookup_document(owners: bool) -> str:
    lookups = Lookups()
    lookups.pagerduty.update(
        {
            PagerDutyRef("app-sre", "schedule", "PA"),
            PagerDutyRef("app-sre", "schedule", "PB"),
            PagerDutyRef("other", "schedule", "PC"),
            PagerDutyRef("app-sre", "escalation_policy", "EP1"),
        }
    )
    if owners:
        lookups.owners.update({OwnersRef("https://github.com/o/r", "main")})
    query = lookups.query()
    assert query is not None
    return query[0]


def assert_valid(schema: GraphQLSchema, document: str) -> None:
    errors = validate(schema, parse(document))
    assert not errors, [error.message for error in errors]


@pytest.mark.parametrize("operation", GATEWAY_OPERATIONS, ids=lambda operation: operation.name)
def test_gateway_operation_validates_against_the_exported_schema(operation: Operation[Any]) -> None:
    assert_valid(GATEWAY_SCHEMA, operation.document)


def test_pagerduty_lookup_query_validates_against_the_exported_schema() -> None:
    assert_valid(GATEWAY_SCHEMA, lookup_document(owners=False))


def test_lookup_query_with_owners_validates_against_the_exported_schema() -> None:
    assert_valid(GATEWAY_SCHEMA, lookup_document(owners=True))


def test_ldap_check_query_of_several_aliases_validates_against_the_exported_schema() -> None:
    usernames = [f"user{n}" for n in range(USERNAMES_PER_FIELD + 1)]
    document, variables = ldap_query(usernames)
    assert_valid(GATEWAY_SCHEMA, document)
    assert [len(variables[name]) for name in ("u0", "u1")] == [USERNAMES_PER_FIELD, 1]


QONTRACT_SERVER_OPERATIONS = [SLACK_USERGROUPS_DESIRED_STATE, INTEGRATIONS]


@pytest.mark.parametrize(
    "operation", QONTRACT_SERVER_OPERATIONS, ids=lambda operation: operation.name
)
def test_qontract_server_operation_validates_against_the_real_servers_schema(
    operation: Operation[Any],
) -> None:
    """The emulator's SDL is a subset of the real one, so both must accept the operation."""
    assert_valid(QONTRACT_SERVER_SCHEMA, operation.document)
    assert_valid(REAL_QONTRACT_SERVER_SCHEMA, operation.document)


def test_namespaces_operation_validates_against_the_real_servers_schema() -> None:
    """The emulator's SDL has no namespaces (the stand-in serves the real schema)."""
    assert_valid(REAL_QONTRACT_SERVER_SCHEMA, OPENSHIFT_NAMESPACES_DESIRED_STATE.document)


def test_ldap_users_operation_validates_against_the_real_servers_schema() -> None:
    """Its backrefs (`requests`, `queries`, `sre_checkpoints`) are not in the emulator's SDL:
    ldap-users-api is tested against the stand-in, which serves the real schema."""
    assert_valid(REAL_QONTRACT_SERVER_SCHEMA, LDAP_USERS_WITH_PATHS.document)


def test_joined_operation_validates_against_the_federating_gateways_merged_schema() -> None:
    """The schema gql/federated is generated against: the real server's and the gateway's."""
    introspection = json.loads(qenerate.QONTRACT_SERVER_INTROSPECTION.read_text())
    merged = build_client_schema(qenerate.federated_introspection(introspection)["data"])
    assert_valid(merged, SLACK_USERGROUPS_JOINED.document)
    assert validate(REAL_QONTRACT_SERVER_SCHEMA, parse(SLACK_USERGROUPS_JOINED.document)), (
        "the live fields are the gateway's, not qontract-server's"
    )


def test_github_owners_desired_state_validates_against_the_real_and_the_federated_schema() -> None:
    """Read from qontract-server, or the same document through a federating gateway (the small
    emulator's SDL has no bots: the stand-in, built from the real bundle, serves it)."""
    assert_valid(REAL_QONTRACT_SERVER_SCHEMA, GITHUB_OWNERS_DESIRED_STATE.document)
    introspection = json.loads(qenerate.QONTRACT_SERVER_INTROSPECTION.read_text())
    merged = build_client_schema(qenerate.federated_introspection(introspection)["data"])
    assert_valid(merged, GITHUB_OWNERS_DESIRED_STATE.document)


FRAGMENTS = [SCHEDULE_USERS, ESCALATION_POLICY_USERS, OWNERS, LDAP_USER]


@pytest.mark.parametrize(
    "operation",
    [
        *GATEWAY_OPERATIONS,
        *QONTRACT_SERVER_OPERATIONS,
        SLACK_USERGROUPS_JOINED,
        OPENSHIFT_NAMESPACES_DESIRED_STATE,
        GITHUB_OWNERS_DESIRED_STATE,
        LDAP_USERS_WITH_PATHS,
    ],
    ids=lambda op: op.name,
)
def test_each_binding_runs_the_operation_it_is_named_after(operation: Operation[Any]) -> None:
    definitions = parse(operation.document).definitions
    names = [d.name.value for d in definitions if isinstance(d, OperationDefinitionNode) and d.name]
    assert names == [operation.name]
    assert operation.result.__module__.startswith("reconcile_client.gql.")


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda fragment: fragment.name)
def test_each_fragment_binding_reads_the_fragment_it_is_named_after(
    fragment: Fragment[Any],
) -> None:
    node = parse(fragment.document).definitions[0]
    assert isinstance(node, FragmentDefinitionNode)
    assert node.name.value == fragment.name
    assert fragment.result.__name__ == fragment.name


def test_every_gql_file_asks_qenerate_for_pydantic_v2_and_has_its_module() -> None:
    sources = sorted(GQL_DIR.glob("*/*.gql"))
    assert sources
    for path in sources:
        assert path.read_text().startswith("# qenerate: plugin=pydantic_v2\n"), path
        assert (
            path.with_suffix(".py")
            .read_text()
            .startswith('"""\nGenerated by qenerate plugin=pydantic_v2.')
        ), f"{path.with_suffix('.py')} is not qenerate's"


def test_regenerating_gives_exactly_the_committed_modules() -> None:
    """Drift check: qenerate on the .gql files against today's schemas rewrites nothing.

    The gateway's schema is its Strawberry schema's introspection; qontract-server's is the real
    server's (tests/data/qontract_server/introspection.json).
    """
    directory = qenerate.install_dir()
    if not qenerate.installed(directory):
        skip_unless_required(
            f"qenerate is not installed in {directory}: python -m tests.support.qenerate install",
            qenerate.REQUIRE_VARIABLE,
        )
    generated = qenerate.generate(directory, GQL_DIR)
    committed = {path: path.read_text() for path in GQL_DIR.glob("*/*.py")}
    committed = {path: text for path, text in committed.items() if path.name != "__init__.py"}
    assert set(generated) == set(committed)
    stale = [
        str(path.relative_to(REPO_ROOT)) for path in generated if generated[path] != committed[path]
    ]
    assert not stale, f"regenerate with python -m tests.support.qenerate: {stale}"
