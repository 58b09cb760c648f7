"""The federated remote server as the gateway sees it: the current merged schema, plans, and
the execution of a request that reads it (forward once, collect, batch, splice)."""

import asyncio
import contextlib
import gc
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog
from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema

from gateway.errors import BadUserInput, BundleNotFound, GatewayError, UpstreamError
from gateway.federation.merge import MergedSchema, SchemaConflict, merge_schema
from gateway.federation.plan import Plan, ReservedAlias, plan_operation
from gateway.federation.raw import scan, splices_raw
from gateway.federation.splice import Splicer
from gateway.federation.table import ExtensionTable

log = structlog.get_logger("gateway.federation")

MAX_PLANS = 512
START_TIMEOUT = 10.0
"""Start-up waits this long for the remote schema, then serves without it (the poller goes on)."""
MAX_PLANNED_QUERY = 65_536
"""Longer documents are planned every time rather than kept (bounds the plan cache's memory)."""
MAX_PINNED_SCHEMAS = 4
"""Merged schemas of older bundles (by fingerprint) kept for requests pinned to them; each is
~10.5 MB of graphql-core objects for the recorded 497-type schema (tracemalloc), built in
0.3-0.6 s."""
MAX_KNOWN_SHAS = 1024
"""Bundle shas whose schema fingerprint is remembered in process (~150 bytes each)."""


class RemoteAnswer(Protocol):
    """One HTTP answer of the remote server."""

    @property
    def status(self) -> int:
        """The HTTP status."""

    @property
    def content_type(self) -> str:
        """The content type."""

    @property
    def body(self) -> bytes:
        """The body bytes."""


class RemoteSource(Protocol):
    """Cached, pinned access to the remote server (qontract-server's source)."""

    upstream: str

    async def latest_sha(self, fresh: bool = False) -> str:
        """The latest bundle sha (`fresh`: asked now, not reused from a moment ago)."""

    async def answer(self, sha: str, payload: dict[str, Any]) -> RemoteAnswer:
        """The answer to `payload` on bundle `sha`."""

    async def commit_info(self, sha: str) -> RemoteAnswer:
        """`/git-commit-info/<sha>` as the remote server answers it."""

    async def introspection(self, sha: str) -> tuple[str, dict[str, Any]]:
        """(fingerprint, introspection data) of bundle `sha`'s schema."""

    async def last_schema(self) -> tuple[str, dict[str, Any]] | None:
        """The last schema learned by any replica, if any."""


GatewayRunner = Callable[[GraphQLSchema, Sequence[DocumentNode]], Awaitable[list[ExecutionResult]]]
"""Runs gateway documents together, in the request's context: one result per document."""


@dataclass(frozen=True)
class Outcome:
    """A federated result and the extensions it adds (`schemas`, `bundle_sha`)."""

    result: ExecutionResult
    extensions: dict[str, Any]


