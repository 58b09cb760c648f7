"""The system registry: what each upstream system declares, and the sources built from it.

A system (`resolvers/<system>/system.py`) is one `System` value; the app factory and the worker
build everything (settings checks, sources, GraphQL root fields, task kinds) from one tuple of
them. Nothing here knows any particular system.
"""

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from gateway.credentials import CredentialHeaders, SecretReader
from gateway.errors import BadUserInput, shown
from gateway.ratelimit import Bucket, BucketSpec
from gateway.runtime import Runtime
from gateway.settings import (
    Credential,
    InvalidSettings,
    RateLimitSettings,
    UpstreamAccountSettings,
    validation_problems,
)
from gateway.tasks.kinds import KindsFactory, TaskFunction, TaskKinds
from gateway.upstream import (
    OutageSignal,
    RateLimitSignal,
    UpstreamAccount,
    UpstreamClient,
    UpstreamPolicy,
    http_429,
    no_outage,
)

A = TypeVar("A", bound=BaseModel)
S = TypeVar("S")

SINGLE_ACCOUNT = "default"
"""The account name of a system configured as one mapping rather than a list (qontract-server)."""


@dataclass(frozen=True)
class Connection:
    """How one account is reached: base URL, credential, configured limit and HTTP policy;
    `verify` False skips the TLS certificate check (a cluster's `insecure_skip_tls_verify`)."""

    base_url: str
    token: Credential | None
    rate_limit: RateLimitSettings | None
    policy: UpstreamPolicy
    fetch_slots: bool = True
    verify: bool = True


def account_connection(account: UpstreamAccountSettings) -> Connection:
    """The connection of an ordinary account: `api_url`, `token`, `rate_limit`, `timeout`."""
    return Connection(
        account.api_url,
        account.token,
        account.rate_limit,
        UpstreamPolicy(read_timeout=account.timeout),
    )


def configured_spec(limit: RateLimitSettings | None) -> BucketSpec | None:
    """The bucket of a configured `rate_limit`, or None when the system default applies."""
    if limit is None:
        return None
    return BucketSpec.within(limit.requests, limit.per_seconds, burst=limit.burst)


_ACCOUNT_CONNECTION: Callable[[Any], Connection] = account_connection


@dataclass(frozen=True)
class SystemSchema:
    """A system's GraphQL part: Strawberry types whose fields join the root Query and Mutation,
    which root fields are served from the shared cache, types only reachable by interface, and
    per task kind the converter of its JSON result to its typed result (`ReconcileTask_v1.
    typed_result`, whose type each result type implements)."""

    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()
    cache_backed: frozenset[str] = frozenset()
    types: tuple[type, ...] = ()
    results: Mapping[str, Callable[[dict[str, Any]], object]] = field(default_factory=dict)


@dataclass(frozen=True)
class Repositories:
    """What a system hosting git repositories (the `vcs_*` fields) declares: the host of an
    account's repository URLs, and whether an account serves only the owner it is named after
    (GitHub: one account per org, all on github.com)."""

    host: Callable[[Any], str]
    by_owner: bool = False


class SecretStore(SecretReader, Protocol):
    """A secret reader with a lifetime: logs in at `start`, stops renewing at `aclose`."""

    async def start(self) -> None:
        """Log in; CredentialUnavailable names what failed."""

    async def aclose(self) -> None:
        """Stop renewals and close connections."""


SourceFactory = Callable[[A, UpstreamClient, Runtime], S]


@dataclass(frozen=True)
class OwnConnections(Generic[A, S]):
    """How a system not spoken over HTTP (LDAP) makes its source: from the account, its
    credential (built by the system's `headers`) and the runtime, with connections, timeouts,
    retries and breaker of its own; `close` ends those connections."""

    source: Callable[[A, CredentialHeaders | None, Runtime], S]
    close: Callable[[S], Awaitable[None]]


SystemKinds = Callable[["Sources", Runtime], Mapping[str, TaskFunction]]


