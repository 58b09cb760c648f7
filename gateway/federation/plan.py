"""Planning one request over the merged schema: the document forwarded once, and the live fields.

The caller's document is walked once with the merged schema. Live fields and gateway root
fields are removed from the copy sent to the remote server; each live field's key selection
and `__typename` are added next to it under reserved aliases; aliases, arguments, directives
and named fragments are kept; variable definitions and fragments nothing uses any more are
dropped. A plan is data, cached per (document, operation, schema fingerprint).
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    Visitor,
    get_named_type,
    get_operation_ast,
    is_object_type,
    parse,
    print_ast,
    visit,
)

from gateway.federation.table import ExtensionTable, LiveField

PREFIX = "_qgw_"
"""Reserved alias prefix of what the gateway adds to a forwarded document; no caller may use it."""
TYPENAME = PREFIX + "typename"
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


class ReservedAlias(ValueError):
    """A caller's alias uses the gateway's reserved prefix."""


@dataclass(frozen=True)
class Occurrence:
    """A live field in the document: the parents' response path, its key and its node."""

    path: tuple[str, ...]
    response_key: str
    node: FieldNode
    live: LiveField
    key_fields: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What to forward, what the gateway executes itself, and where live values go."""

    forwarded: str | None
    forwarded_variables: tuple[str, ...]
    operation_name: str | None
    gateway_fields: tuple[FieldNode, ...]
    occurrences: tuple[Occurrence, ...]
    root_keys: tuple[str, ...]
    document: DocumentNode
    operation: OperationDefinitionNode


class _Planner:
    """One walk of one operation (fragments expanded for paths, transformed once each)."""

    def __init__(
        self,
        document: DocumentNode,
        schema: GraphQLSchema,
        remote_roots: frozenset[str],
        table: ExtensionTable,
    ) -> None:
        self.schema = schema
        self.remote_roots = remote_roots
        self.table = table
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.transformed: dict[str, FragmentDefinitionNode] = {}
        self.gateway_fields: list[FieldNode] = []
        self.occurrences: list[Occurrence] = []
        self.root_keys: list[str] = []

    def root(self, selection_set: SelectionSetNode) -> list[SelectionNode]:
        """The forwarded root selections; gateway root fields are set aside."""
        kept: list[SelectionNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                response_key = _response_key(selection)
                self.root_keys.append(response_key)
                if selection.name.value not in self.remote_roots:
                    self.gateway_fields.append(selection)
                    continue
                kept.append(self._field(selection, self.schema.query_type, ()))
            elif isinstance(selection, InlineFragmentNode):
                inner = self.root(selection.selection_set)
                if inner:
                    kept.append(_with(selection, selection_set=_set(inner)))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments[name]
                inner = self.root(fragment.selection_set)
                if inner:
                    self.transformed[name] = _with(fragment, selection_set=_set(inner))
                    kept.append(selection)
        return kept

    def _field(self, node: FieldNode, parent: Any, path: tuple[str, ...]) -> FieldNode:
        if node.selection_set is None:
            return node
        field = parent.fields[node.name.value]
        child = get_named_type(field.type)
        inner = self._selections(node.selection_set, child, (*path, _response_key(node)))
        copy: FieldNode = _with(node, selection_set=_set(inner))
        return copy

    def _selections(
        self, selection_set: SelectionSetNode, parent: Any, path: tuple[str, ...]
    ) -> list[SelectionNode]:
        kept: list[SelectionNode] = []
        injected: OrderedDict[str, SelectionNode] = OrderedDict()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                live = self.table.field(parent.name, name) if is_object_type(parent) else None
                if live is not None:
                    keys = _key_selections(live)
                    self.occurrences.append(
                        Occurrence(
                            path,
                            _response_key(selection),
                            selection,
                            live,
                            tuple(k.name.value for k in keys),
                        )
                    )
                    for key in (_typename(), *keys):
                        assert key.alias is not None
                        injected.setdefault(key.alias.value, key)
                    continue
                if name.startswith("__"):
                    kept.append(selection)
                    continue
                kept.append(self._field(selection, parent, path))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner_type = self.schema.get_type(condition.name.value) if condition else parent
                inner = self._selections(selection.selection_set, inner_type, path)
                kept.append(_with(selection, selection_set=_set(inner)))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments[name]
                inner_type = self.schema.get_type(fragment.type_condition.name.value)
                inner = self._selections(fragment.selection_set, inner_type, path)
                self.transformed[name] = _with(fragment, selection_set=_set(inner))
                kept.append(selection)
        return kept + list(injected.values())


def plan_operation(
    document: DocumentNode,
    operation_name: str | None,
    schema: GraphQLSchema,
    remote_roots: frozenset[str],
    table: ExtensionTable,
) -> Plan:
    """The plan of `operation_name` in a document already validated against `schema`."""
    check_aliases(document)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise ValueError("the document has no such operation")
    planner = _Planner(document, schema, remote_roots, table)
    root = (
        planner.root(operation.selection_set) if operation.operation is OperationType.QUERY else []
    )
    forwarded: str | None = None
    variables: tuple[str, ...] = ()
    if root:
        forwarded, variables = _forwarded(operation, root, planner.transformed)
    return Plan(
        forwarded=forwarded,
        forwarded_variables=variables,
        operation_name=operation.name.value if operation.name else None,
        gateway_fields=tuple(planner.gateway_fields),
        occurrences=tuple(planner.occurrences),
        root_keys=tuple(dict.fromkeys(planner.root_keys)),
        document=document,
        operation=operation,
    )


def _forwarded(
    operation: OperationDefinitionNode,
    root: list[SelectionNode],
    fragments: dict[str, FragmentDefinitionNode],
) -> tuple[str, tuple[str, ...]]:
    """The printed document for the remote server (used fragments and variables only), and the
    names of the variables it uses."""
    body = _with(operation, selection_set=_set(root), variable_definitions=())
    used_fragments: list[FragmentDefinitionNode] = []
    pending = _spreads(body)
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        fragment = fragments[name]
        used_fragments.append(fragment)
        pending.extend(_spreads(fragment))
    used_variables = _variables(body)
    for fragment in used_fragments:
        used_variables |= _variables(fragment)
    definitions = tuple(
        d for d in operation.variable_definitions or () if d.variable.name.value in used_variables
    )
    body = _with(body, variable_definitions=definitions)
    names = tuple(d.variable.name.value for d in definitions)
    return print_ast(DocumentNode(definitions=(body, *used_fragments))), names


class _Collect(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.variables: set[str] = set()
        self.spreads: list[str] = []

    def enter_variable(self, node: Any, *_: Any) -> None:
        """A use of a variable."""
        self.variables.add(node.name.value)

    def enter_fragment_spread(self, node: Any, *_: Any) -> None:
        """A use of a named fragment."""
        self.spreads.append(node.name.value)

    def enter_variable_definition(self, node: Any, *_: Any) -> Any:
        """Not a use: skip the definition's own variable node."""
        return False


