"""Every `.gql` operation validates against its schema, and its pydantic model matches it."""

import types
import typing
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    parse,
    validate,
)
from pydantic import BaseModel

from reconcile_client.gql.gateway import reconcile_task, slack_usergroups_reconcile
from reconcile_client.gql.qontract_server import integrations, slack_usergroups_desired_state
from reconcile_client.integrations.slack_usergroups_api import Lookups
from reconcile_client.integrations.slack_usergroups_state import OwnersRef, PagerDutyRef
from reconcile_client.operations import Operation
from tests.client.recordings import qontract_server_file
from tests.emulators.qontract_server import SDL as QONTRACT_SERVER_SDL

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_SCHEMA = build_schema(
    (REPO_ROOT / "schema" / "schema.graphql").read_text(), assume_valid_sdl=True
)  # Federation directives (@link, @key) are used there, not declared
QONTRACT_SERVER_SCHEMA = build_schema(QONTRACT_SERVER_SDL)
REAL_QONTRACT_SERVER_SCHEMA = build_schema(qontract_server_file("schema.graphql").read_text())
GQL_DIR = REPO_ROOT / "reconcile_client" / "gql"


GATEWAY_OPERATIONS = [slack_usergroups_reconcile.OPERATION, reconcile_task.OPERATION]


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


@pytest.mark.parametrize("operation", GATEWAY_OPERATIONS, ids=lambda operation: operation.path)
def test_gateway_operation_validates_against_the_exported_schema(operation: Operation[Any]) -> None:
    assert_valid(GATEWAY_SCHEMA, operation.document)


def test_pagerduty_lookup_query_validates_against_the_exported_schema() -> None:
    assert_valid(GATEWAY_SCHEMA, lookup_document(owners=False))


def test_lookup_query_with_owners_validates_against_the_exported_schema() -> None:
    assert_valid(GATEWAY_SCHEMA, lookup_document(owners=True))


QONTRACT_SERVER_OPERATIONS = [slack_usergroups_desired_state.OPERATION, integrations.OPERATION]


@pytest.mark.parametrize(
    "operation", QONTRACT_SERVER_OPERATIONS, ids=lambda operation: operation.path
)
def test_qontract_server_operation_validates_against_the_real_servers_schema(
    operation: Operation[Any],
) -> None:
    """The emulator's SDL is a subset of the real one, so both must accept the operation."""
    assert_valid(QONTRACT_SERVER_SCHEMA, operation.document)
    assert_valid(REAL_QONTRACT_SERVER_SCHEMA, operation.document)


def test_every_gql_file_is_used_by_a_model_module() -> None:
    for path in GQL_DIR.rglob("*.gql"):
        assert path.with_suffix(".py").exists() or any(
            path.name in module.read_text() for module in GQL_DIR.rglob("*.py")
        ), f"{path} has no model module"


def models_in(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The models inside an annotation, with whether the annotation allows None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        nullable = type(None) in args
        return [(m, nullable) for a in args if a is not type(None) for m, _ in models_in(a)]
    if origin is list:
        return models_in(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    return []


def response_keys(selection_set: SelectionSetNode, typename: str | None) -> dict[str, FieldNode]:
    keys: dict[str, FieldNode] = {}
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            keys[(selection.alias or selection.name).value] = selection
        elif (
            isinstance(selection, InlineFragmentNode)
            and selection.type_condition is not None
            and selection.type_condition.name.value == typename
        ):
            keys.update(response_keys(selection.selection_set, typename))
    return keys


def assert_model_matches(
    model: type[BaseModel], selection_set: SelectionSetNode, where: str
) -> None:
    typename_field = model.model_fields.get("typename")
    literal = typing.get_args(typename_field.annotation) if typename_field else ()
    keys = response_keys(selection_set, literal[0] if literal else None)
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    assert set(fields) == set(keys), f"{where}: model {model.__name__} vs selection"
    for key, node in keys.items():
        nested = models_in(fields[key].annotation)
        if node.selection_set is not None:
            assert nested, f"{where}.{key}: a selection without a model"
            for nested_model, _ in nested:
                assert_model_matches(nested_model, node.selection_set, f"{where}.{key}")


@pytest.mark.parametrize(
    "operation",
    [
        slack_usergroups_reconcile.OPERATION,
        reconcile_task.OPERATION,
        slack_usergroups_desired_state.OPERATION,
        integrations.OPERATION,
    ],
    ids=lambda operation: operation.path,
)
def test_result_model_has_exactly_the_fields_the_operation_selects(
    operation: Operation[Any],
) -> None:
    definitions = parse(operation.document).definitions
    op = next(d for d in definitions if isinstance(d, OperationDefinitionNode))
    assert_model_matches(operation.result, op.selection_set, operation.path)


def test_fragment_models_have_exactly_the_fields_the_fragments_select() -> None:
    from reconcile_client.gql.gateway.pagerduty_users import (
        ESCALATION_POLICY_USERS,
        SCHEDULE_USERS,
    )
    from reconcile_client.gql.gateway.vcs_owners import OWNERS

    for fragment in (SCHEDULE_USERS, ESCALATION_POLICY_USERS, OWNERS):
        node = parse(fragment.document).definitions[0]
        assert isinstance(node, FragmentDefinitionNode)
        assert node.name.value == fragment.name
        assert_model_matches(fragment.result, node.selection_set, fragment.path)
