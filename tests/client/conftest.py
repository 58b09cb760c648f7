"""Real parts for the client: a qontract-server emulator, PagerDuty emulator and gateway."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_server import (
    QontractServerEmulator,
    cluster,
    integration,
    role,
    user,
    usergroup,
    workspace,
)
from tests.support.server_thread import ServerThread

PD_TOKEN = "pd-secret-token-value-123"
REPO_ROOT = Path(__file__).resolve().parents[2]
SLOT_FORMAT = "%Y-%m-%d %H:%M"
ONCALL_WELCOME = "You are on call now."


def slot(start: datetime, end: datetime, *users: str) -> dict[str, Any]:
    """A ScheduleEntry_v1."""
    return {
        "start": start.strftime(SLOT_FORMAT),
        "end": end.strftime(SLOT_FORMAT),
        "users": [user(name) for name in users],
    }


def app_interface_bundle() -> dict[str, Any]:
    """Two workspaces (one not run by slack-usergroups), usergroups of every member source.

    The cluster `prod` gives dave (through a role's group access) the usergroup `prod-cluster`;
    `oncall` asks for a DM to the users a run adds.
    """
    now = datetime.now(tz=UTC)
    coreos = workspace("coreos", ["oncall", "rotation", "skipped"], ["slack-usergroups"])
    elsewhere = workspace("elsewhere", ["ignored"], ["other-integration"])
    app_sre = {"name": "app-sre"}
    users = [
        user("alice", pagerduty="alice"),
        user("robert", pagerduty="bob"),
        user("carol"),
        user("dave"),
        user("erin"),
        user("frank"),
    ]
    return {
        "integrations_v1": [integration("slack-usergroups-api")],
        "users_v1": users,
        "clusters_v1": [cluster("prod")],
        "roles_v1": [
            role(
                "prod-admins",
                [user("dave")],
                access=[{"cluster": {"name": "prod"}, "group": "admins", "namespace": None}],
            )
        ],
        "permissions_v1": [
            {
                "$schema": "/access/permission-1.yml",
                "__typename": "PermissionGithubOrgTeam_v1",
                "path": "/permissions/gh.yml",
                "name": "gh",
                "description": "a GitHub team",
                "service": "github-org-team",
                "org": "app-sre",
                "team": "t",
            },
            usergroup(
                "oncall",
                coreos,
                channels=["sre", "#alerts"],
                notifications=[{"action": "addUser", "message": ONCALL_WELCOME}],
                roles=[{"name": "sre", "users": [user("dave")]}],
                pagerduty=[
                    {
                        "name": "primary",
                        "instance": app_sre,
                        "scheduleID": "PB",
                        "escalationPolicyID": None,
                    },
                    {
                        "name": "policy",
                        "instance": app_sre,
                        "scheduleID": None,
                        "escalationPolicyID": "EP1",
                    },
                ],
            ),
            usergroup(
                "rotation",
                coreos,
                schedule={
                    "$schema": "/app-sre/schedule-1.yml",
                    "path": "/schedules/rotation.yml",
                    "name": "rotation",
                    "schedule": [
                        slot(now - timedelta(hours=1), now + timedelta(hours=1), "erin"),
                        slot(now - timedelta(days=2), now - timedelta(days=1), "frank"),
                    ],
                },
            ),
            usergroup(
                "skipped", coreos, skip=True, roles=[{"name": "r", "users": [user("carol")]}]
            ),
            usergroup("ignored", elsewhere, roles=[{"name": "r", "users": [user("carol")]}]),
        ],
    }


@pytest.fixture
def qontract_server() -> Iterator[tuple[QontractServerEmulator, ServerThread]]:
    """qontract-server with the bundle above, over HTTP on loopback."""
    emulator = QontractServerEmulator(app_interface_bundle())
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def pagerduty() -> Iterator[tuple[PagerDutyEmulator, ServerThread]]:
    """PagerDuty: PB has bob on call; EP1 pages PA's alice (carol only after a delay)."""
    emulator = PagerDutyEmulator()
    state = emulator.state
    state.token = PD_TOKEN
    state.add_user("U1", "alice@example.com")
    state.add_user("U2", "bob@example.com")
    state.add_user("U4", "carol@example.com")
    state.oncall = {"PA": ["U1"], "PB": ["U2"]}
    state.policies = {"EP1": [(30, [("schedule", "PA")]), (30, [("user", "U4")])]}
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def pd_gateway_factory(
    gateway_factory: Callable[..., ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerThread]:
    """Gateways with the PagerDuty account `app-sre` plus the given upstreams and settings."""
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", PD_TOKEN)
    _, upstream = pagerduty

    def factory(upstreams: dict[str, Any] | None = None, **settings: Any) -> ServerThread:
        account = {
            "name": "app-sre",
            "api_url": upstream.url,
            "token": {"env": "QGW_TEST_PD_TOKEN"},
        }
        return gateway_factory(upstreams={"pagerduty": [account], **(upstreams or {})}, **settings)

    return factory


@pytest.fixture
def pd_gateway(pd_gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    """A gateway without auth and with the PagerDuty account."""
    return pd_gateway_factory()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`qontract-reconcile-api ARGS` in a subprocess with only `env` configuring it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QONTRACT_RECONCILE_API_")}
    return subprocess.run(
        [sys.executable, "-m", "reconcile_client", *args],
        env={**clean, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
