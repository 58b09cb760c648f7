"""`qontract-gateway`: serve, worker, notifier, token, export-schema, fetch-graphiql-assets."""

import ipaddress
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click
import structlog
import uvicorn
from prometheus_client import CollectorRegistry

from gateway.auth import SCOPES, mint_token
from gateway.embedded_redis import EmbeddedRedis
from gateway.graphiql.assets import ASSETS_DIR, AssetFetchError, fetch_assets
from gateway.http_protocol import bounded_http_protocol
from gateway.logging import configure_logging
from gateway.metrics import GatewayMetrics
from gateway.settings import CONFIG_FILE_VARIABLE, QueryLimits, Settings, load_settings
from gateway.tasks.engine import QUEUES
from gateway.tasks.kinds import KindsFactory

log = structlog.get_logger("gateway.cli")

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or TOML settings file (environment variables QONTRACT_GATEWAY_* win).",
)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(config_file: Path | None = None) -> Settings:
    try:
        return load_settings(config_file)
    except (OSError, ValueError) as error:  # InvalidSettings is a ValueError
        raise click.ClickException(str(error)) from None


def _check_credentials(settings: Settings) -> None:
    """Fail fast on a misconfigured account or an `env`/`file` credential that cannot be read
    (Vault ones are read by the process at start-up)."""
    from gateway.registry import read_credentials
    from resolvers.systems import SYSTEMS

    try:
        read_credentials(settings.upstreams, SYSTEMS)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@click.group()
def main() -> None:
    """qontract-gateway: GraphQL gateway for qontract reconcile integrations."""


@main.command()
@config_option
@click.option("--host", help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 4000).")
@click.option("--workers", type=int, help="uvicorn worker processes (default 1).")
@click.option(
    "--role",
    type=click.Choice(["all", "api"]),
    help="all: API and task worker in one process; api: API only.",
)
def serve(
    config_file: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    role: str | None,
) -> None:
    """Serve GraphQL; with no Redis configured, start a private embedded one."""
    if config_file is not None:
        os.environ[CONFIG_FILE_VARIABLE] = str(config_file.resolve())
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers), ("ROLE", role)):
        if value is not None:
            os.environ[f"QONTRACT_GATEWAY_{name}"] = str(value)
    settings = _load()
    configure_logging(settings.log_format, settings.log_level)
    _check_credentials(settings)
    if settings.auth.secret is None:
        if not is_loopback(settings.host):
            raise click.UsageError(
                f"refusing to listen on {settings.host} without an auth secret: set "
                "QONTRACT_GATEWAY_AUTH__SECRET (or auth.secret in the config file), "
                "or listen on 127.0.0.1"
            )
        log.warning(
            "auth disabled: no secret configured; anonymous callers have every scope, "
            "listening on loopback only"
        )
    embedded = None
    if settings.redis.url is None:
        embedded = EmbeddedRedis().start()
        os.environ["QONTRACT_GATEWAY_REDIS__URL"] = embedded.url
        os.environ["QONTRACT_GATEWAY_REDIS__EMBEDDED"] = "true"
        log.info("embedded redis started", socket=str(embedded.socket_path))
    # uvicorn re-raises SIGTERM after its graceful shutdown; exit through `finally` instead.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            "gateway.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http=bounded_http_protocol(settings.http),  # type: ignore[arg-type]
            ws="websockets-sansio",
            ws_max_size=settings.limits.max_body_bytes,
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=True,
        )
    finally:
        if embedded is not None:
            embedded.stop()
            log.info("embedded redis stopped")


@main.command()
@config_option
@click.option(
    "--queues",
    default=",".join(QUEUES),
    show_default=True,
    help="Comma-separated task queues to consume.",
)
@click.option("--concurrency", type=int, default=1, show_default=True, help="Worker processes.")
def worker(config_file: Path | None, queues: str, concurrency: int) -> None:
    """Run tasks from the shared Redis (Celery, JSON only) for `serve --role api` gateways."""
    settings = _load(config_file)
    configure_logging(settings.log_format, settings.log_level)
    if settings.redis.url is None:
        raise click.UsageError(
            "a worker needs the gateway's Redis: set QONTRACT_GATEWAY_REDIS__URL"
        )
    names = [name.strip() for name in queues.split(",") if name.strip()]
    unknown = set(names) - set(QUEUES)
    if unknown or not names:
        raise click.BadParameter(f"known queues: {', '.join(QUEUES)}", param_hint="--queues")
    _check_credentials(settings)
    from gateway.registry import worker_kinds
    from resolvers.systems import SYSTEMS

    run_worker(settings, names, concurrency, worker_kinds(SYSTEMS))


