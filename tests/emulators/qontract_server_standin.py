"""A faithful qontract-server stand-in for tests: the real server's HTTP answers over loopback.

Public API (keep it stable: other branches build on it)::

    standin = QontractServerStandin(*bundles, port=None, sha_ttl_seconds=None)
    with standin:                       # or .start() / .stop(); serves on 127.0.0.1
        standin.url                     # "http://127.0.0.1:<port>"
        standin.graphql_url             # url + "/graphql"
        standin.latest_sha              # what GET /sha256 answers
        standin.shas                    # every servable sha, oldest first
        sha = standin.load(bundle)      # dict, bytes or path -> new latest (old shas stay servable;
                                        # a sha already loaded is skipped, as the real /reload does)
        standin.forget(sha)             # drop a pinned sha (an expired one, or replica lag)
        standin.go_down("refuse")       # close the socket: connections refused
        standin.go_down("kill")         # the same, and requests in flight are dropped
        standin.go_down("503")          # keep the socket, answer every request 503
        standin.come_up()               # serve again on the same port
        standin.delay_seconds = 0.2     # delay every answer (0 to stop)
        standin.count("/graphqlsha/")   # requests received whose path starts with the prefix
        standin.count("/graphql", method="POST")
        standin.requests                # RecordedRequest(method, path, query_string, headers, body)
        standin.graphql_requests()      # the recorded /graphql and /graphqlsha/* requests
        standin.reset()                 # forget counters, log and faults (UpstreamEmulator's too)
        standin.bundle(sha=None)        # the parsed Bundle served for a sha (the latest)
        standin.fail(503, times=2, path_prefix="/graphqlsha/")  # UpstreamEmulator's faults
        standin.slow(1.5, times=1)      # and its one-off delays

`bundles` default to the recorded `bundle.json`; the last one given is the latest. Bundles for
tests are built with `tests/emulators/qontract_bundle.py` (`bundle_sha`, `add_datafile`,
`with_datafiles`, `scaled_bundle` for 3,000 users and 100+ PagerDuty targets over 2 instances);
the recorded exchanges are replayed with `tests/support/qontract_goldens.py`.
Routes and answers follow qontract-server b0e04a7 (Express 5 + Apollo Server 5, production mode):
POST/GET `/graphql` (latest), `/graphqlsha/<sha>`, `GET /sha256`, `/git-commit[/<sha>]`,
`/git-commit-info[/<sha>]`, `/healthz`; Express's HTML 404 for anything else or an unknown sha;
bodies above 100 kB refused with 413; the `extensions.schemas` and empty-object rules of
qontract-server; Apollo's 400s for parse, validation and request errors.
"""

import asyncio
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLScalarType,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    execute_sync,
    get_nullable_type,
    get_operation_ast,
    is_non_null_type,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import Undefined
from graphql.utilities import type_from_ast
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH, Bundle, BundleSource
from tests.emulators.qontract_execution import FallBack, FastExecution
from tests.emulators.qontract_schema import Touched, build_schema, js_stringify
from tests.support.ports import free_port
from tests.support.server_thread import ServerThread

BODY_LIMIT = 100 * 1024
"""Express's `express.json()` default limit (100 kB)."""

REQUEST_LOG_SIZE = 2000
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_JSON_TYPE = "application/json; charset=utf-8"
_HTML_TYPE = "text/html; charset=utf-8"
_WHITESPACE = " \t\n\r"
_QUOTED = re.compile(r"'([^'\n]*)'")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received (body cut at the 100 kB limit + 1 byte)."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Served:
    """A loaded bundle with its schema, the time it was last used, its introspection answers."""

    bundle: Bundle
    schema: GraphQLSchema
    last_used: float
    introspection: dict[tuple[str, str, str], bytes] = field(default_factory=dict)


class _HttpError(Exception):
    """An error Express's final handler turns into its HTML error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def express_error_page(message: str) -> str:
    """The HTML document Express's final handler answers errors with."""
    body = escape(message, quote=True).replace("\n", "<br>").replace("  ", " &nbsp;")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Error</title>\n</head>\n<body>\n<pre>{body}</pre>\n</body>\n</html>\n"
    )


def _express_error(status: int, message: str) -> Response:
    return Response(
        express_error_page(message),
        status_code=status,
        media_type=_HTML_TYPE,
        headers={
            "content-security-policy": "default-src 'none'",
            "x-content-type-options": "nosniff",
        },
    )


