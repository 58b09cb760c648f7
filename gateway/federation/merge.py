"""The merged schema: a remote GraphQL server's types and root fields, the gateway's own, and
extension fields on the remote types."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    NameNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    build_client_schema,
    extend_schema,
    parse,
    print_schema,
)


class SchemaConflict(ValueError):
    """The remote schema cannot be merged (a type name means something else in the gateway)."""


@dataclass(frozen=True)
class MergedSchema:
    """The merged schema, its fingerprint, and which root fields the remote server serves."""

    schema: GraphQLSchema
    fingerprint: str
    remote_roots: frozenset[str]


def fingerprint_of(introspection: dict[str, Any]) -> str:
    """The sha256 of an introspection result, the identity of a remote schema."""
    text = json.dumps(introspection, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def merge_schema(
    gateway: GraphQLSchema,
    introspection: dict[str, Any],
    extensions_sdl: str,
    fingerprint: str | None = None,
) -> MergedSchema:
    """`gateway` extended with the remote schema's types, its Query fields and `extensions_sdl`.

    Scalars present in both (the `JSON` scalar) keep the gateway's definition; any other type
    name in both is a SchemaConflict; a remote root field whose name the gateway already has is
    left out. Gateway fields keep their resolvers; remote fields have none (never executed).
    """
    try:
        remote = build_client_schema(introspection)  # type: ignore[arg-type]
    except (TypeError, GraphQLError) as error:
        raise SchemaConflict(f"not a usable introspection: {error}") from None
    if remote.query_type is None or gateway.query_type is None:
        raise SchemaConflict("both schemas need a Query type")
    gateway_roots = set(gateway.query_type.fields)
    definitions: list[Any] = []
    remote_roots: set[str] = set()
    for node in parse(print_schema(remote)).definitions:
        if isinstance(node, SchemaDefinitionNode):
            continue
        name = node.name.value  # type: ignore[attr-defined]
        if name == remote.query_type.name and isinstance(node, ObjectTypeDefinitionNode):
            fields = tuple(f for f in node.fields or () if f.name.value not in gateway_roots)
            remote_roots.update(f.name.value for f in fields)
            definitions.append(
                ObjectTypeExtensionNode(
                    name=NameNode(value=gateway.query_type.name),
                    interfaces=(),
                    directives=(),
                    fields=fields,
                )
            )
            continue
        if name in gateway.type_map:
            if isinstance(node, ScalarTypeDefinitionNode):
                continue
            raise SchemaConflict(f"type {name} exists in both schemas")
        if hasattr(node, "name") and gateway.get_directive(name) is not None:
            continue
        definitions.append(node)
    try:
        merged = extend_schema(gateway, DocumentNode(definitions=tuple(definitions)))
        merged = extend_schema(merged, _applicable(merged, parse(extensions_sdl)))
    except (TypeError, GraphQLError) as error:
        raise SchemaConflict(str(error)) from None
    return MergedSchema(
        merged, fingerprint or fingerprint_of(introspection), frozenset(remote_roots)
    )


def _applicable(schema: GraphQLSchema, extensions: DocumentNode) -> DocumentNode:
    """The extensions whose type the schema has, without fields it already has."""
    kept: list[Any] = []
    for node in extensions.definitions:
        if not isinstance(node, ObjectTypeExtensionNode):
            kept.append(node)
            continue
        target = schema.type_map.get(node.name.value)
        if not isinstance(target, GraphQLObjectType):
            continue  # this bundle's schema has no such type: its live fields are left out
        fields = tuple(f for f in node.fields or () if f.name.value not in target.fields)
        if fields:
            kept.append(
                ObjectTypeExtensionNode(name=node.name, directives=(), interfaces=(), fields=fields)
            )
    return DocumentNode(definitions=tuple(kept))