@dataclass(frozen=True)
class System(Generic[A, S]):
    """One upstream system, declared once: every other part of the gateway reads it from here.

    `name` keys `upstreams.<name>` in the settings, cache keys, buckets and metric labels
    (`label` replaces it in buckets, metrics and errors where those predate the registry);
    `account_noun` names an account to callers ("Slack workspace"); `settings` validates one
    account (per-system options live there); `source` turns an account and its pooled HTTP
    client (drawing on a bucket of `rate_limit`) into the cached source the schema and task
    kinds use; a system with `own_connections` instead (LDAP) has neither. `secret_store`
    marks the system keeping other accounts' `vault` credentials (Vault): it is built first,
    and those credentials are read through it.
    """

    name: str
    account_noun: str
    settings: type[A]
    source_type: type[S]
    headers: Callable[[str | None, A], dict[str, str]]
    source: SourceFactory[A, S] | None = None
    rate_limit: BucketSpec | None = None
    own_connections: OwnConnections[A, S] | None = None
    tier: str = "api"
    ttl: Mapping[str, float] = field(default_factory=dict)
    connection: Callable[[A], Connection] = _ACCOUNT_CONNECTION
    rate_limit_signal: RateLimitSignal = http_429
    outage_signal: OutageSignal = no_outage
    single: bool = False
    label: str | None = None
    graphql: SystemSchema = SystemSchema()
    repositories: Repositories | None = None
    secret_store: Callable[[Mapping[str, Any]], SecretStore] | None = None
    task_kinds: SystemKinds | None = None

    def __post_init__(self) -> None:
        if (self.source is None) == (self.own_connections is None):
            raise TypeError(f"system {self.name}: declare one of `source` and `own_connections`")
        if self.source is not None and self.rate_limit is None:
            raise TypeError(f"system {self.name}: an HTTP system declares its `rate_limit`")

    def accounts(self, raw: object) -> list[A]:
        """The accounts of `upstreams.<name>`; InvalidSettings names the field that is wrong."""
        where = f"upstreams.{self.name}"
        if isinstance(raw, str):  # from QONTRACT_GATEWAY_UPSTREAMS__<SYSTEM>, as JSON
            try:
                raw = json.loads(raw)
            except ValueError:
                raise InvalidSettings(f"invalid settings: {where}: not JSON") from None
        items = [raw] if self.single else raw
        if not isinstance(items, list):
            shape = "a mapping" if self.single else "a list of accounts"
            raise InvalidSettings(f"invalid settings: {where}: must be {shape}")
        accounts: list[A] = []
        for index, item in enumerate(items):
            at = where if self.single else f"{where}.{index}"
            try:
                account = self.settings.model_validate(item)
            except ValidationError as error:
                raise InvalidSettings(
                    f"invalid settings: {validation_problems(error, at)}"
                ) from None
            unknown = sorted(set(getattr(account, "ttl", {})) - set(self.ttl))
            if unknown:
                known = ", ".join(sorted(self.ttl)) or "none"
                raise InvalidSettings(
                    f"invalid settings: {at}.ttl: unknown data type(s) {', '.join(unknown)} "
                    f"of {self.name}; known: {known}"
                )
            accounts.append(account)
        names = [self.account_name(account) for account in accounts]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InvalidSettings(
                f"invalid settings: {where}: account names repeated: {', '.join(repeated)}"
            )
        return accounts

    @property
    def upstream(self) -> str:
        """How buckets, metrics and errors name the system (`label`, else `name`)."""
        return self.label or self.name

    def account_name(self, account: A) -> str:
        """The name callers use for `account`."""
        return SINGLE_ACCOUNT if self.single else str(getattr(account, "name", ""))

    def credential(self, account: A, secrets: SecretReader | None) -> CredentialHeaders | None:
        """The headers of `account` from its credential: read now for `env`/`file`, through
        `secrets` per request for `vault`; None for an account without a credential."""
        token = self.connection(account).token
        if token is None:
            return None
        return CredentialHeaders(token, lambda value: self.headers(value, account), secrets)

    def client(
        self, account: A, runtime: Runtime, credential: CredentialHeaders | None = None
    ) -> UpstreamClient:
        """A pooled client for `account` drawing on its shared bucket (system, account, tier),
        sending the headers of `credential`."""
        connection = self.connection(account)
        name = self.account_name(account)
        spec = configured_spec(connection.rate_limit) or self.rate_limit
        if spec is None:
            raise TypeError(f"system {self.name} is not spoken over HTTP")
        return UpstreamClient(
            UpstreamAccount(
                system=self.upstream,
                name=name,
                base_url=connection.base_url,
                bucket=Bucket(self.upstream, name, self.tier, spec),
                headers=credential.fixed if credential else self.headers(None, account),
                rate_limit_signal=self.rate_limit_signal,
                outage_signal=self.outage_signal,
                credential_headers=credential.changing if credential else None,
                verify=connection.verify,
            ),
            runtime.limiter,
            runtime.upstream_metrics,
            connection.policy,
            runtime.fetch_slots if connection.fetch_slots else None,
        )