class Federation:
    """The merged schema (rebuilt only when the remote fingerprint changes) and its plans."""

    def __init__(
        self,
        source: RemoteSource,
        base: GraphQLSchema,
        table: ExtensionTable,
        poll_interval: float,
        install: Callable[[GraphQLSchema], None],
        resolvers: Mapping[tuple[str, str], Callable[..., Any]] | None = None,
        adopt: Callable[[GraphQLSchema], None] | None = None,
    ) -> None:
        self.source = source
        self.base = base
        self.table = table
        self.poll_interval = poll_interval
        self._install = install
        self._resolvers = dict(resolvers or {})
        self._adopt = adopt
        self._fingerprints: OrderedDict[str, str] = OrderedDict()
        """Bundle sha -> schema fingerprint (immutable: a sha is one bundle)."""
        self._pinned: OrderedDict[str, MergedSchema] = OrderedDict()
        """Merged schemas of older bundles by fingerprint, least recently used first out."""
        self._merging: dict[str, asyncio.Future[MergedSchema]] = {}
        self.merged: MergedSchema | None = None
        self.degraded: str | None = "not yet connected"
        self.live_names = table.names()
        self._plans: OrderedDict[tuple[str, str | None, str], Plan] = OrderedDict()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self.builds = 0
        self.decoded = 0
        """Answers decoded whole (splicing them as text did not apply)."""
        self.sha: str | None = None

    async def start(self) -> None:
        """Learn the schema (else the last one in Redis) and start polling the latest sha."""
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await self.refresh()
        except (GatewayError, TimeoutError) as error:
            reason = error.message if isinstance(error, GatewayError) else "no answer in time"
            self.degraded = reason
            log.warning("remote schema unavailable at start", reason=reason)
            last = await self.source.last_schema()
            if last is not None:
                await self._guarded_build(*last)
        except SchemaConflict as error:
            self.degraded = f"remote schema not merged: {error}"
            log.error("remote schema not merged", reason=str(error))
        self._poller = asyncio.ensure_future(self._poll())

    async def aclose(self) -> None:
        """Stop polling, and wait until the poller has stopped: it must not outlive the
        sources it reads (a cancellation lost in a race would leave it polling closed clients;
        the closed flag ends it at its next turn)."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def refresh(self) -> None:
        """Read the latest sha; rebuild the merged schema if its fingerprint changed."""
        sha = await self.source.latest_sha(fresh=True)
        fingerprint, introspection = await self.source.introspection(sha)
        if self.merged is None or self.merged.fingerprint != fingerprint:
            await self._build(fingerprint, introspection)
        self.sha = sha
        self._note(sha, fingerprint)
        self.degraded = None

    async def _merge(self, fingerprint: str, introspection: dict[str, Any]) -> MergedSchema:
        """The gateway's schema merged with a remote one (in a thread), reverse joins wired."""
        merged = await asyncio.to_thread(
            merge_schema, self.base, introspection, self.table.sdl(), fingerprint
        )
        for (type_name, field_name), resolve in self._resolvers.items():
            parent = merged.schema.get_type(type_name)
            parent.fields[field_name].resolve = resolve  # type: ignore[union-attr]
        if self._adopt is not None:
            self._adopt(merged.schema)
        return merged

    async def _build(self, fingerprint: str, introspection: dict[str, Any]) -> None:
        merged = self._pinned.pop(fingerprint, None)
        if merged is None:
            merged = await self._merge(fingerprint, introspection)
        if self.merged is not None:  # still the schema of the bundles pinned before the change
            self._keep_pinned(self.merged)
        self.merged = merged
        self._plans.clear()
        self._install(merged.schema)
        self.builds += 1
        log.info("merged schema built", fingerprint=fingerprint[:12])

    async def merged_for(self, sha: str) -> MergedSchema:
        """The merged schema of bundle `sha`: the current one (for the latest bundle too, whose
        schema the poller merges within an interval), or an older bundle's (kept by fingerprint,
        at most MAX_PINNED_SCHEMAS); BundleNotFound for an unknown sha.

        qontract-server serves each bundle with its own schema, so a request pinned to an older
        bundle is validated and planned against that bundle's schema. When that schema cannot
        be learned (qontract-server down and not in Redis) or merged, the current one is used
        and the forwarded request meets qontract-server's own validation.
        """
        current = self.merged
        assert current is not None
        if sha == self.sha:
            return current
        fingerprint = self._fingerprints.get(sha)
        if fingerprint == current.fingerprint:
            return current
        if fingerprint is not None and fingerprint in self._pinned:
            self._pinned.move_to_end(fingerprint)
            return self._pinned[fingerprint]
        try:
            if fingerprint is None and await self._is_latest(sha):
                return current  # the latest bundle: its schema is merged within a poll interval
            fingerprint, introspection = await self.source.introspection(sha)
        except BundleNotFound:
            raise
        except GatewayError as error:
            log.warning("pinned bundle's schema unknown", sha=sha[:12], reason=error.message)
            return current
        self._note(sha, fingerprint)
        current = self.merged
        assert current is not None
        if fingerprint == current.fingerprint:
            return current
        if fingerprint in self._pinned:
            return self._pinned[fingerprint]
        merging = self._merging.get(fingerprint)
        if merging is None:
            merging = asyncio.ensure_future(self._merge(fingerprint, introspection))
            self._merging[fingerprint] = merging
            merging.add_done_callback(lambda _: self._merging.pop(fingerprint, None))
        try:
            merged = await asyncio.shield(merging)
        except SchemaConflict as error:
            log.warning("pinned bundle's schema not merged", sha=sha[:12], reason=str(error))
            return current
        self._keep_pinned(merged)
        return merged

    async def _is_latest(self, sha: str) -> bool:
        """Whether `sha` is the latest bundle (asked again before a sha is introspected: a
        /sha256 read costs far less than an introspection)."""
        return sha == await self.source.latest_sha() or sha == await self.source.latest_sha(
            fresh=True
        )

    def pinned_fingerprints(self) -> list[str]:
        """Fingerprints of the older bundles' merged schemas kept, least recently used first."""
        return list(self._pinned)

    def _note(self, sha: str, fingerprint: str) -> None:
        self._fingerprints[sha] = fingerprint
        self._fingerprints.move_to_end(sha)
        while len(self._fingerprints) > MAX_KNOWN_SHAS:
            self._fingerprints.popitem(last=False)

    def _keep_pinned(self, merged: MergedSchema) -> None:
        self._pinned[merged.fingerprint] = merged
        self._pinned.move_to_end(merged.fingerprint)
        while len(self._pinned) > MAX_PINNED_SCHEMAS:
            self._pinned.popitem(last=False)

    async def _guarded_build(self, fingerprint: str, introspection: dict[str, Any]) -> None:
        """Build from a stored schema; one that no longer merges is ignored."""
        try:
            await self._build(fingerprint, introspection)
        except SchemaConflict as error:
            log.error("stored remote schema not merged", reason=str(error))

    async def _poll(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.refresh()
            except GatewayError as error:
                self.degraded = error.message
            except SchemaConflict as error:  # keep serving the last merged schema
                self.degraded = f"remote schema not merged: {error}"
            except Exception:  # a bad remote schema must not stop the poller
                log.exception("merged schema refresh failed")

    def plan(
        self,
        document: DocumentNode,
        operation_name: str | None,
        query: str,
        merged: MergedSchema | None = None,
    ) -> Plan:
        """The cached plan of this document's operation for `merged` (the current schema)."""
        merged = merged or self.merged
        assert merged is not None
        cache_key = (query, operation_name, merged.fingerprint)
        plan = self._plans.get(cache_key)
        if plan is None:
            try:
                plan = plan_operation(
                    document, operation_name, merged.schema, merged.remote_roots, self.table
                )
            except ReservedAlias as error:
                raise BadUserInput(str(error)) from None
            if len(query) > MAX_PLANNED_QUERY:
                return plan
            self._plans[cache_key] = plan
            while len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(cache_key)
        return plan

    async def execute(
        self,
        plan: Plan,
        sha: str | None,
        variables: Mapping[str, Any] | None,
        run: GatewayRunner,
        merged: MergedSchema | None = None,
    ) -> Outcome:
        """Forward the remote part once (pinned), run one batch per group, splice the values
        (with `merged`, the schema of the pinned bundle, by default the current one)."""
        merged = merged or self.merged
        assert merged is not None
        assert plan.forwarded is not None
        sha = sha or await self.source.latest_sha()
        payload: dict[str, Any] = {"query": plan.forwarded}
        used = {
            name: (variables or {})[name]
            for name in plan.forwarded_variables
            if name in (variables or {})
        }
        if used:
            payload["variables"] = used
        if plan.operation_name:
            payload["operationName"] = plan.operation_name
        answer = await self.source.answer(sha, payload)
        splicer = Splicer(plan, self.table, merged.schema, variables)
        raw = scan(answer.body) if answer.status == 200 and splices_raw(plan) else None
        ran = False
        if raw is not None and splicer.collect_raw(raw.parents):
            extensions: dict[str, Any] = {"bundle_sha": sha}
            if raw.extensions is not None and "schemas" in raw.extensions:
                extensions["schemas"] = raw.extensions["schemas"]
            await self._run_batches(splicer, merged.schema, run)
            ran = True
            values = splicer.raw_values()
            if values is not None:
                spliced = orjson.Fragment(raw.spliced([list(v.items()) for v in values]))
                # `data` as encoded JSON: the view's orjson encoder writes it as is
                result = ExecutionResult(spliced, splicer.errors or None)  # type: ignore[arg-type]
                return Outcome(result, extensions)
        self.decoded += 1
        body = _decoded(answer)
        if not isinstance(body, dict):
            raise UpstreamError(
                f"{self.source.upstream} answered HTTP {answer.status} without a GraphQL result",
                upstream=self.source.upstream,
                status=answer.status,
            )
        extensions = {"bundle_sha": sha}
        if isinstance(body.get("extensions"), dict) and "schemas" in body["extensions"]:
            extensions["schemas"] = body["extensions"]["schemas"]
        errors = [self._remote_error(e) for e in body.get("errors") or []]
        data = body.get("data") if answer.status == 200 else None
        if not isinstance(data, dict):
            return Outcome(ExecutionResult(None, errors or None), extensions)
        splicer.collect(data)
        if not ran:
            await self._run_batches(splicer, merged.schema, run)
        errors += splicer.splice(data)
        ordered = {key: data[key] for key in plan.root_keys if key in data}
        ordered.update((key, value) for key, value in data.items() if key not in ordered)
        return Outcome(ExecutionResult(ordered, errors or None), extensions)

    @staticmethod
    async def _run_batches(splicer: Splicer, schema: GraphQLSchema, run: GatewayRunner) -> None:
        """Run the caller's gateway root fields and one document per batch call, together."""
        results = await run(schema, splicer.gateway_documents())
        answered: dict[str, Any] = {}
        failures: list[GraphQLError] = []
        for result in results:
            answered.update(result.data or {})
            failures.extend(result.errors or [])
        splicer.read(answered, failures)

    def _remote_error(self, error: Any) -> GraphQLError:
        message = str(error.get("message", "error")) if isinstance(error, dict) else str(error)
        path = error.get("path") if isinstance(error, dict) else None
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        original = UpstreamError(message, upstream=self.source.upstream, upstream_code=code)
        return GraphQLError(
            message, path=path if isinstance(path, list) else None, original_error=original
        )


def _decoded(answer: RemoteAnswer) -> Any:
    """The answer's JSON (exact integers: orjson would turn those beyond 64 bits into floats),
    decoded with the garbage collector paused: a megabyte answer is ~10^5 new objects, which
    would otherwise trigger full collections of the whole process on the way."""
    if answer.status not in (200, 400):
        return None
    paused = gc.isenabled()
    gc.disable()
    try:
        return json.loads(answer.body)
    except ValueError:
        return None
    finally:
        if paused:
            gc.enable()
