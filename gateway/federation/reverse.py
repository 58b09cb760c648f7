"""Reverse joins: a field of a gateway type answered by the remote server, one fetch per request.

`PagerDutyUser_v1.app_interface_user` looks users up with the remote root field's generic
filter (`users_v1(filter: {pagerduty_username: {in: [...]}})`), pinned to the request's sha.
The caller's sub-selection is forwarded without aliases (the gateway resolves them from the
field names) and with `__typename` in every selection set (the remote types are resolved by it).

Every reverse join of a request waits until each gateway document still running has asked its
keys (or finished), then all are fetched in one remote query, one aliased root field per
(join, sub-selection): the on-call users of schedules and of escalation policies, looked up by
separate documents finishing at different times, make one fetch, not one per wave.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
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


Group = tuple[ReverseJoin, str]
"""A join and the remote sub-selection asked of it: one aliased root field of the fetch."""


def remote_selection(
    field_nodes: Sequence[FieldNode], fragments: dict[str, FragmentDefinitionNode]
) -> str:
    """The caller's sub-selection of a reverse-join field, as forwarded (printed)."""
    selections: list[SelectionNode] = []
    for node in field_nodes:
        if node.selection_set is not None:
            selections.extend(_plain(node.selection_set, fragments).selections)
    return print_ast(SelectionSetNode(selections=tuple(selections)))[1:-1].strip()


def remote_query(groups: Sequence[tuple[Group, Sequence[str]]]) -> tuple[str, dict[str, Any]]:
    """One remote document answering every group for its keys (root field `_qgw_r<n>`, the
    generic filter `{<remote_key>: {in: keys}}` in variable `$k<n>`), and its variables."""
    definitions = ", ".join(f"$k{n}: JSON" for n in range(len(groups)))
    fields = " ".join(
        f"{PREFIX}r{n}: {join.remote_root}(filter: $k{n}) "
        f"{{ {KEY}: {join.remote_key} __typename {selection} }}"
        for n, ((join, selection), _) in enumerate(groups)
    )
    variables = {
        f"k{n}": {join.remote_key: {"in": list(keys)}} for n, ((join, _), keys) in enumerate(groups)
    }
    return f"query GatewayReverseJoin({definitions}) {{ {fields} }}", variables


class RunningDocuments:
    """The gateway documents one request runs together, and which of them wait on a reverse
    join (keyed by the response keys of their root fields)."""

    def __init__(self) -> None:
        self._document_of: dict[str, int] = {}
        self._started = 0
        self._running: set[int] = set()
        self._waiting: set[int] = set()
        self._changed = asyncio.Event()

    def start(self, roots: Sequence[Sequence[str]]) -> None:
        """Documents starting, each with the response keys of its root fields."""
        for keys in roots:
            self._started += 1
            self._running.add(self._started)
            self._document_of.update((key, self._started) for key in keys)

    def finish(self, roots: Sequence[str]) -> None:
        """The document with these root keys is done."""
        for key in roots:
            self._running.discard(self._document_of.get(key, -1))
        self._changed.set()

    def arrive(self, root: str) -> None:
        """A field under root key `root` waits on a reverse join."""
        number = self._document_of.get(root)
        if number is not None:
            self._waiting.add(number)
            self._changed.set()

    async def settled(self) -> None:
        """Return once every running document waits on a reverse join (after one loop turn,
        so the keys asked together are fetched together)."""
        await asyncio.sleep(0)
        while not self._running <= self._waiting:
            self._changed.clear()
            await self._changed.wait()
        self._waiting.clear()


RemoteFetch = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""(document, variables) to the remote `data` (empty when it answered none)."""


class ReverseJoins:
    """One request's reverse-join lookups, fetched together when the running documents settle."""

    def __init__(self, running: RunningDocuments, fetch: RemoteFetch) -> None:
        self.running = running
        self.fetch = fetch
        self._pending: dict[Group, dict[str, asyncio.Future[Any]]] = {}
        self._decoders: dict[Group, Callable[[dict[str, Any]], Any]] = {}
        self._asked: dict[tuple[Group, str], asyncio.Future[Any]] = {}
        self._dispatch: asyncio.Future[None] | None = None

    def load(
        self, group: Group, key: str, root: str, decode: Callable[[dict[str, Any]], Any]
    ) -> "asyncio.Future[Any]":
        """The remote item of `group` whose key is `key` (None when there is none)."""
        asked = self._asked.get((group, key))
        if asked is not None:
            return asked
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asked[(group, key)] = future
        self._pending.setdefault(group, {})[key] = future
        self._decoders[group] = decode
        self.running.arrive(root)
        if self._dispatch is None:
            self._dispatch = asyncio.ensure_future(self._fetch_pending())
        return future

    async def _fetch_pending(self) -> None:
        await self.running.settled()
        groups, self._pending, self._dispatch = list(self._pending.items()), {}, None
        query, variables = remote_query([(group, sorted(keys)) for group, keys in groups])
        try:
            data = await self.fetch(query, variables)
        except Exception as error:  # each waiting field fails with it
            for _, futures in groups:
                for future in futures.values():
                    if not future.done():
                        future.set_exception(error)
            return
        for n, (group, futures) in enumerate(groups):
            items = data.get(f"{PREFIX}r{n}") or []
            decode = self._decoders[group]
            found = {item.pop(KEY): decode(item) for item in items if isinstance(item, dict)}
            for key, future in futures.items():
                if not future.done():
                    future.set_result(found.get(key))


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