AnySystem = System[Any, Any]


def configured_accounts(
    upstreams: Mapping[str, object], systems: Iterable[AnySystem]
) -> list[tuple[AnySystem, Any]]:
    """(system, account) of every configured account, in the systems' order; InvalidSettings
    for an unknown system or an account that does not validate against its system."""
    by_name = {system.name: system for system in systems}
    unknown = sorted(set(upstreams) - set(by_name))
    if unknown:
        raise InvalidSettings(
            f"invalid settings: upstreams.{unknown[0]}: unknown system; "
            f"known: {', '.join(sorted(by_name))}"
        )
    return [
        (system, account)
        for name, system in by_name.items()
        if upstreams.get(name) is not None
        for account in system.accounts(upstreams[name])
    ]


def read_credentials(upstreams: Mapping[str, object], systems: Iterable[AnySystem]) -> None:
    """Check every configured account and read its credential, so `serve` fails at start-up."""
    for system, account in configured_accounts(upstreams, systems):
        token = system.connection(account).token
        if token is None or token.vault is not None:
            continue  # a `vault` one is read when the app starts (Sources.start)
        try:
            token.read()
        except InvalidSettings as error:
            name = system.account_name(account)
            raise InvalidSettings(f"{system.name} account {name!r}: {error}") from None


