"""The extension table's vocabulary: live fields on remote types, and the fields serving them."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

Group = tuple[str, str, str]
"""(system, account, kind): the keys of one group are looked up in one batch."""


@dataclass(frozen=True)
class Lookup:
    """What one parent object needs: keys of a group, or every item of it (`keys` None)."""

    group: Group
    keys: tuple[str, ...] | None


@dataclass(frozen=True)
class Call:
    """One call of a gateway root field answering `keys` of a group."""

    args: Mapping[str, Any]
    keys: tuple[str, ...] | None


@dataclass(frozen=True)
class Kind:
    """How the gateway serves a (system, kind) in batches, and how its items map back by key.

    `calls(account, keys)` are the calls of `field` for a batch (one for list fields, one per
    key for single-object fields). Items are matched to keys by their `item_key` field; a field
    answering one item per key asked (`item_key` None) matches by the key it was asked for.
    The live value is the item's `value` field, or the item itself. `per_key`: each call
    answers one key with its whole answer (an object, or a list), and a failed call is that
    key's failure only.
    """

    field: str
    calls: Callable[[str, tuple[str, ...] | None], Sequence[Call]]
    item_key: str | None = None
    value: str | None = None
    what: str = "item"
    per_key: bool = False


@dataclass(frozen=True)
class LiveField:
    """An extension field on a remote type, declared next to the gateway's schema.

    `definition` is the SDL of the field (with its description); `key_selection` what the
    gateway reads from the parent; `lookup(keys, args)` what the parent needs (None: the
    value is null); `many`: the value is the list of items found for the keys, else one item.
    """

    type_name: str
    field_name: str
    definition: str
    key_selection: str
    lookup: Callable[[Mapping[str, Any], Mapping[str, Any]], Lookup | None]
    many: bool = False


@dataclass(frozen=True)
class ReverseJoin:
    """`type_name.field_name`: the remote `remote_root` item whose `remote_key` is the parent's
    `parent_key` attribute (null with NOT_FOUND when there is none)."""

    type_name: str
    field_name: str
    definition: str
    parent_key: str
    remote_root: str
    remote_key: str


@dataclass(frozen=True)
class ExtensionTable:
    """Every live field, and every kind of batch serving them, by (system, kind)."""

    fields: Sequence[LiveField]
    kinds: Mapping[tuple[str, str], Kind]
    reverse: Sequence[ReverseJoin] = ()

    def sdl(self) -> str:
        """`extend type` blocks adding every live field to its type."""
        by_type: dict[str, list[str]] = {}
        fields: list[LiveField | ReverseJoin] = [*self.fields, *self.reverse]
        for field in fields:
            by_type.setdefault(field.type_name, []).append(field.definition)
        return "\n".join(
            f"extend type {name} {{\n" + "\n".join(defs) + "\n}" for name, defs in by_type.items()
        )

    @cached_property
    def _index(self) -> dict[tuple[str, str], LiveField]:
        return {(field.type_name, field.field_name): field for field in self.fields}

    def field(self, type_name: str, field_name: str) -> LiveField | None:
        """The live field `field_name` of `type_name`, if there is one."""
        return self._index.get((type_name, field_name))

    def names(self) -> frozenset[str]:
        """Every live field name (a cheap first test of whether a document uses one)."""
        live = {field.field_name for field in self.fields}
        return frozenset(live | {join.field_name for join in self.reverse})