def _variables(node: Any) -> set[str]:
    collect = _Collect()
    visit(node, collect)
    return collect.variables


def _spreads(node: Any) -> list[str]:
    collect = _Collect()
    visit(node, collect)
    return collect.spreads


class _Aliases(Visitor):
    def enter_field(self, node: FieldNode, *_: Any) -> None:
        """Refuse an alias with the reserved prefix."""
        if node.alias is not None and node.alias.value.startswith(PREFIX):
            raise ReservedAlias(f"aliases starting with {PREFIX!r} are reserved for the gateway")


def check_aliases(document: DocumentNode) -> None:
    """Raise ReservedAlias when an alias of `document` uses the gateway's reserved prefix."""
    visit(document, _Aliases())


def _with(node: Any, **changes: Any) -> Any:
    """A copy of AST `node` with `changes` (graphql-core nodes are not dataclasses)."""
    return type(node)(**{name: getattr(node, name) for name in node.keys} | changes)


def _response_key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _set(selections: list[SelectionNode]) -> SelectionSetNode:
    return SelectionSetNode(selections=tuple(selections))


_KEYS: dict[str, tuple[FieldNode, ...]] = {}


def _key_selections(live: LiveField) -> tuple[FieldNode, ...]:
    """The live field's key selection, each top-level field under its reserved alias."""
    cached = _KEYS.get(live.key_selection)
    if cached is None:
        operation = parse("{" + live.key_selection + "}", no_location=True).definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        cached = tuple(
            _with(f, alias=NameNode(value=PREFIX + f.name.value))
            for f in operation.selection_set.selections
            if isinstance(f, FieldNode)
        )
        _KEYS[live.key_selection] = cached
    return cached


def _typename() -> FieldNode:
    return FieldNode(alias=NameNode(value=TYPENAME), name=NameNode(value="__typename"))
