"""qontract-server's GraphQL schema, built from a bundle's `graphql` section, with its resolvers.

Semantics follow qontract-server (app-sre/qontract-server `src/schema.ts`): one object or interface
type per conf, `[T!]` for lists, `!` for required fields, a `JSON` scalar serialised as a JSON
string, root fields over datafiles by `$schema` with searchable fields, `path` and a generic
`filter: JSON` as arguments, synthetic back-references, interfaces resolved by a field map or by
the datafile `$schema`, `$ref`s resolved on read, and every `$schema` read recorded for
`extensions.schemas`.
"""

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLNullableOutputType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
)

from tests.emulators.qontract_bundle import Bundle

Predicate = Callable[[Any], bool]
Resolver = Callable[..., Any]


class Touched:
    """Per-request context: the datafile `$schema`s read, in first-read order."""

    def __init__(self) -> None:
        self.schemas: dict[str, None] = {}


def js_number(value: int | float) -> str:
    """A number as JavaScript's `String(number)` writes it."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def _is_array_index(key: str) -> bool:
    return key.isdigit() and (key == "0" or not key.startswith("0")) and int(key) < 2**32 - 1


def js_stringify(value: Any) -> str:
    """`JSON.stringify(value)`: compact, integer-like keys first, JavaScript number format."""
    if isinstance(value, dict):
        keys = list(value)
        if any(_is_array_index(k) for k in keys):
            index_keys = sorted((k for k in keys if _is_array_index(k)), key=int)
            keys = index_keys + [k for k in keys if not _is_array_index(k)]
        items = (json.dumps(k, ensure_ascii=False) + ":" + js_stringify(value[k]) for k in keys)
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(js_stringify(item) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return js_number(value) if math.isfinite(value) else "null"
    return json.dumps(value, ensure_ascii=False)


JSON_SCALAR = GraphQLScalarType("JSON", serialize=js_stringify)
Info = GraphQLResolveInfo[Touched]


def _strict_equal(left: Any, right: Any) -> bool:
    """JavaScript `===` on JSON values (objects and arrays equal only to themselves)."""
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


def _set_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key with JavaScript `Set` equality for primitives; None for objects."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    return None


def _js_type(value: bool | int | float) -> str:
    return "boolean" if isinstance(value, bool) else "number"


def _js_get(source: Any, name: str) -> Any:
    """`source[name] ?? null` for a JSON value."""
    return source.get(name) if isinstance(source, dict) else None


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "$ref" in value


class SchemaBuilder:
    """Builds one bundle's GraphQL schema and binds its resolvers to that bundle."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.confs: dict[str, dict[str, Any]] = {}
        for conf in bundle.confs:
            self.confs.setdefault(conf["name"], conf)
        self.objects: dict[str, GraphQLObjectType] = {}
        self.interfaces: dict[str, GraphQLInterfaceType] = {}
        self.datafile_types: dict[str, str] = {}
        self._filter_fields: dict[str, dict[str, dict[str, Any]]] = {}

    def build(self) -> GraphQLSchema:
        """The schema: every conf as a type, `Query` as the root."""
        for conf in self.bundle.confs:
            self._create_type(conf)
        query = self.objects.get("Query")
        if query is None:
            raise ValueError("the bundle's graphql section has no Query type")
        return GraphQLSchema(query=query, types=list(self.objects.values()))

    # --- resolving values -------------------------------------------------------------------

    def resolve_value(self, root: Any, name: str, is_list: bool, touched: Touched | None) -> Any:
        """qontract-server's default read of `root[name]`: `$ref`s resolved, `$schema` recorded."""
        if not isinstance(root, dict):
            return None
        schema = root.get("$schema")
        if schema and isinstance(schema, str) and touched is not None:
            touched.schemas[schema] = None
        if name == "schema":
            return schema
        value = root.get(name)
        if isinstance(value, list) and value:
            if not all(_is_ref(item) for item in value):
                return value
            resolved = [self.bundle.resolve_ref(item) for item in value]
            if not is_list:
                return resolved
            flat: list[Any] = []
            for item in resolved:
                if isinstance(item, list):
                    flat.extend(item)
                else:
                    flat.append(item)
            return flat
        if isinstance(value, dict) and _is_ref(value):
            return self.bundle.resolve_ref(value)
        return value

    def _default_resolver(self, name: str, is_list: bool) -> Resolver:
        resolve_value = self.resolve_value

        def resolve(root: Any, info: Info, **_: Any) -> Any:
            return resolve_value(root, name, is_list, info.context)

        return resolve

    # --- filters ------------------------------------------------------------------------------

    def filter_fields(self, type_name: str) -> dict[str, dict[str, Any]]:
        """The fields a filter may name on `type_name` (an interface adds its implementations')."""
        cached = self._filter_fields.get(type_name)
        if cached is not None:
            return cached
        conf = self.confs[type_name]
        fields = {info["name"]: info for info in conf.get("fields", [])}
        resolve = conf.get("interfaceResolve") or {}
        if conf.get("isInterface") and resolve.get("strategy") == "fieldMap":
            for implementation in resolve.get("fieldMap", {}).values():
                fields = {**fields, **self.filter_fields(implementation)}
        self._filter_fields[type_name] = fields
        return fields

    def object_predicate(self, type_name: str, filter_object: Any) -> Predicate:
        """The predicate of a generic `filter` object on items of `type_name`."""
        if filter_object is None:
            raise GraphQLError("Cannot convert undefined or null to object")
        if isinstance(filter_object, list):
            entries: list[tuple[str, Any]] = [(str(i), v) for i, v in enumerate(filter_object)]
        elif isinstance(filter_object, dict):
            entries = list(filter_object.items())
        else:
            return lambda _: False
        known = self.filter_fields(type_name)
        predicates: list[Predicate] = []
        for name, value in entries:
            info = known.get(name)
            if info is None:
                raise GraphQLError(
                    f'Field "{name}" does not exist on type "{type_name}"',
                    extensions={"code": "BAD_FILTER_FIELD", "gqlType": type_name},
                )
            if info.get("isList") and isinstance(value, list):
                predicates.append(self._array_equal(name, value))
            elif isinstance(value, dict) and ("in" in value or "filter" in value or "ne" in value):
                predicates.append(self._conditions(name, value, info.get("type")))
            else:
                predicates.append(self._field_equal(name, value))
        return lambda source: all(predicate(source) for predicate in predicates)

    @staticmethod
    def _field_equal(name: str, value: Any) -> Predicate:
        return lambda source: _strict_equal(_js_get(source, name), value)

    @staticmethod
    def _array_equal(name: str, expected: list[Any]) -> Predicate:
        def predicate(source: Any) -> bool:
            actual = _js_get(source, name)
            return (
                isinstance(actual, list)
                and len(actual) == len(expected)
                and all(_strict_equal(a, b) for a, b in zip(actual, expected, strict=True))
            )

        return predicate

    def _conditions(self, name: str, condition: dict[str, Any], field_type: Any) -> Predicate:
        """`{in: [...]}`, `{filter: {...}}` or `{ne: x}` on field `name`, every item of a list."""
        if "in" in condition:
            one = self._contains(name, condition["in"])
        elif "filter" in condition:
            one = self._nested(name, condition["filter"], field_type)
        else:
            unwanted = condition["ne"]

            def one(source: Any) -> bool:
                return not _strict_equal(_js_get(source, name), unwanted)

        return lambda source: all(
            one(s) for s in (source if isinstance(source, list) else [source])
        )

    @staticmethod
    def _contains(name: str, candidates: Any) -> Predicate:
        if candidates is None:
            members: list[Any] = []
        elif isinstance(candidates, str):
            members = list(candidates)
        elif isinstance(candidates, list):
            members = candidates
        else:
            shown = "object" if isinstance(candidates, dict) else _js_type(candidates)
            if not isinstance(candidates, dict):
                shown += " " + js_stringify(candidates)
            raise GraphQLError(
                f"{shown} is not iterable (cannot read property Symbol(Symbol.iterator))",
                extensions={"code": "INTERNAL_SERVER_ERROR"},
            )
        keys = {key for key in map(_set_key, members) if key is not None}
        return lambda source: (
            isinstance(source, dict) and name in source and _set_key(source[name]) in keys
        )

    def _nested(self, name: str, nested_filter: Any, field_type: Any) -> Predicate:
        def predicate(source: Any) -> bool:
            if field_type not in self.confs:
                raise GraphQLError("Cannot read properties of undefined (reading 'name')")
            value = self.resolve_value(source, name, False, None)
            if value is None:
                return False
            return self.object_predicate(field_type, nested_filter)(value)

        return predicate

    def _argument_predicates(self, type_name: str, args: Mapping[str, Any]) -> list[Predicate]:
        predicates = []
        for key, value in args.items():
            if value is None:
                continue
            if key == "filter":
                predicates.append(self.object_predicate(type_name, value))
            else:
                predicates.append(self._field_equal(key, value))
        return predicates

    # --- types ------------------------------------------------------------------------------

    def _named_type(self, info: dict[str, Any]) -> GraphQLNullableOutputType:
        kind = info["type"]
        scalars: dict[str, GraphQLNullableOutputType] = {
            "string": GraphQLString,
            "float": GraphQLFloat,
            "boolean": GraphQLBoolean,
            "int": GraphQLInt,
            "json": JSON_SCALAR,
        }
        named: GraphQLNullableOutputType | None = scalars.get(kind)
        if named is None:
            named = (self.interfaces if info.get("isInterface") else self.objects).get(kind)
        if named is None:
            raise ValueError(f"fieldInfo type is undefined: {json.dumps(info)}")
        return named

    def _argument_names(self, type_name: str) -> list[str]:
        conf = self.confs.get(type_name, {})
        searchable = [f["name"] for f in conf.get("fields", []) if f.get("isSearchable")]
        return list(dict.fromkeys([*searchable, "path"]))

    def _field(self, info: dict[str, Any]) -> GraphQLField:
        nullable = self._named_type(info)
        if info.get("isList"):
            nullable = GraphQLList(GraphQLNonNull(nullable))
        gql_type: GraphQLOutputType = (
            GraphQLNonNull(nullable) if info.get("isRequired") else nullable
        )
        args: dict[str, GraphQLArgument] = {}
        resolve: Resolver | None = None
        if info.get("datafileSchema"):
            type_name = info["type"]
            args = {
                name: GraphQLArgument(GraphQLString) for name in self._argument_names(type_name)
            }
            args["filter"] = GraphQLArgument(JSON_SCALAR)
            resolve = self._datafiles_resolver(info["datafileSchema"], type_name)
        elif info.get("synthetic"):
            resolve = self._synthetic_resolver(info["synthetic"])
        elif info.get("isResource"):
            if info["type"] == "string" and info.get("resolveResource"):
                gql_type = self.objects["Resource_v1"]
                resolve = self._resource_ref_resolver(info["name"])
            elif info["type"] == "Resource_v1" and "Resource_v1" in self.objects:
                args = {"path": GraphQLArgument(GraphQLString)}
                args["schema"] = GraphQLArgument(GraphQLString)
                resolve = self._resources_resolver()
        if resolve is None:
            resolve = self._default_resolver(info["name"], bool(info.get("isList")))
        return GraphQLField(gql_type, args=args or None, resolve=resolve)

    def _datafiles_resolver(self, schema: str, type_name: str) -> Resolver:
        def resolve(_root: Any, _info: Info, **args: Any) -> list[dict[str, Any]]:
            datafiles = self.bundle.by_schema.get(schema, [])
            predicates = self._argument_predicates(type_name, args)
            if not predicates:
                return datafiles
            return [df for df in datafiles if all(p(df) for p in predicates)]

        return resolve

    def _synthetic_resolver(self, synthetic: dict[str, str]) -> Resolver:
        schema, sub_attr = synthetic["schema"], synthetic["subAttr"]

        def resolve(root: Any, _info: Info) -> list[dict[str, Any]]:
            return self.bundle.referrers(schema, sub_attr, _js_get(root, "path"))

        return resolve

    def _resource_ref_resolver(self, name: str) -> Resolver:
        def resolve(root: Any, _info: Info) -> Any:
            target = _js_get(root, name)
            return None if target is None else self.bundle.resourcefiles.get(target)

        return resolve

    def _resources_resolver(self) -> Resolver:
        def resolve(_root: Any, _info: Info, **args: Any) -> list[Any]:
            if args.get("path"):
                return [self.bundle.resourcefiles.get(args["path"])]
            results = list(self.bundle.resourcefiles.values())
            if args.get("schema"):
                results = [r for r in results if r.get("$schema") == args["schema"]]
            return results

        return resolve

    def _interfaces_of(self, conf: dict[str, Any]) -> Callable[[], list[GraphQLInterfaceType]]:
        def interfaces() -> list[GraphQLInterfaceType]:
            own = self.interfaces.get(conf.get("interface") or "")
            found = [own] if own is not None else []
            names = {i.name for i in found} | {conf["name"]}
            datafile_object = self.interfaces.get("DatafileObject_v1")
            if datafile_object is not None and any(
                name in names for name in self.datafile_types.values()
            ):
                found.append(datafile_object)
            return found

        return interfaces

    def _type_resolver(self, conf: dict[str, Any]) -> Callable[..., str | None]:
        strategy = conf["interfaceResolve"]
        if strategy.get("strategy") == "fieldMap":
            field_name, field_map = strategy["field"], strategy["fieldMap"]

            def by_field(source: Any, *_: Any) -> str | None:
                value = _js_get(source, field_name)
                return field_map.get(value) if isinstance(value, str) else None

            return by_field
        if strategy.get("strategy") == "schema":

            def by_schema(source: Any, *rest: Any) -> str | None:
                target = self.datafile_types.get(_js_get(source, "$schema") or "")
                if target in self.interfaces:
                    resolver = self.interfaces[target].resolve_type
                    return resolver(source, *rest) if resolver else None  # type: ignore[return-value]
                return target

            return by_schema
        raise ValueError("strategy not implemented")

    def _create_type(self, conf: dict[str, Any]) -> None:
        name = conf["name"]
        infos = conf.get("fields", [])

        def fields() -> dict[str, GraphQLField]:
            return {info["name"]: self._field(info) for info in infos}

        interfaces = (
            self._interfaces_of(conf) if conf.get("interface") or conf.get("datafile") else None
        )
        if conf.get("isInterface"):
            self.interfaces[name] = GraphQLInterfaceType(
                name, fields, interfaces=interfaces, resolve_type=self._type_resolver(conf)
            )
        else:
            self.objects[name] = GraphQLObjectType(name, fields, interfaces=interfaces)
        if conf.get("datafile") is not None:
            self.datafile_types[conf["datafile"]] = name


def build_schema(bundle: Bundle) -> GraphQLSchema:
    """The GraphQL schema qontract-server serves for `bundle`."""
    return SchemaBuilder(bundle).build()
