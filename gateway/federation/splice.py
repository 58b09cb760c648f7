"""Collecting live-field parents in a remote answer, one gateway batch per group, and splicing.

Parents are found breadth-first along each live field's recorded response path; their keys
are grouped by (system, account, kind) and every group becomes calls of one gateway list
field in a single gateway document, so each group is one batch. Results are written into
their parents by key, never by position; reserved keys are removed only at the injected
paths, and list items left `{}` for the caller are dropped, as the remote server would.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSchema,
    GraphQLSkipDirective,
    IntValueNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)
from graphql.execution.values import (
    get_argument_values,
    get_directive_values,
    get_variable_values,
)

from gateway.errors import BadUserInput, NotFound
from gateway.federation.plan import PREFIX, TYPENAME, Occurrence, Plan
from gateway.federation.raw import RawParent
from gateway.federation.table import Call, ExtensionTable, Group, Kind, Lookup

KEY = PREFIX + "key"
VALUE = PREFIX + "v"
Path = list[str | int]


@dataclass
class _Parent:
    obj: dict[str, Any]
    path: Path | None
    container: list[Any] | None


@dataclass
class _Failure:
    error: GraphQLError
    rest: Path
    whole: bool = False


@dataclass
class _Need:
    occurrence: int
    parent: _Parent
    lookup: Lookup | None


@dataclass
class _Batch:
    """The calls answering one occurrence's keys of one group, and what they answered."""

    occurrence: int
    group: Group
    kind: Kind
    keys: set[str] | None
    calls: list[tuple[str, Call]] = field(default_factory=list)
    found: dict[str, Any] = field(default_factory=dict)
    everything: list[dict[str, Any]] | _Failure | None = None


