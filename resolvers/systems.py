"""Every upstream system the gateway ships, in schema order: the one tuple the app and the
worker are built from (see gateway/registry.py, README "Adding a system")."""

from gateway.registry import AnySystem
from resolvers.github.system import SYSTEM as GITHUB
from resolvers.gitlab.system import SYSTEM as GITLAB
from resolvers.jira.system import SYSTEM as JIRA
from resolvers.ldap.system import SYSTEM as LDAP
from resolvers.pagerduty.system import SYSTEM as PAGERDUTY
from resolvers.qontract_server.system import SYSTEM as QONTRACT_SERVER
from resolvers.slack.system import SYSTEM as SLACK
from resolvers.vault.system import SYSTEM as VAULT

SYSTEMS: tuple[AnySystem, ...] = (
    VAULT,
    QONTRACT_SERVER,
    PAGERDUTY,
    SLACK,
    GITHUB,
    JIRA,
    GITLAB,
    LDAP,
)
