"""`qontract-reconcile-api`: the integrations' command line."""

import logging
from pathlib import Path

import click

from reconcile_client.config import ClientConfig, load_config
from reconcile_client.errors import ConfigError, ExitCode
from reconcile_client.integrations.event_log_sink import (
    EventLogSinkIntegration,
    EventLogSinkParams,
)
from reconcile_client.integrations.github_owners_api import (
    GitHubOwnersIntegration,
    GitHubOwnersIntegrationParams,
)
from reconcile_client.integrations.ldap_users_api import (
    DEFAULT_INFRA_PATHS,
    LdapUsersIntegration,
    LdapUsersIntegrationParams,
)
from reconcile_client.integrations.ldap_users_state import DEFAULT_MAX_DELETE_FRACTION
from reconcile_client.integrations.openshift_namespaces_api import (
    OpenShiftNamespacesIntegration,
    OpenShiftNamespacesIntegrationParams,
)
from reconcile_client.integrations.slack_usergroups_api import (
    SlackUsergroupsIntegration,
    SlackUsergroupsIntegrationParams,
)
from reconcile_client.runner import run_class_integration


@click.group()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML or TOML file (environment variables QONTRACT_RECONCILE_API_* win).",
)
@click.option(
    "--dry-run/--no-dry-run",
    default=True,
    show_default=True,
    help="Compute and report the actions without applying them.",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, dry_run: bool, log_level: str) -> None:
    """Run qontract reconcile integrations that talk to the qontract-gateway."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(message)s")
    for chatty in ("httpx", "gql", "websockets"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        config = load_config(config_file)
    except ConfigError as error:
        click.echo(f"ERROR: {error}", err=True)
        ctx.exit(ExitCode.USAGE)
    ctx.obj = (config, dry_run)


@main.command("slack-usergroups-api", short_help="Manage Slack usergroups via the gateway.")
@click.option("--workspace-name", default=None, help="Only this Slack workspace.")
@click.option("--usergroup-name", default=None, help="Only this usergroup handle.")
@click.pass_context
def slack_usergroups_api(
    ctx: click.Context, workspace_name: str | None, usergroup_name: str | None
) -> None:
    """Slack usergroups (users, description, channels) from app-interface, via the gateway."""
    config, dry_run = _context(ctx)
    params = SlackUsergroupsIntegrationParams(
        workspace_name=workspace_name, usergroup_name=usergroup_name
    )
    integration = SlackUsergroupsIntegration(params, config)
    ctx.exit(run_class_integration(integration, dry_run))


@main.command("openshift-namespaces-api", short_help="Manage OpenShift namespaces via the gateway.")
@click.option("--cluster-name", default=None, help="Only this cluster.")
@click.option("--namespace-name", default=None, help="Only namespaces with this name.")
@click.pass_context
def openshift_namespaces_api(
    ctx: click.Context, cluster_name: str | None, namespace_name: str | None
) -> None:
    """Namespaces (present or deleted) from app-interface, created and deleted via the gateway."""
    config, dry_run = _context(ctx)
    params = OpenShiftNamespacesIntegrationParams(
        cluster_name=cluster_name, namespace_name=namespace_name
    )
    integration = OpenShiftNamespacesIntegration(params, config)
    ctx.exit(run_class_integration(integration, dry_run))


@main.command("github-owners-api", short_help="Add GitHub org owners via the gateway.")
@click.option("--org", "org_name", default=None, help="Only this GitHub org.")
@click.pass_context
def github_owners_api(ctx: click.Context, org_name: str | None) -> None:
    """GitHub org owners from app-interface roles, added via the gateway (never removed)."""
    config, dry_run = _context(ctx)
    params = GitHubOwnersIntegrationParams(org_name=org_name)
    ctx.exit(run_class_integration(GitHubOwnersIntegration(params, config), dry_run))


@main.command("ldap-users-api", short_help="Delete app-interface users gone from LDAP.")
@click.option("--ldap-instance", required=True, help="The gateway's LDAP account to ask.")
@click.option(
    "--app-interface-repo-url", required=True, help="App-interface GitLab repository URL."
)
@click.option("--app-interface-target-branch", default="master", show_default=True)
@click.option("--infra-repo-url", default=None, help="Infra GitLab repository URL (optional).")
@click.option("--infra-target-branch", default="master", show_default=True)
@click.option(
    "--infra-path",
    "infra_paths",
    multiple=True,
    default=DEFAULT_INFRA_PATHS,
    show_default=True,
    help="Infra YAML files whose user lists are edited (repeatable).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    default=["ldap-users"],
    show_default=True,
    help="Labels of the merge requests (repeatable).",
)
@click.option(
    "--max-delete-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=DEFAULT_MAX_DELETE_FRACTION,
    show_default=True,
    help="Abort, deleting nobody, when more than this fraction of the users would go.",
)
@click.pass_context
def ldap_users_api(
    ctx: click.Context,
    ldap_instance: str,
    app_interface_repo_url: str,
    app_interface_target_branch: str,
    infra_repo_url: str | None,
    infra_target_branch: str,
    infra_paths: tuple[str, ...],
    labels: tuple[str, ...],
    max_delete_fraction: float,
) -> None:
    """One merge request per app-interface user that LDAP no longer has, deleting its files
    (and one on the infra repository, when given, moving them to `deleted_users`)."""
    config, dry_run = _context(ctx)
    params = LdapUsersIntegrationParams(
        ldap_instance=ldap_instance,
        app_interface_repo_url=app_interface_repo_url,
        app_interface_target_branch=app_interface_target_branch,
        infra_repo_url=infra_repo_url,
        infra_target_branch=infra_target_branch,
        infra_paths=list(infra_paths),
        labels=list(labels),
        max_delete_fraction=max_delete_fraction,
    )
    ctx.exit(run_class_integration(LdapUsersIntegration(params, config), dry_run))


@main.command("event-log-sink", short_help="Write the gateway's events as JSON lines.")
@click.option("--group", required=True, help="Consumer group: listeners in one group share.")
@click.option("--consumer", required=True, help="This listener's name within the group.")
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
@click.pass_context
def event_log_sink(ctx: click.Context, group: str, consumer: str, types: tuple[str, ...]) -> None:
    """Each event of the group as one JSON line on stdout; acked after the line is written.

    In dry run (the default) nothing is acknowledged, so the group sees the events again.
    """
    config, dry_run = _context(ctx)
    params = EventLogSinkParams(group=group, consumer=consumer, types=list(types) or None)
    ctx.exit(run_class_integration(EventLogSinkIntegration(params, config), dry_run))


def _context(ctx: click.Context) -> tuple[ClientConfig, bool]:
    config, dry_run = ctx.obj
    assert isinstance(config, ClientConfig)
    return config, bool(dry_run)