class Splicer:
    """One request's live fields: collect parents, build the gateway document, splice results."""

    def __init__(
        self,
        plan: Plan,
        table: ExtensionTable,
        schema: GraphQLSchema,
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.plan = plan
        self.table = table
        self.schema = schema
        coerced = get_variable_values(
            schema, plan.operation.variable_definitions or (), dict(variables or {})
        )
        if isinstance(coerced, list):
            raise BadUserInput(coerced[0].message)
        self.variables = coerced
        self.needs: list[_Need] = []
        self.parents: list[_Parent] = []
        self.batches: dict[tuple[int, Group], _Batch] = {}
        self.errors: list[GraphQLError] = []
        self.answered: dict[str, Any] = {}

    def collect(self, data: dict[str, Any] | None) -> None:
        """Find every parent of every included live field and group what they need."""
        self.needs, self.parents = [], []
        if data is None:
            return
        for index, occurrence in enumerate(self.plan.occurrences):
            found = _parents(data, occurrence.path)
            self.parents.extend(found)
            self._need(index, occurrence, found)

    def collect_raw(self, parents: Sequence[RawParent]) -> bool:
        """Group what the parents found in an answer's text need (a plan that `splices_raw`:
        each parent is the parent of every live field of its type); False when a parent has
        a type no live field is on."""
        self.needs, self.parents = [], []
        by_type: dict[str, list[_Parent]] = {}
        for raw in parents:
            parent = _Parent(raw.keys, None, None)
            self.parents.append(parent)
            by_type.setdefault(str(raw.keys.get(TYPENAME)), []).append(parent)
        types = {occurrence.live.type_name for occurrence in self.plan.occurrences}
        if not by_type.keys() <= types:
            return False
        for index, occurrence in enumerate(self.plan.occurrences):
            self._need(index, occurrence, by_type.get(occurrence.live.type_name, []))
        return True

    def _need(self, index: int, occurrence: Occurrence, found: list[_Parent]) -> None:
        if not self._included(occurrence.node):
            return
        live = occurrence.live
        definition = self.schema.get_type(live.type_name).fields[live.field_name]  # type: ignore[union-attr]
        args = get_argument_values(definition, occurrence.node, self.variables)
        for parent in found:
            if TYPENAME not in parent.obj:
                continue  # under a skipped fragment: the keys were not selected
            keys = {name: parent.obj.get(PREFIX + name) for name in occurrence.key_fields}
            lookup = live.lookup(keys, args)
            self.needs.append(_Need(index, parent, lookup))
            if lookup is None:
                continue
            kind = self.table.kinds[(lookup.group[0], lookup.group[2])]
            batch = self.batches.setdefault(
                (index, lookup.group), _Batch(index, lookup.group, kind, set())
            )
            if lookup.keys is None or batch.keys is None:
                batch.keys = None
            else:
                batch.keys.update(lookup.keys)

    def gateway_documents(self) -> list[DocumentNode]:
        """The caller's gateway root fields, and one document per batch call.

        Calls are separate documents, run together, so one failing call (a non-null root field)
        nulls only its own values; the request's loaders still gather their keys in one batch.
        """
        documents: list[DocumentNode] = []
        if self.plan.gateway_fields:
            documents.append(self._document(list(self.plan.gateway_fields)))
        number = 0
        for batch in self.batches.values():
            occurrence = self.plan.occurrences[batch.occurrence]
            keys = None if batch.keys is None else tuple(sorted(batch.keys))
            for call in batch.kind.calls(batch.group[1], keys):
                alias = f"{PREFIX}b{number}"
                number += 1
                batch.calls.append((alias, call))
                node = _call_node(alias, batch.kind, call, occurrence.node)
                documents.append(self._document([node]))
        return documents

    def _document(self, selections: list[SelectionNode]) -> DocumentNode:
        operation = self.plan.operation
        fragments = [
            d for d in self.plan.document.definitions if isinstance(d, FragmentDefinitionNode)
        ]
        body = OperationDefinitionNode(
            operation=OperationType.QUERY,
            name=operation.name,
            variable_definitions=operation.variable_definitions,
            directives=(),
            selection_set=SelectionSetNode(selections=tuple(selections)),
        )
        return DocumentNode(definitions=(body, *fragments))

    def read(
        self, gateway_data: Mapping[str, Any] | None, gateway_errors: list[GraphQLError]
    ) -> None:
        """Record what each batch call answered (and failed), by key."""
        self.answered = dict(gateway_data or {})
        by_alias: dict[str, list[GraphQLError]] = {}
        for error in gateway_errors:
            head = error.path[0] if error.path else None
            if isinstance(head, str) and head.startswith(PREFIX):
                by_alias.setdefault(head, []).append(error)
            else:
                self.errors.append(error)
        for batch in self.batches.values():
            for alias, call in batch.calls:
                _read(batch, call, self.answered.get(alias), by_alias.get(alias, []))

    def raw_values(self) -> list[dict[str, Any]] | None:
        """Per parent collected by `collect_raw`, its live values by response key; None when a
        value has an error (its path is only known in the decoded answer)."""
        reported = len(self.errors)
        values: dict[int, dict[str, Any]] = {id(parent): {} for parent in self.parents}
        for need in self.needs:
            occurrence = self.plan.occurrences[need.occurrence]
            values[id(need.parent)][occurrence.response_key] = self._value(need, occurrence)
            if len(self.errors) > reported:
                del self.errors[reported:]
                return None
        return [values[id(parent)] for parent in self.parents]

    def splice(self, data: dict[str, Any] | None) -> list[GraphQLError]:
        """Write live values into their parents, strip reserved keys; the errors to report."""
        for need in self.needs:
            occurrence = self.plan.occurrences[need.occurrence]
            need.parent.obj[occurrence.response_key] = self._value(need, occurrence)
        if data is not None:
            for key in self.plan.root_keys:
                if key in self.answered:
                    data[key] = self.answered[key]
        self._strip()
        return self.errors

    def _value(self, need: _Need, occurrence: Occurrence) -> Any:
        lookup = need.lookup
        if lookup is None:
            return None
        batch = self.batches[(need.occurrence, lookup.group)]
        at: Path = [*(need.parent.path or ()), occurrence.response_key]
        if lookup.keys is None:
            if isinstance(batch.everything, _Failure):
                return self._fail(batch.everything, at)
            return [_item_value(batch.kind, item) for item in batch.everything or []]
        if not occurrence.live.many:
            key = lookup.keys[0]
            entry = batch.found.get(key)
            if isinstance(entry, _Failure):
                return self._fail(entry, at)
            if entry is None:
                what = f"{batch.kind.what} {key!r} of {batch.group[1]}"
                self.errors.append(
                    GraphQLError(f"no {what}", path=at, original_error=NotFound(f"no {what}"))
                )
                return None
            return _item_value(batch.kind, entry)
        values: list[Any] = []
        for position, key in enumerate(lookup.keys):
            entry = batch.found.get(key)
            if isinstance(entry, _Failure):
                return self._fail(entry, at if entry.whole else [*at, position])
            if entry is not None:
                values.append(_item_value(batch.kind, entry))
        return values

    def _fail(self, failure: _Failure, at: Path) -> None:
        rest = failure.rest[1:] if failure.rest[:1] == [VALUE] else failure.rest
        original = failure.error.original_error
        self.errors.append(
            GraphQLError(
                failure.error.message,
                path=[*at, *rest],
                original_error=original,
                extensions=None if original else failure.error.extensions,
            )
        )

    def _strip(self) -> None:
        containers: dict[int, list[Any]] = {}
        for parent in self.parents:
            for name in [name for name in parent.obj if name.startswith(PREFIX)]:
                del parent.obj[name]
            if parent.container is not None:
                containers[id(parent.container)] = parent.container
        for container in containers.values():
            if any(item == {} for item in container):
                container[:] = [item for item in container if item != {}]

    def _included(self, node: FieldNode) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)