class Sources:
    """The source of every configured account, built once per process from the systems and
    shared by the GraphQL API and the task kinds."""

    def __init__(self, systems: Iterable[AnySystem]) -> None:
        self.systems = {system.name: system for system in systems}
        self._sources: dict[str, dict[str, Any]] = {name: {} for name in self.systems}
        self._kinds: dict[type, str] = {
            system.source_type: name for name, system in self.systems.items()
        }
        self.clients: list[UpstreamClient] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._hosts: dict[str, list[tuple[AnySystem, str, Any]]] = {}
        self.secrets: SecretStore | None = None
        self._credentials: list[tuple[str, CredentialHeaders]] = []

    @classmethod
    def create(cls, runtime: Runtime, systems: Iterable[AnySystem]) -> "Sources":
        """Sources for `runtime.settings.upstreams`, validated by `systems`; reads `env`/`file`
        credentials now, `vault` ones through the secret store (at `start`, or first use)."""
        sources = cls(systems)
        accounts = configured_accounts(runtime.settings.upstreams, sources.systems.values())
        stores = [system for system in sources.systems.values() if system.secret_store]
        for system, account in accounts:
            if system.secret_store is not None:
                sources._add(system, account, runtime)
        for system in stores:
            assert system.secret_store is not None
            sources.secrets = system.secret_store(sources._sources[system.name])
        for system, account in accounts:
            if system.secret_store is None:
                sources._add(system, account, runtime)
        return sources

    def _add(self, system: AnySystem, account: Any, runtime: Runtime) -> None:
        """Build `account`'s credential headers, client (or own connections) and source."""
        name = system.account_name(account)
        credential = system.credential(account, self.secrets)
        if credential is not None and credential.changing is not None:
            self._credentials.append((f"{system.name} account {name!r}", credential))
        if system.own_connections is not None:
            made = system.own_connections.source(account, credential, runtime)
            self._closers.append(partial(system.own_connections.close, made))
        else:
            assert system.source is not None  # one of the two, checked at declaration
            client = system.client(account, runtime, credential)
            self.clients.append(client)
            made = system.source(account, client, runtime)
        self._sources[system.name][name] = made
        if system.repositories is not None:
            host = system.repositories.host(account).lower()
            self._hosts.setdefault(host, []).append((system, name, made))

    async def start(self) -> None:
        """Log in to the secret store and read every credential kept there: a clear error
        (CredentialUnavailable) naming the account if one fails."""
        if self.secrets is not None:
            await self.secrets.start()
        for owner, credential in self._credentials:
            await credential.verify(owner)

    def of(self, kind: type[S]) -> dict[str, S]:
        """Every configured source of class `kind`, by account name (empty when none)."""
        system = self._kinds.get(kind)
        return {} if system is None else cast(dict[str, S], self._sources[system])

    def get(self, kind: type[S], name: str) -> S:
        """The source of class `kind` for account `name`, or BAD_USER_INPUT naming the known."""
        found = self.of(kind)
        if name in found:
            return found[name]
        system = self._kinds.get(kind)
        noun = self.systems[system].account_noun if system else kind.__name__
        known = ", ".join(sorted(found)) or "none"
        raise BadUserInput(f"unknown {noun} {shown(name)}; configured: {known}")

    def repository_source(self, host: str, owner: str) -> tuple[str, Any]:
        """(system name, source) of the account serving repositories of `owner` on `host`;
        BAD_USER_INPUT naming the known hosts, or the known accounts of a by-owner host."""
        hosted = self._hosts.get(host.lower())
        if not hosted:
            known = ", ".join(sorted(self._hosts)) or "none"
            raise BadUserInput(f"unknown repository host {shown(host)}; configured: {known}")
        system = hosted[0][0]
        if system.repositories is not None and not system.repositories.by_owner:
            return system.name, hosted[0][2]
        for _, name, source in hosted:
            if name == owner:
                return system.name, source
        known = ", ".join(sorted(name for _, name, _ in hosted))
        raise BadUserInput(f"unknown {system.account_noun} {shown(owner)}; configured: {known}")

    def accounts(self) -> list[tuple[str, str]]:
        """(system, account name) of every configured account."""
        return [(system, name) for system, named in self._sources.items() for name in named]

    def task_kinds(self, runtime: Runtime) -> TaskKinds:
        """The task kinds every system declares, working on these sources."""
        kinds = TaskKinds()
        for system in self.systems.values():
            if system.task_kinds is not None:
                for kind, function in system.task_kinds(self, runtime).items():
                    kinds.register(kind, function)
        return kinds

    async def aclose(self) -> None:
        """Stop the secret store's renewals and close every upstream connection pool."""
        if self.secrets is not None:
            await self.secrets.aclose()
        for client in self.clients:
            await client.aclose()
        for close in self._closers:
            await close()


def worker_kinds(systems: Iterable[AnySystem]) -> KindsFactory:
    """The task kinds of a worker process: its own sources (built once, closed with the kinds)
    and every kind `systems` declare."""
    declared = tuple(systems)

    def make(runtime: Runtime) -> TaskKinds:
        sources = Sources.create(runtime, declared)
        kinds = sources.task_kinds(runtime)
        kinds.closers.append(sources.aclose)
        return kinds

    return make


def repo_of_url(repo_url: str) -> tuple[str, str]:
    """(host, `owner/name` or `group/.../project`) of `https://host/owner/name[.git]`, or
    BAD_USER_INPUT."""
    parts = urlsplit(repo_url)
    segments = [s for s in parts.path.split("/") if s]
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not host or len(segments) < 2:
        raise BadUserInput(
            f"{shown(repo_url)} is not a repository URL like https://host/owner/name"
        )
    segments[-1] = segments[-1].removesuffix(".git")
    return host, "/".join(segments)
