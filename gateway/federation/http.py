"""The federated HTTP surface: qontract-server's paths on the gateway, and routing per request.

A query made only of qontract-server fields is passed through: its document and qontract-
server's answer bytes are untouched (status, body and content type as qontract-server gave
them, 400s and the 404 of an unknown sha included), after the caller's token, scope and the
gateway's query limits are checked. A query with live fields, gateway fields mixed with
qontract-server fields, or introspection goes to the federated schema; others to the gateway's.
"""

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from cross_web import HTTPException
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import TokenVerifier
from gateway.errors import (
    BadUserInput,
    BundleNotFound,
    ErrorCode,
    Forbidden,
    GatewayError,
    UpstreamUnavailable,
)
from gateway.federation.merge import MergedSchema
from gateway.federation.plan import INTROSPECTION_ROOTS, ReservedAlias, check_aliases
from gateway.federation.service import Federation, RemoteAnswer
from gateway.graphql_request import body_encoding, inflate, read_body, read_params
from gateway.metrics import GatewayMetrics
from schema.document_cache import CachedDocument, DocumentStore

SHA_HEADER = "x-qontract-bundle-sha"
SUBGRAPH_ROOTS = frozenset({"_service", "_entities"})
MAX_REMEMBERED = 1024
MAX_REMEMBERED_BODY = 8192
"""Bodies routed to the gateway's own schema are remembered (bounded) so a repeated
gateway-only request (the result cache's traffic) is not parsed twice."""
SHA = re.compile(r"^[0-9a-f]{64}$")
MAX_DOCUMENTS = 256
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""Routed documents are kept parsed, with their limit checks (bounded as schema.document_cache
estimates them), so an integration's repeated query is not parsed or checked again."""


