"""qontract-server, declared to the system registry: one server, federated (see README)."""

from gateway.registry import Connection, System
from gateway.runtime import Runtime
from gateway.upstream import UpstreamClient, UpstreamPolicy
from resolvers.qontract_server.api import QONTRACT_SERVER, QontractServerApi, auth_headers
from resolvers.qontract_server.settings import QontractServerSettings
from resolvers.qontract_server.source import UPSTREAM, QontractServerSource


def connection(settings: QontractServerSettings) -> Connection:
    """Few, bounded retries; the breaker cools down for one poll interval."""
    return Connection(
        settings.url,
        settings.token,
        None,
        UpstreamPolicy(
            read_timeout=settings.timeout,
            max_attempts=3,
            max_total_seconds=settings.timeout,
            failure_threshold=3,
            cool_down=settings.poll_interval,
        ),
        fetch_slots=False,
    )


def headers(token: str | None, settings: QontractServerSettings) -> dict[str, str]:
    """The server's own token (never the caller's), in the configured scheme."""
    return auth_headers(token, settings.auth_scheme)


def source(
    settings: QontractServerSettings, client: UpstreamClient, runtime: Runtime
) -> QontractServerSource:
    """The federated server's answers, schemas and latest sha."""
    return QontractServerSource(
        QontractServerApi(client),
        runtime.redis,
        runtime.settings.redis.namespace,
        settings,
    )


SYSTEM = System(
    name="qontract_server",
    label=UPSTREAM,
    account_noun="qontract-server",
    settings=QontractServerSettings,
    source_type=QontractServerSource,
    source=source,
    headers=headers,
    rate_limit=QONTRACT_SERVER,
    tier="graphql",
    connection=connection,
    single=True,
)
"""Its GraphQL fields are qontract-server's own, merged by the federation (gateway/federation)."""