def _parents(data: dict[str, Any], path: tuple[str, ...]) -> list[_Parent]:
    """The objects at `path` (lists crossed), breadth-first, with their response paths."""
    level = [_Parent(data, [], None)]
    for key in path:
        following: list[_Parent] = []
        for parent in level:
            _flatten(parent.obj.get(key), [*(parent.path or ()), key], None, following)
        level = following
    return level


def _flatten(value: Any, path: Path, container: list[Any] | None, out: list[_Parent]) -> None:
    if isinstance(value, dict):
        out.append(_Parent(value, path, container))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, [*path, index], value, out)


def _read(batch: _Batch, call: Call, value: Any, errors: list[GraphQLError]) -> None:
    """Record what one call answered, by key, with each key's own failure."""
    failures: dict[int | None, _Failure] = {}
    for error in errors:
        path = list(error.path or [])
        position = path[1] if len(path) > 1 and isinstance(path[1], int) else None
        if isinstance(value, list) and position is not None:
            failures[position] = _Failure(error, path[2:])
        elif value is None or not isinstance(value, list):
            failures.setdefault(None, _Failure(error, path[1:]))
    whole = failures.get(None) if value is None else None
    if whole is not None:
        whole.whole = not batch.kind.per_key
    if call.keys is None:
        if whole is not None:
            batch.everything = whole
        elif isinstance(value, list):
            batch.everything = [item for item in value if isinstance(item, dict)]
            for item in batch.everything:
                if isinstance(item.get(KEY), str):
                    batch.found[item[KEY]] = item
        return
    if whole is not None:
        for key in call.keys:
            batch.found[key] = whole
        return
    if batch.kind.per_key or not isinstance(value, list):
        first = next(iter(failures.values()), None)
        if value is not None:
            batch.found[call.keys[0]] = value
        elif first is not None:
            batch.found[call.keys[0]] = first
        return
    for position, item in enumerate(value):
        if batch.kind.item_key is not None:
            if isinstance(item, dict) and isinstance(item.get(KEY), str):
                batch.found[item[KEY]] = item
            continue
        if position < len(call.keys):
            failure = failures.get(position)
            if isinstance(item, dict):
                batch.found[call.keys[position]] = item
            elif failure is not None:
                batch.found[call.keys[position]] = failure


def _item_value(kind: Kind, item: Any) -> Any:
    if isinstance(item, list):
        return [_item_value(kind, one) for one in item]
    if not isinstance(item, dict):
        return item
    if kind.value is not None:
        return item.get(VALUE)
    return {name: value for name, value in item.items() if name != KEY}


def _call_node(alias: str, kind: Kind, call: Call, node: FieldNode) -> FieldNode:
    """`alias: field(args) { key, value { caller's selection } }` for one call."""
    assert node.selection_set is not None
    inner: list[SelectionNode] = []
    if kind.item_key is not None:
        inner.append(FieldNode(alias=NameNode(value=KEY), name=NameNode(value=kind.item_key)))
    if kind.value is not None:
        inner.append(
            FieldNode(
                alias=NameNode(value=VALUE),
                name=NameNode(value=kind.value),
                selection_set=node.selection_set,
            )
        )
    else:
        inner.extend(node.selection_set.selections)
    return FieldNode(
        alias=NameNode(value=alias),
        name=NameNode(value=kind.field),
        arguments=tuple(
            ArgumentNode(name=NameNode(value=name), value=_literal(value))
            for name, value in call.args.items()
        ),
        directives=(),
        selection_set=SelectionSetNode(selections=tuple(inner)),
    )


def _literal(value: Any) -> ValueNode:
    """A GraphQL literal for a JSON-like value."""
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return StringValueNode(value=value)
    if isinstance(value, Mapping):
        return ObjectValueNode(
            fields=tuple(
                ObjectFieldNode(name=NameNode(value=k), value=_literal(v)) for k, v in value.items()
            )
        )
    return ListValueNode(values=tuple(_literal(v) for v in value))