class FederatedEndpoint:
    """ASGI endpoint for `/graphql` and `/graphqlsha/<sha>` with a federated qontract-server."""

    def __init__(
        self,
        federation: Federation,
        gateway_view: ASGIApp,
        federated_view: ASGIApp,
        gateway_roots: frozenset[str],
        verifier: TokenVerifier,
        scope_name: str,
        limit_rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        max_json_depth: int,
        max_body_bytes: int,
        metrics: GatewayMetrics,
        request_id: Callable[[Request], str],
    ) -> None:
        self.federation = federation
        self.gateway_view = gateway_view
        self.federated_view = federated_view
        self.gateway_roots = gateway_roots
        self.verifier = verifier
        self.scope_name = scope_name
        self.limit_rules = list(limit_rules)
        self.max_tokens = max_tokens
        self.max_json_depth = max_json_depth
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.request_id = request_id
        self._gateway_only: OrderedDict[bytes, str | None] = OrderedDict()
        self._documents = DocumentStore(MAX_DOCUMENTS, MAX_DOCUMENT_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pin the sha, then pass through, federate, or serve from the gateway's own schema."""
        if scope["type"] != "http":
            await self.gateway_view(scope, receive, send)
            return
        request = Request(scope, receive)
        pinned = scope.get("path_params", {}).get("sha") or request.headers.get(SHA_HEADER)
        if pinned is not None and not SHA.match(pinned):
            await self._error(request, BadUserInput("a bundle sha is 64 hex digits"), 400)(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["qontract_sha"] = pinned
        body = await request.body()
        merged = self.federation.merged
        fingerprint = merged.fingerprint if merged else None
        post = request.method == "POST"
        if post and pinned is None and self._gateway_only.get(body, "") == fingerprint:
            target: ASGIApp | Response = self.gateway_view  # seen before: skip parsing it again
        else:
            target = await self._route(request, pinned)
            if post and target is self.gateway_view and len(body) <= MAX_REMEMBERED_BODY:
                self._remember(body, fingerprint)
        if isinstance(target, Response):
            await target(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await target(scope, replay, send)

    async def _route(self, request: Request, pinned: str | None) -> ASGIApp | Response:
        payload = await _payload(request, self.max_json_depth, self.max_body_bytes)
        query = payload.get("query") if payload else None
        if not isinstance(query, str):
            return self.gateway_view
        entry = self._documents.get(query)
        if entry is None:
            try:
                parsed = parse(query, max_tokens=self.max_tokens)
            except GraphQLError:
                return self.gateway_view  # Strawberry reports the syntax error or the token limit
            entry = self._documents.put(query, parsed)
        document = entry.document
        name = payload.get("operationName") if payload else None
        operation = get_operation_ast(document, name if isinstance(name, str) else None)
        if operation is None:
            return self.gateway_view
        roots = _root_fields(operation.selection_set, document)
        merged = self.federation.merged
        unknown: BundleNotFound | None = None
        if (
            merged is not None
            and pinned is not None
            and not self._passes_through(operation, document, roots, merged)
            and self._may_read(request)
        ):  # qontract-server validates what is passed through against the pinned bundle itself
            try:  # the pinned bundle's own schema (an older bundle's may differ)
                merged = await self.federation.merged_for(pinned)
                request.scope["state"]["qontract_merged"] = merged
            except BundleNotFound as error:  # answered once the request is checked
                unknown = error
                request.scope["state"]["qontract_unknown"] = error
        if merged is None:
            if roots <= self.gateway_roots | INTROSPECTION_ROOTS and pinned is None:
                return self.gateway_view
            return self._error(
                request,
                UpstreamUnavailable(
                    "qontract-server's schema is not known yet (it has been unreachable)",
                    upstream=self.federation.source.upstream,
                ),
            )
        remote = roots & merged.remote_roots
        if self._passes_through(operation, document, roots, merged):
            assert payload is not None
            label = self.metrics.operation_label(operation.name.value if operation.name else None)
            return await self._pass_through(request, entry, payload, pinned, label, merged, unknown)
        if roots & SUBGRAPH_ROOTS:
            if remote:
                return self._error(
                    request,
                    BadUserInput("_service and _entities cannot be asked with app-interface"),
                )
            return self.gateway_view  # the subgraph SDL is the gateway's own, never merged
        if remote or roots & INTROSPECTION_ROOTS or _uses(document, self.federation.live_names):
            return self.federated_view
        return self.gateway_view

    def _passes_through(
        self,
        operation: OperationDefinitionNode,
        document: DocumentNode,
        roots: frozenset[str],
        merged: MergedSchema,
    ) -> bool:
        """Whether a query reads only `merged`'s remote root fields, no live field."""
        return (
            operation.operation is OperationType.QUERY
            and bool(roots)
            and roots <= merged.remote_roots
            and not _uses(document, self.federation.live_names)
        )

    async def _pass_through(
        self,
        request: Request,
        entry: CachedDocument,
        payload: dict[str, Any],
        pinned: str | None,
        label: str,
        merged: MergedSchema,
        unknown: BundleNotFound | None,
    ) -> Response:
        """qontract-server's answer as it gave it, after auth and the gateway's limits (checked
        once per document and merged schema: the pinned bundle's)."""
        started = time.perf_counter()
        try:
            identity = self.verifier.identify(request.headers.get("authorization"))
            if not identity.has_scope(self.scope_name):
                raise Forbidden(f"reading app-interface needs the '{self.scope_name}' scope")
            if entry.errors is None or entry.validated_for is not merged.schema:
                try:
                    check_aliases(entry.document)
                    entry.errors = validate(merged.schema, entry.document, self.limit_rules)
                except ReservedAlias as error:
                    entry.errors = [GraphQLError(str(error))]
                entry.validated_for = merged.schema
            if entry.errors:
                raise BadUserInput(entry.errors[0].message)
            sha = pinned or await self.federation.source.latest_sha()
            forwarded = {
                k: payload[k]
                for k in ("query", "variables", "operationName")
                if payload.get(k) is not None
            }
            answer: RemoteAnswer
            try:
                if unknown is not None:  # found while learning the bundle's schema
                    raise unknown
                answer = await self.federation.source.answer(sha, forwarded)
            except BundleNotFound as error:
                if not hasattr(error, "answer"):
                    raise
                answer = error.answer
        except GatewayError as error:
            self._count(label, "error", started)
            return self._error(request, error)
        self._count(label, "ok" if answer.status == 200 else "error", started)
        return Response(
            answer.body,
            status_code=answer.status,
            headers={"content-type": answer.content_type, SHA_HEADER: sha},
        )

    def _remember(self, body: bytes, fingerprint: str | None) -> None:
        """Note a body the gateway's own schema answers, for this remote schema."""
        self._gateway_only[body] = fingerprint
        self._gateway_only.move_to_end(body)
        while len(self._gateway_only) > MAX_REMEMBERED:
            self._gateway_only.popitem(last=False)

    def _count(self, name: str, outcome: str, started: float) -> None:
        self.metrics.graphql_operations.labels(name, "query", outcome).inc()
        self.metrics.graphql_latency.labels("query", outcome).observe(time.perf_counter() - started)

    def _error(self, request: Request, error: GatewayError, status: int = 200) -> Response:
        self.metrics.graphql_errors.labels(error.code.value).inc()
        extensions = {**error.extensions, "request_id": self.request_id(request)}
        return JSONResponse(
            {"data": None, "errors": [{"message": error.message, "extensions": extensions}]},
            status_code=status,
        )

    async def sha256(self, request: Request) -> Response:
        """`GET /sha256`: the latest bundle sha, bare hex, as qontract-server answers it."""
        try:
            self._authorise(request)
            sha = await self.federation.source.latest_sha()
        except GatewayError as error:
            return self._error(request, error, _status(error))
        return PlainTextResponse(sha, media_type="text/html")

    async def git_commit_info(self, request: Request) -> Response:
        """`GET /git-commit-info/<sha>`, answered as qontract-server answers it."""
        sha = request.path_params["sha"]
        try:
            self._authorise(request)
            if not SHA.match(sha):
                raise BadUserInput("a bundle sha is 64 hex digits")
            answer = await self.federation.source.commit_info(sha)
        except GatewayError as error:
            return self._error(request, error, _status(error))
        return Response(
            answer.body, status_code=answer.status, headers={"content-type": answer.content_type}
        )

    def _may_read(self, request: Request) -> bool:
        """Whether the caller may read app-interface (else nothing is fetched for it)."""
        try:
            self._authorise(request)
        except GatewayError:
            return False
        return True

    def _authorise(self, request: Request) -> None:
        identity = self.verifier.identify(request.headers.get("authorization"))
        if not identity.has_scope(self.scope_name):
            raise Forbidden(f"reading app-interface needs the '{self.scope_name}' scope")


def _status(error: GatewayError) -> int:
    return {
        ErrorCode.UNAUTHENTICATED: 401,
        ErrorCode.FORBIDDEN: 403,
        ErrorCode.BAD_USER_INPUT: 400,
        ErrorCode.BUNDLE_NOT_FOUND: 404,
    }.get(error.code, 503)


async def _payload(request: Request, max_depth: int, max_bytes: int) -> dict[str, Any] | None:
    """The GraphQL request (POST JSON body, inflated when compressed, or GET query parameters)
    as checked by the gateway's one reader; None when absent or refused (the gateway's view
    answers that)."""
    try:
        if request.method == "GET":
            if "query" not in request.query_params:
                return None
            data = read_params(request.query_params, max_depth)
        else:
            encoding = body_encoding(request.headers)
            data = read_body(inflate(await request.body(), encoding, max_bytes), max_depth)
    except HTTPException:
        return None
    payload: dict[str, Any] = {"query": data.query}
    if data.variables is not None:
        payload["variables"] = data.variables
    if data.operation_name is not None:
        payload["operationName"] = data.operation_name
    return payload


def _root_fields(selection_set: SelectionSetNode, document: DocumentNode) -> frozenset[str]:
    """Names of the root fields an operation selects (root fragments expanded once each)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return frozenset(names)


def _uses(document: DocumentNode, names: frozenset[str]) -> bool:
    """True when any field of the document is named like a live field (a cheap, safe test)."""
    pending: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if hasattr(d, "selection_set")
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode) and selection.name.value in names:
                return True
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                pending.append(inner)
    return False
