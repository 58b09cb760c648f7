"""Reverse joins: a field of a gateway type answered by the remote server, one fetch per request.

`PagerDutyUser_v1.app_interface_user` looks users up with the remote root field's generic
filter (`users_v1(filter: {pagerduty_username: {in: [...]}})`), pinned to the request's sha.
The caller's sub-selection is forwarded without aliases (the gateway resolves them from the
field names) and with `__typename` in every selection set (the remote types are resolved by it).
"""

import json
from collections.abc import Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    SelectionNode,
    SelectionSetNode,
    get_nullable_type,
    is_abstract_type,
    print_ast,
)

from gateway.federation.plan import PREFIX
from gateway.federation.table import ReverseJoin

KEY = PREFIX + "key"


def remote_query(
    join: ReverseJoin,
    field_nodes: Sequence[FieldNode],
    fragments: dict[str, FragmentDefinitionNode],
) -> str:
    """The remote document answering `join` for the keys in variable `$keys` (a filter)."""
    selections: list[SelectionNode] = []
    for node in field_nodes:
        if node.selection_set is not None:
            selections.extend(_plain(node.selection_set, fragments).selections)
    body = print_ast(SelectionSetNode(selections=tuple(selections)))
    return (
        f"query GatewayReverseJoin($keys: JSON) {{ {join.remote_root}(filter: $keys) "
        f"{{ {KEY}: {join.remote_key} __typename {body[1:-1]} }} }}"
    )


def keys_filter(join: ReverseJoin, keys: Sequence[str]) -> dict[str, Any]:
    """The `$keys` variable: the remote generic filter `{<remote_key>: {in: keys}}`."""
    return {"keys": {join.remote_key: {"in": list(keys)}}}


def _plain(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> SelectionSetNode:
    """Aliases and directives removed, fragments inlined, `__typename` in every set."""
    selections: list[SelectionNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            inner = (
                None
                if selection.selection_set is None
                else _with_typename(_plain(selection.selection_set, fragments))
            )
            selections.append(
                FieldNode(
                    name=selection.name,
                    arguments=selection.arguments,
                    directives=(),
                    selection_set=inner,
                )
            )
        elif isinstance(selection, InlineFragmentNode):
            selections.append(
                InlineFragmentNode(
                    type_condition=selection.type_condition,
                    directives=(),
                    selection_set=_plain(selection.selection_set, fragments),
                )
            )
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            selections.append(
                InlineFragmentNode(
                    type_condition=fragment.type_condition,
                    directives=(),
                    selection_set=_plain(fragment.selection_set, fragments),
                )
            )
    return SelectionSetNode(selections=tuple(selections))


def _with_typename(selection_set: SelectionSetNode) -> SelectionSetNode:
    typename = FieldNode(name=NameNode(value="__typename"), arguments=(), directives=())
    return SelectionSetNode(selections=(*selection_set.selections, typename))


def decode_json_scalars(value: Any, type_: GraphQLOutputType, schema: GraphQLSchema) -> Any:
    """`value` as the remote server answered it, with its JSON-scalar strings decoded, so the
    gateway's own JSON scalar serialises them back to the same strings (not twice encoded)."""
    named = get_nullable_type(type_)
    if value is None:
        return None
    if isinstance(named, GraphQLList):
        return [decode_json_scalars(item, named.of_type, schema) for item in value]
    if isinstance(named, GraphQLScalarType):
        return json.loads(value) if named.name == "JSON" and isinstance(value, str) else value
    if not isinstance(value, dict):
        return value
    concrete = schema.get_type(str(value.get("__typename"))) if is_abstract_type(named) else named
    if not isinstance(concrete, GraphQLObjectType):
        return value
    fields = concrete.fields
    return {
        name: decode_json_scalars(item, fields[name].type, schema) if name in fields else item
        for name, item in value.items()
    }
