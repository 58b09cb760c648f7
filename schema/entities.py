"""Federation entities: `_entities` representations checked, then resolved by their types."""

import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from strawberry.federation.schema_directives import Key
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition

from gateway.errors import BadUserInput, GatewayError
from schema.cached_subtrees import made
from schema.permissions import RequireScope

T = TypeVar("T")

_NAME = re.compile(r"[^\s/\\?#%\x00-\x1f\x7f]{1,128}")
_TEXT = re.compile(r"[^\\?#%\x00-\x1f\x7f]{1,1024}")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")
TEXT_KEY_FIELDS = frozenset({"repo_url", "path", "ref"})
"""Key fields holding URLs and paths (`/` allowed, up to 1024 characters); every other key
field is a name or an id (1..128 characters, no whitespace or `/`). Neither kind may hold a
control character, `\\`, `?`, `#`, `%` or a `.` or `..` path segment."""

_READ = RequireScope("read")


@dataclass(frozen=True)
class Entity:
    """An entity type: its class (with `resolve_reference`) and its key field sets."""

    origin: Any
    keys: tuple[frozenset[str], ...]


def entity_table(type_map: Mapping[str, Any]) -> dict[str, Entity]:
    """The entities of a built schema's type map: object types with `@key` and a resolver."""
    table: dict[str, Entity] = {}
    for name, concrete in type_map.items():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        keys = tuple(
            frozenset(str(d.fields).split())
            for d in definition.directives or ()
            if isinstance(d, Key)
        )
        if keys and hasattr(definition.origin, "resolve_reference"):
            table[name] = Entity(definition.origin, keys)
    return table


def resolve_entities(
    info: Info[Any, Any],
    representations: Sequence[object],
    entities: Mapping[str, Entity],
    max_count: int,
) -> list[Awaitable[Any] | GatewayError]:
    """One item per representation: its entity being resolved, or the reason it is refused.

    Needs the `read` scope; more than `max_count` representations refuse the whole field.
    Items of one type and account resolve through the request's loaders, so they share a batch.
    """
    _READ.has_permission(None, info)
    if len(representations) > max_count:
        raise BadUserInput(
            f"_entities takes at most {max_count} representations, got {len(representations)}"
        )
    items: list[Awaitable[Any] | GatewayError] = []
    for representation in representations:
        try:
            entity, keys = _checked(representation, entities)
        except BadUserInput as error:
            items.append(error)
            continue
        items.append(entity.origin.resolve_reference(info=info, **keys))
    return items


def _checked(
    representation: object, entities: Mapping[str, Entity]
) -> tuple[Entity, dict[str, str]]:
    """The entity and key values of a well-formed representation, else BAD_USER_INPUT."""
    if not isinstance(representation, dict):
        raise BadUserInput("an entity representation must be an object with __typename and keys")
    typename = representation.get("__typename")
    entity = entities.get(typename) if isinstance(typename, str) else None
    if entity is None:
        known = ", ".join(sorted(entities))
        raise BadUserInput(
            f"__typename {_shown(typename)} is not an entity here; entities: {known}"
        )
    fields = frozenset(representation) - {"__typename"}
    if fields not in entity.keys:
        wanted = " or ".join(repr(" ".join(sorted(k))) for k in entity.keys)
        given = " ".join(str(f) for f in representation if f != "__typename")
        raise BadUserInput(
            f"a {typename} representation needs exactly the key fields {wanted}, "
            f"got {_shown(given)}"
        )
    for field in fields:
        value = representation[field]
        pattern = _TEXT if field in TEXT_KEY_FIELDS else _NAME
        if not isinstance(value, str) or not pattern.fullmatch(value) or _DOT_SEGMENT.search(value):
            raise BadUserInput(f"{typename}.{field} {_shown(value)} is not a valid key value")
    return entity, {field: representation[field] for field in fields}


def _shown(value: object) -> str:
    """`value` for an error message: its repr, cut to 64 characters."""
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


def only_item(items: Sequence[T | None]) -> T:
    """The item of a one-key list lookup; a failed item (its error, never None) is raised."""
    [item] = items
    if isinstance(item, GatewayError):
        raise item
    if item is None:
        raise AssertionError("a list lookup item is its value or its error, never None")
    return made(item)  # an entity is completed as `_Entity`, never kept
