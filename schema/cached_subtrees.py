"""Cache-hit execution: what a resolver makes from one cached value is completed once per
selection, and kept with the value.

A root field's resolver hands the executor a `CachedItem` (`cached_item`; `schema.loaders.items`
for keyed lookups) instead of the Strawberry object or list: the value's `Subtrees` (kept with its
local-cache entry), the item's key, and how to make it. When every field the query selects below
it is a plain attribute (no resolver, argument, extension or permission), the completed item
depends on the value, the key and the selection alone, so `CachedSubtreeExecution` completes it
once through graphql-core, keeps the result with the value and serves it as is to later requests
with the same selection. Anything else (a resolver below, an error, `@defer`, a schema extension
hooking every field) is completed the ordinary way, every time.
"""

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar, cast
from weakref import ref

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.cache import Cached, Subtrees

Selection = tuple[tuple[str, str, "Selection | None"], ...]
"""What a query selects below an object: (response key, field name, its own selection)."""

R = TypeVar("R")

_CONDITIONS = frozenset({"skip", "include"})

SelectionMemo = dict[tuple[int, ...], tuple[tuple[Any, ...], "Selection | None"]]
_DOCUMENT_SELECTIONS: dict[int, tuple["ref[OperationDefinitionNode]", "SelectionMemo | None"]] = {}
"""Plain selections by operation id (None for one whose document has directives: then a
selection may depend on the variables), for as long as the operation is in use (a cached
document). By id, with a weak reference: an AST node's own hash walks the whole tree."""
_RUN_ONCE: SelectionMemo = {}
"""The memo of an operation run once so far: never filled (see `_selection_memo`)."""


def _has_directives(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDetails]
) -> bool:
    """Whether the operation, or any fragment of its document, carries a directive."""
    definitions = [fragment.definition for fragment in fragments.values()]
    pending: list[SelectionSetNode] = [operation.selection_set]
    pending += [definition.selection_set for definition in definitions]
    if operation.directives or any(definition.directives for definition in definitions):
        return True
    while pending:
        for node in pending.pop().selections:
            if node.directives:
                return True
            if isinstance(node, FieldNode | InlineFragmentNode) and node.selection_set:
                pending.append(node.selection_set)
            elif not isinstance(node, FragmentSpreadNode | FieldNode | InlineFragmentNode):
                return True  # a selection kind this walk does not know: assume the worst
    return False


def _selection_memo(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDetails]
) -> SelectionMemo | None:
    """The memo of `operation`'s plain selections, shared by the requests that run it from
    its second run on (a document run once, the common case of a new one, pays nothing)."""
    key = id(operation)
    known = _DOCUMENT_SELECTIONS.get(key)
    if known is None or known[0]() is not operation:
        _DOCUMENT_SELECTIONS[key] = (
            ref(operation, lambda _: _DOCUMENT_SELECTIONS.pop(key, None)),
            _RUN_ONCE,
        )
        return None
    if known[1] is _RUN_ONCE:
        memo: SelectionMemo | None = None if _has_directives(operation, fragments) else {}
        _DOCUMENT_SELECTIONS[key] = (known[0], memo)
        return memo
    return known[1]


def _ids(objects: Iterable[object]) -> tuple[int, ...]:
    return tuple(id(each) for each in objects)


class CachedItem:
    """An item (or a whole list) to be made by `make` from one cached value, whose `subtrees`
    keep it completed per selection under `key`."""

    __slots__ = ("key", "make", "subtrees")

    def __init__(self, key: Hashable, make: Callable[[], Any], subtrees: Subtrees) -> None:
        self.key = key
        self.make = make
        self.subtrees = subtrees


def cached_item(cached: Cached[Any], key: Hashable, make: Callable[[], R]) -> R:
    """What `make()` makes from `cached`'s value, handed to the executor as a `CachedItem`.

    `make` must depend on `key` and the value alone (and the account the value came from).
    Typed as `make`'s result: the executor is the only reader (Python callers use `made`).
    """
    return cast(R, CachedItem(key, make, cached.subtrees))