def _text(body: str, status: int = 200) -> Response:
    """Express's `res.send(string)`."""
    return Response(body, status_code=status, media_type=_HTML_TYPE)


def _json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Apollo Server's JSON answer: compact, with a final newline."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
    return Response(
        text.encode("utf-8", "surrogatepass"),
        status_code=status,
        media_type=_JSON_TYPE,
        headers=headers,
    )


def _bad_request(
    message: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    """Apollo's answer to a request it refuses before the GraphQL pipeline."""
    return _json_response(
        {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}, status, headers
    )


def graphql_js_message(message: str) -> str:
    """A graphql-core message as graphql-js 16 words it (`"name"`, not `'name'`; its API names)."""
    quoted = _QUOTED.sub(r'"\1"', message)
    return quoted.replace('"resolve_type" function', '"resolveType" function').replace(
        '"is_type_of" function', '"isTypeOf" function'
    )


def _formatted(
    error: GraphQLError, code: str | None = None, js_quotes: bool = False
) -> dict[str, Any]:
    """An error as Apollo Server formats it in production (no stack trace, a code always)."""
    message = graphql_js_message(error.message) if js_quotes else error.message
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path is not None:
        formatted["path"] = list(error.path)
    extensions = dict(error.extensions or {})
    if code is not None:
        extensions["code"] = code
    extensions.setdefault("code", "INTERNAL_SERVER_ERROR")
    formatted["extensions"] = extensions
    return formatted


def without_empty_objects(data: Any) -> Any:
    """qontract-server's last step: drop every `{}` from every list, at any depth."""
    if isinstance(data, list):
        return [without_empty_objects(i) for i in data if not (isinstance(i, dict) and not i)]
    if isinstance(data, dict):
        return {key: without_empty_objects(value) for key, value in data.items()}
    return data


def run_graphql(
    schema: GraphQLSchema, query: Any, operation_name: Any, variables: Any, fast: bool = True
) -> tuple[int, dict[str, Any]]:
    """Apollo Server's request pipeline with qontract-server's plugin: (status, body).

    `fast` tries `FastExecution` first (graphql-core runs when it falls back); without it
    graphql-core always executes, the reference the fast walk is tested against.
    """
    touched = Touched()

    def refused(errors: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        return 400, {"errors": errors, "extensions": {"schemas": []}}

    if not isinstance(query, str) or not query:
        message = (
            "GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension."
        )
        return refused([{"message": message, "extensions": {"code": "BAD_REQUEST"}}])
    try:
        document: DocumentNode = parse(query)
    except GraphQLError as error:
        return refused([_formatted(error, "GRAPHQL_PARSE_FAILED", js_quotes=True)])
    errors = validate(schema, document)
    if errors:
        return refused([_formatted(e, "GRAPHQL_VALIDATION_FAILED", js_quotes=True) for e in errors])
    name = operation_name if isinstance(operation_name, str) else None
    operation: OperationDefinitionNode | None = get_operation_ast(document, name)
    if operation is None:
        message = (
            f'Unknown operation named "{name}".'
            if name
            else "Must provide operation name if query contains multiple operations."
        )
        return refused([_formatted(GraphQLError(message), "OPERATION_RESOLUTION_FAILURE")])
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        graphql_js = _variable_errors(schema, operation, variables or {})
        fallback = [_formatted(e, "BAD_USER_INPUT", js_quotes=True) for e in coerced]
        return refused(graphql_js or fallback)
    try:
        if not fast:
            raise FallBack
        data = FastExecution(schema, document, coerced, touched).run(operation)
    except FallBack:
        touched = Touched()
    else:
        return 200, {
            "data": data,
            "extensions": {"schemas": list(touched.schemas)},
        }
    result = execute_sync(
        schema, document, variable_values=variables, operation_name=name, context_value=touched
    )
    payload: dict[str, Any] = {}
    if result.errors:
        payload["errors"] = [_formatted(e, js_quotes=not e.extensions) for e in result.errors]
    payload["data"] = without_empty_objects(result.data)
    payload["extensions"] = {"schemas": list(touched.schemas)}
    return 200, payload


def _introspection_only(query: Any) -> bool:
    """Whether every operation in `query` selects only `__schema`, `__type` or `__typename`.

    Such an answer depends on the schema alone, so the stand-in keeps it per bundle (graphql-core
    takes ~0.3 s for it where the real server takes ~0.15 s).
    """
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(
        isinstance(s, FieldNode) and s.name.value.startswith("__")
        for operation in operations
        for s in operation.selection_set.selections
    )


def js_inspect(value: Any) -> str:
    """A JSON value as graphql-js 16's `inspect` prints it in error messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(js_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k}: {js_inspect(v)}" for k, v in value.items()) + " }"
    return js_stringify(value)


def _variable_errors(
    schema: GraphQLSchema, operation: OperationDefinitionNode, inputs: dict[str, Any]
) -> list[dict[str, Any]]:
    """graphql-js 16's variable coercion errors (qontract-server's variables are scalars or
    lists of scalars); empty when a variable needs more than that."""
    found: list[dict[str, Any]] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        var_type = type_from_ast(schema, definition.type)
        shown = print_ast(definition.type)

        def failed(message: str, node: Node = definition) -> None:
            error = GraphQLError(message, node)
            found.append(_formatted(error, "BAD_USER_INPUT"))

        value = inputs.get(name, Undefined)
        if value is Undefined:
            if is_non_null_type(var_type) and definition.default_value is None:
                failed(f'Variable "${name}" of required type "{shown}" was not provided.')
            continue
        if value is None:
            if is_non_null_type(var_type):
                failed(f'Variable "${name}" of non-null type "{shown}" must not be null.')
            continue
        nullable = get_nullable_type(var_type)  # type: ignore[arg-type]
        items, scalar, at = [value], nullable, [""]
        if isinstance(nullable, GraphQLList):
            scalar = get_nullable_type(nullable.of_type)
            if isinstance(value, list):
                items, at = value, [f"[{i}]" for i in range(len(value))]
        if not isinstance(scalar, GraphQLScalarType):
            return []
        for item, where in zip(items, at, strict=True):
            if item is None:
                continue
            try:
                scalar.parse_value(item)
            except GraphQLError as error:
                place = f' at "{name}{where}"' if where else ""
                reason = error.message.split(": ", 1)[0] + ": " + js_inspect(item)
                failed(f'Variable "${name}" got invalid value {js_inspect(item)}{place}; {reason}')
    return found


def _route_is(path: str, route: str) -> bool:
    """Express route matching: case-insensitive, one optional trailing slash."""
    lowered = path.lower()
    return lowered in (route, route + "/")


def _route_param(path: str, prefix: str) -> str | None:
    """The one `:param` segment after `prefix` (Express's `/prefix/:param`), or None."""
    if not path.lower().startswith(prefix):
        return None
    rest = path[len(prefix) :]
    rest = rest[:-1] if rest.endswith("/") else rest
    return rest if rest and "/" not in rest else None


class QontractServerStandin(UpstreamEmulator):
    """qontract-server for tests: serves bundles over real HTTP with the real server's answers."""

    def __init__(
        self,
        *bundles: BundleSource,
        port: int | None = None,
        sha_ttl_seconds: float | None = None,
    ) -> None:
        super().__init__([Route("/{path:path}", self._dispatch, methods=_METHODS)])
        self.port = port or free_port()
        self.sha_ttl_seconds = sha_ttl_seconds
        self.delay_seconds = 0.0
        self.latest_sha = ""
        self._served: dict[str, _Served] = {}
        self._log: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self._down: Literal["refuse", "kill", "503"] | None = None
        self._server: ServerThread | None = None
        self._state_lock = threading.Lock()
        for bundle in bundles or (BUNDLE_PATH,):
            self.load(bundle)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The http:// base URL of the stand-in."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        """The latest bundle's GraphQL endpoint."""
        return f"{self.url}/graphql"

    def start(self) -> "QontractServerStandin":
        """Serve on 127.0.0.1:`port` until `stop`."""
        if self._server is None:
            self._server = ServerThread(self.app, port=self.port, lifespan="off").start()
        return self

    def stop(self) -> None:
        """Stop serving (connections are refused afterwards)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "QontractServerStandin":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def go_down(self, mode: Literal["refuse", "kill", "503"] = "refuse") -> None:
        """Become unavailable: close the socket after the answers in flight ("refuse"), drop
        them too as a killed process would ("kill"), or answer everything 503 ("503")."""
        self._down = mode
        if mode == "kill" and self._server is not None:
            self._server.kill()
            self._server = None
        elif mode == "refuse":
            self.stop()

    def come_up(self) -> None:
        """Serve normally again, on the same port."""
        self._down = None
        self.start()

    # --- bundles ----------------------------------------------------------------------------

    def load(self, source: BundleSource) -> str:
        """Load a bundle as the new latest and return its sha (a known sha is skipped)."""
        bundle = Bundle.load(source)
        with self._state_lock:
            if bundle.sha in self._served:
                return bundle.sha
        schema = build_schema(bundle)
        with self._state_lock:
            self._expire()
            self._served[bundle.sha] = _Served(bundle, schema, time.monotonic())
            self.latest_sha = bundle.sha
        return bundle.sha

    def forget(self, sha: str) -> None:
        """Stop serving `sha` (unknown from now on, as after its TTL)."""
        with self._state_lock:
            self._served.pop(sha, None)

    @property
    def shas(self) -> list[str]:
        """Every servable sha, oldest first."""
        with self._state_lock:
            return list(self._served)

    def bundle(self, sha: str | None = None) -> Bundle:
        """The loaded bundle of `sha` (the latest by default)."""
        return self._served[sha or self.latest_sha].bundle

    def _expire(self) -> None:
        if self.sha_ttl_seconds is None:
            return
        deadline = time.monotonic() - self.sha_ttl_seconds
        for sha, served in list(self._served.items()):
            if sha != self.latest_sha and served.last_used < deadline:
                del self._served[sha]

    # --- observation ------------------------------------------------------------------------

    def count(self, path_prefix: str = "", method: str | None = None) -> int:
        """Requests received whose path starts with `path_prefix` (and of `method`, if given)."""
        with self._lock:
            return sum(
                n
                for key, n in self.calls.items()
                if key.split(" ", 1)[1].startswith(path_prefix)
                and (method is None or key.split(" ", 1)[0] == method)
            )

    @property
    def requests(self) -> list[RecordedRequest]:
        """The last requests received, oldest first."""
        with self._lock:
            return list(self._log)

    def graphql_requests(self) -> list[RecordedRequest]:
        """The recorded requests to `/graphql` and `/graphqlsha/<sha>`."""
        return [
            r for r in self.requests if r.path == "/graphql" or r.path.startswith("/graphqlsha/")
        ]

    def reset(self) -> None:
        """Forget counters, the request log and planned faults."""
        super().reset()
        with self._lock:
            self._log.clear()

    # --- HTTP -------------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        raw = await self._read_body(request)
        with self._lock:
            self._log.append(
                RecordedRequest(
                    request.method,
                    request.url.path,
                    request.url.query,
                    dict(request.headers),
                    raw,
                )
            )
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self._down == "503":
            return Response("Service Unavailable", status_code=503, media_type="text/plain")
        try:
            body = self._parse_json_body(request, raw)
            return self._route(request, body)
        except _HttpError as error:
            return _express_error(error.status, error.message)

    @staticmethod
    async def _read_body(request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            if size > BODY_LIMIT:
                continue
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[: BODY_LIMIT + 1]

    @staticmethod
    def _parse_json_body(request: Request, raw: bytes) -> Any:
        """`express.json()`: the parsed body, or None when it does not parse this request."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = "transfer-encoding" in request.headers or request.headers.get(
            "content-length", "0"
        ) not in ("", "0")
        if media_type != "application/json" or not has_body:
            return None
        declared = request.headers.get("content-length", "")
        if (declared.isdigit() and int(declared) > BODY_LIMIT) or len(raw) > BODY_LIMIT:
            raise _HttpError(413, "Payload Too Large")
        if not raw:
            return {}
        text = raw.decode("utf-8", "replace")
        first = text.lstrip(_WHITESPACE)[:1]
        if first not in ("{", "["):
            raise _HttpError(400, "Bad Request")
        try:
            return json.loads(text)
        except ValueError:
            raise _HttpError(400, "Bad Request") from None

    def _route(self, request: Request, body: Any) -> Response:
        path = request.url.path
        method = request.method
        sha: str | None = None
        if path == "/graphql":
            sha = self.latest_sha
        elif path.startswith("/graphqlsha/"):
            sha = path[len("/graphqlsha/") :].split("/", 1)[0] or None
        if sha is not None:
            with self._state_lock:
                served = self._served.get(sha)
                if served is not None:
                    served.last_used = time.monotonic()
            if served is not None:
                return self._apollo(request, served, body)
        if method in ("GET", "HEAD"):
            answer = self._info_route(path)
            if answer is not None:
                return answer
        raw_path = request.scope.get("raw_path", path.encode()).decode("latin-1")
        shown = quote(raw_path.split("?", 1)[0], safe="!#$&'()*+,/:;=?@[]~%")
        raise _HttpError(404, f"Cannot {method} {shown}")

    def _info_route(self, path: str) -> Response | None:
        """The plain GET routes: sha, commit, commit info, health, the redirect of `/`."""
        latest = self._served.get(self.latest_sha)
        if _route_is(path, "/sha256") and latest is not None:
            return _text(latest.bundle.sha)
        if _route_is(path, "/git-commit") and latest is not None:
            return _text(latest.bundle.git_commit)
        if _route_is(path, "/git-commit-info") and latest is not None:
            return self._commit_info(latest.bundle)
        if _route_is(path, "/healthz"):
            return Response(b"", status_code=200)
        if path == "/":
            return RedirectResponse("/graphql", status_code=302)
        for prefix, info in (("/git-commit-info/", True), ("/git-commit/", False)):
            sha = _route_param(path, prefix)
            if sha is None:
                continue
            served = self._served.get(sha)
            if served is None:
                return _text(f"Bundle {sha} not found", 404)
            return self._commit_info(served.bundle) if info else _text(served.bundle.git_commit)
        return None

    @staticmethod
    def _commit_info(bundle: Bundle) -> Response:
        info = {"commit": bundle.git_commit, "timestamp": bundle.git_commit_timestamp}
        return Response(
            json.dumps(info, separators=(",", ":")), status_code=200, media_type=_JSON_TYPE
        )

    def _apollo(self, request: Request, served: _Served, body: Any) -> Response:
        """Apollo Server's HTTP handling of one GraphQL request."""
        if request.method == "POST":
            if body is None:
                return Response(
                    "`req.body` is not set; this probably means you forgot to set up the "
                    "`json` middleware before the Apollo Server middleware.",
                    status_code=500,
                    media_type=_HTML_TYPE,
                )
            if isinstance(body, list):
                return _bad_request("Operation batching disabled.")
            if not isinstance(body, dict) or not body:
                return _bad_request(
                    "POST body missing, invalid Content-Type, or JSON object has no keys."
                )
            params: dict[str, Any] = body
            for key in ("variables", "extensions"):
                if isinstance(params.get(key), str):
                    return _bad_request(
                        f"`{key}` in a POST body should be provided as an object, "
                        "not a recursively JSON-encoded string."
                    )
            variables = params.get("variables")
        elif request.method == "GET":
            pairs = parse_qsl(request.url.query, keep_blank_values=True)
            params = {}
            for key, value in pairs:
                params[key] = [params[key], value] if key in params else value
            if "text/html" in request.headers.get("accept", "").lower():
                return Response(
                    "<!DOCTYPE html><html><head><title>Apollo Server</title></head>"
                    "<body>Apollo Sandbox</body></html>",
                    media_type="text/html",
                )
            variables = None
            raw_variables = params.get("variables")
            if isinstance(raw_variables, str) and raw_variables:
                try:
                    variables = json.loads(raw_variables)
                except ValueError:
                    return _bad_request("The variables search parameter contains invalid JSON.")
                if not isinstance(variables, dict):
                    return _bad_request(
                        "The variables search parameter should contain a JSON-encoded object."
                    )
        else:
            return _bad_request(
                "Apollo Server supports only GET/POST requests.", 405, {"allow": "GET, POST"}
            )
        query = params.get("query")
        if query and not isinstance(query, str):
            return _bad_request("GraphQL queries must be strings.")
        operation_name = params.get("operationName")
        variables = variables if isinstance(variables, dict) else None
        cache_key = (str(query), str(operation_name), json.dumps(variables, sort_keys=True))
        cached = served.introspection.get(cache_key)
        if cached is not None:
            return Response(cached, media_type=_JSON_TYPE)
        status, payload = run_graphql(served.schema, query, operation_name, variables)
        response = _json_response(payload, status)
        if status == 200 and _introspection_only(query) and len(served.introspection) < 8:
            served.introspection[cache_key] = bytes(response.body)
        return response
