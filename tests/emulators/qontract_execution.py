"""A fast executor for qontract-server answers without errors; anything else goes to graphql-core.

qontract-server's resolvers are synchronous reads of a bundle, so a successful answer is a plain
depth-first walk: collect fields (fragments, aliases, `@skip`/`@include`), resolve, complete
(lists, non-null, leaves serialised by the schema's own scalars, abstract types by their
`resolve_type`), dropping `{}` from lists on the way. The walk calls the resolvers in
graphql-core's order, so the `$schema`s touched are recorded in the same order. On anything
unusual (an error, a null in a non-null position, introspection) it gives up with `FallBack` and
the caller runs graphql-core, which then produces the errors, paths and partial data exactly.
"""

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLFloat,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    is_abstract_type,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
)
from graphql.pyutils import Undefined
from graphql.utilities import type_from_ast

from tests.emulators.qontract_schema import Touched, js_number


class FallBack(Exception):
    """The fast walk cannot answer exactly as graphql-core would: run graphql-core instead."""


class _Info:
    """What the bundle's resolvers read from graphql-core's resolve info: the context."""

    __slots__ = ("context",)

    def __init__(self, context: Touched) -> None:
        self.context = context


FieldGroups = dict[str, list[FieldNode]]


class FastExecution:
    """One execution of a validated operation whose variables are already coerced."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: VariableValues,
        touched: Touched,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.info = _Info(touched)
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._subfields: dict[tuple[str, tuple[int, ...]], FieldGroups] = {}

    def run(self, operation: OperationDefinitionNode) -> dict[str, Any]:
        """The operation's `data`, `{}` items already dropped from lists as qontract-server does."""
        if operation.operation.value != "query" or self.schema.query_type is None:
            raise FallBack
        root = self.schema.query_type
        groups: FieldGroups = {}
        self._collect(root, operation.selection_set, groups, set())
        return self._fields(root, None, groups)

    def _included(self, node: FieldNode | FragmentSpreadNode | InlineFragmentNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def _matches(self, condition: Any, object_type: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        conditional = type_from_ast(self.schema, condition)
        if conditional is object_type:
            return True
        if is_abstract_type(conditional):
            return self.schema.is_sub_type(conditional, object_type)
        return False

    def _collect(
        self,
        object_type: GraphQLObjectType,
        selection_set: SelectionSetNode,
        groups: FieldGroups,
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):  # type: ignore[arg-type]
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                groups.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._matches(selection.type_condition, object_type):
                    self._collect(object_type, selection.selection_set, groups, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self._matches(fragment.type_condition, object_type):
                    self._collect(object_type, fragment.selection_set, groups, visited)

    def _subgroups(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> FieldGroups:
        key = (object_type.name, tuple(id(n) for n in nodes))
        groups = self._subfields.get(key)
        if groups is None:
            groups = {}
            visited: set[str] = set()
            for node in nodes:
                if node.selection_set is not None:
                    self._collect(object_type, node.selection_set, groups, visited)
            self._subfields[key] = groups
        return groups

    def _fields(
        self, object_type: GraphQLObjectType, source: Any, groups: FieldGroups
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        fields = object_type.fields
        for key, nodes in groups.items():
            name = nodes[0].name.value
            if name == "__typename":
                result[key] = object_type.name
                continue
            definition = fields.get(name)
            if definition is None or definition.resolve is None:
                raise FallBack
            try:
                if definition.args:
                    args = get_argument_values(definition, nodes[0], self.variables)
                    value = definition.resolve(source, self.info, **args)
                else:
                    value = definition.resolve(source, self.info)
            except Exception as error:
                raise FallBack from error
            result[key] = self._complete(definition.type, nodes, value)
        return result

    def _complete(self, return_type: GraphQLOutputType, nodes: list[FieldNode], value: Any) -> Any:
        if isinstance(return_type, GraphQLNonNull):
            if value is None:
                raise FallBack
            return self._complete(return_type.of_type, nodes, value)
        if value is None:
            return None
        if isinstance(return_type, GraphQLList):
            if not isinstance(value, list):
                raise FallBack
            item_type = return_type.of_type
            completed = (self._complete(item_type, nodes, item) for item in value)
            return [item for item in completed if not (type(item) is dict and not item)]
        if isinstance(return_type, GraphQLScalarType):
            if type(value) is float and value.is_integer() and abs(value) < 1e21:
                if return_type is GraphQLFloat:
                    return int(value)  # JavaScript numbers print 1.0 as 1
                if return_type is GraphQLString:
                    return js_number(value)
            try:
                serialized = return_type.serialize(value)
            except Exception as error:
                raise FallBack from error
            if serialized is None or serialized is Undefined:
                raise FallBack
            return serialized
        if isinstance(return_type, GraphQLObjectType):
            return self._fields(return_type, value, self._subgroups(return_type, nodes))
        if is_abstract_type(return_type):
            return self._complete_abstract(return_type, nodes, value)
        raise FallBack

    def _complete_abstract(
        self, abstract: GraphQLAbstractType, nodes: list[FieldNode], value: Any
    ) -> Any:
        if abstract.resolve_type is None:
            raise FallBack
        name = abstract.resolve_type(value, self.info, abstract)  # type: ignore[arg-type]
        runtime = self.schema.get_type(name) if isinstance(name, str) else None
        if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
            abstract, runtime
        ):
            raise FallBack
        return self._fields(runtime, value, self._subgroups(runtime, nodes))