def run_worker(
    settings: Settings, queues: list[str], concurrency: int, kinds: KindsFactory
) -> None:
    """Consume `queues` with `concurrency` Celery processes running the kinds `kinds` makes."""
    from gateway.tasks.worker import create_worker_app

    create_worker_app(settings, kinds).worker_main(
        argv=[
            "worker",
            f"--queues={','.join(queues)}",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={settings.log_level.upper()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


@main.command()
@config_option
@click.option("--port", type=int, help="Port of /healthz, /readyz, /metrics (notifier.port).")
@click.option("--dry-run", is_flag=True, help="Log what would be posted; post nothing.")
def notifier(config_file: Path | None, port: int | None, dry_run: bool) -> None:
    """Post what real runs changed to Slack, reading the events as a durable consumer group."""
    settings = _load(config_file)
    configure_logging(settings.log_format, settings.log_level)
    if settings.redis.url is None:
        raise click.UsageError(
            "the notifier needs the gateway's Redis: set QONTRACT_GATEWAY_REDIS__URL"
        )
    if settings.events.backend != "redis":
        raise click.UsageError("the notifier reads the redis event backend (events.backend)")
    from gateway.registry import configured_accounts
    from resolvers.systems import SYSTEMS

    workspaces = {
        system.account_name(account)
        for system, account in configured_accounts(settings.upstreams, SYSTEMS)
        if system.name == "slack"
    }
    unknown = sorted(set(settings.notifier.channels) - workspaces)
    if unknown:
        raise click.UsageError(
            f"notifier.channels names Slack workspaces that are not configured: {unknown}"
        )
    _check_credentials(settings)
    from gateway.notifier.process import notifier_app

    uvicorn.run(
        notifier_app(settings, dry_run=dry_run),
        host=settings.notifier.host,
        port=port or settings.notifier.port,
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


@main.command()
@config_option
@click.option("--subject", required=True, help="Who the token is for (JWT `sub`).")
@click.option("--scopes", required=True, help=f"Comma-separated scopes: {', '.join(SCOPES)}.")
@click.option(
    "--expires-days", type=int, help="Validity in days (default: auth.default_expiry_days)."
)
def token(config_file: Path | None, subject: str, scopes: str, expires_days: int | None) -> None:
    """Mint a bearer token signed with the configured auth secret; prints only the token."""
    settings = _load(config_file)
    if settings.auth.secret is None:
        raise click.UsageError("no auth secret configured (QONTRACT_GATEWAY_AUTH__SECRET)")
    try:
        minted = mint_token(
            settings.auth.secret.get_secret_value(),
            subject,
            [s.strip() for s in scopes.split(",") if s.strip()],
            expires_days or settings.auth.default_expiry_days,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--scopes") from None
    click.echo(minted)


@main.command("export-schema")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def export_schema(output: Path | None) -> None:
    """Print the GraphQL SDL (checked in as schema/schema.graphql)."""
    from resolvers.systems import SYSTEMS
    from schema import build_schema, export_sdl

    sdl = export_sdl(build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS))
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)


@main.command("fetch-graphiql-assets")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=ASSETS_DIR,
    show_default=True,
    help="Directory to put the files in (the gateway serves them from the default).",
)
def fetch_graphiql_assets(dest: Path) -> None:
    """Fetch GraphiQL's files with `npm pack`, verified against the page's SRI hashes."""
    try:
        fetched = fetch_assets(dest)
    except AssetFetchError as error:
        raise click.ClickException(str(error)) from None
    for asset in fetched:
        click.echo(f"fetched {asset.relative_path}")
    if not fetched:
        click.echo(f"all GraphiQL assets present and valid in {dest}")