def made(item: R) -> R:
    """`item` itself, or what it makes when it is a `CachedItem` (for Python callers)."""
    if isinstance(item, CachedItem):
        return cast(R, item.make())
    return item


def _is_text_list(return_type: GraphQLOutputType) -> bool:
    """Whether `return_type` is a list of String or ID (each maybe non-null)."""
    if isinstance(return_type, GraphQLNonNull):
        return_type = return_type.of_type
    if not isinstance(return_type, GraphQLList):
        return False
    item = return_type.of_type
    if isinstance(item, GraphQLNonNull):
        item = item.of_type
    return item is GraphQLString or item is GraphQLID


class CachedSubtreeExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, serving a `CachedItem` from the subtree completed for its value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._selections: dict[tuple[int, int], tuple[FieldDetailsList, Selection | None]] = {}
        self._memo = (
            None
            if self.middleware_manager is not None and self.middleware_manager.middlewares
            else _selection_memo(self.operation, self.fragments)
        )

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """As graphql-core, but a `CachedItem` is served from (or fills) its value's subtrees."""
        if (
            type(result) is list
            and _is_text_list(return_type)
            and all(type(item) is str for item in result)
        ):
            return list(result)  # what completing each item would give, at C speed
        if type(result) is not CachedItem:
            return super().complete_value(
                return_type, field_details_list, info, path, result, position_context
            )
        selection = self._selection(return_type, field_details_list)
        if selection is None:
            return super().complete_value(
                return_type, field_details_list, info, path, result.make(), position_context
            )
        shape = (return_type, selection)
        completed = result.subtrees.get(shape, result.key)
        if completed is not None:
            return completed
        errors = len(self.collected_errors.errors)
        completed = super().complete_value(
            return_type, field_details_list, info, path, result.make(), position_context
        )
        if (
            completed is not None
            and not self.is_awaitable(completed)
            and len(self.collected_errors.errors) == errors
        ):
            result.subtrees.put(shape, result.key, completed)
        return completed

    def _selection(
        self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList
    ) -> Selection | None:
        """The plain selection below `return_type` (None when not all plain), once per request
        and field group."""
        key = (id(return_type), id(field_details_list))
        known = self._selections.get(key)
        if known is not None:
            return known[1]
        selection = self._document_selection(return_type, field_details_list)
        self._selections[key] = (field_details_list, selection)  # keeps the id from reuse
        return selection

    def _document_selection(
        self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList
    ) -> Selection | None:
        """The plain selection, computed once per operation when its document has no directive
        (it then depends on the document and the schema alone)."""
        if self._memo is None:
            return self._plain_selection(return_type, field_details_list)
        nodes = tuple(details.node for details in field_details_list)
        key = (id(return_type), *_ids(nodes))
        known = self._memo.get(key)
        if known is not None:
            return known[1]
        selection = self._plain_selection(return_type, field_details_list)
        self._memo[key] = ((return_type, nodes), selection)  # keeps the ids from reuse
        return selection

    def _plain_selection(
        self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList
    ) -> Selection | None:
        named = get_named_type(return_type)
        if not is_object_type(named) or (
            self.middleware_manager is not None and self.middleware_manager.middlewares
        ):
            return None
        assert isinstance(named, GraphQLObjectType)
        grouped, deferred, _ = self.collect_subfields(named, field_details_list)
        if deferred:
            return None
        parts: list[tuple[str, str, Selection | None]] = []
        for response_key, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                parts.append((response_key, name, None))
                continue
            field = named.fields.get(name)
            if (
                field is None
                or field.args
                or not getattr(field.resolve, "_is_default", False)
                or any(
                    d.node.arguments
                    or any(x.name.value not in _CONDITIONS for x in d.node.directives or ())
                    for d in details
                )
            ):
                return None
            below: Selection | None = None
            if not is_leaf_type(get_named_type(field.type)):
                below = self._selection(field.type, details)
                if below is None:
                    return None
            parts.append((response_key, name, below))
        return tuple(parts)
