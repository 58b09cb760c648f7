"""Parity with qontract-reconcile: the desired usergroups it computes from the same data.

Each expectation is derived by reading qontract-reconcile's `reconcile/slack_usergroups_api.py`
(HEAD f8dc7d4); the docstrings name the function mirrored. The pure function is called directly:
its inputs are what the two-round-trip transport (or a federated query) fills in.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from reconcile_client.errors import ConfigError
from reconcile_client.gql.inputs import DesiredWorkspace
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    PermissionSlackUsergroupV1,
    SlackUsergroupsDesiredStateQueryData,
)
from reconcile_client.integrations.slack_usergroups_api import reconcile_input
from reconcile_client.integrations.slack_usergroups_state import (
    DesiredStateInputs,
    OwnersRef,
    PagerDutyRef,
    RepoOwners,
    desired_workspaces,
)
from tests.client.recordings import golden_body, qontract_server_file
from tests.emulators.qontract_server import cluster, role, user, usergroup, workspace

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COREOS = workspace("coreos", ["team", "oncall"], ["slack-usergroups"], channel="coreos-log")
GOLDEN = "04-reconcile-permissions"


def bundle_datafiles(schema: str) -> list[dict[str, Any]]:
    """The bundle's datafiles of `schema`, in path order (as qontract-server lists them)."""
    data = json.loads(qontract_server_file("bundle.json").read_text())["data"]
    return [{"path": path, **d} for path, d in sorted(data.items()) if d["$schema"] == schema]


def golden_permissions() -> list[dict[str, Any]]:
    """Golden 04's permissions plus the two fields this client selects beyond qontract-reconcile.

    qontract-reconcile names a PagerDuty instance by its Vault token (the gateway needs its
    `name`), and does not select the schedule's `path` (used to name a bad datafile); both are
    taken from the bundle the golden was recorded on.
    """
    instances = {
        d["token"]["path"]: d["name"]
        for d in bundle_datafiles("/dependencies/pagerduty-instance-1.yml")
    }
    schedules = {
        tuple((slot["start"], slot["end"]) for slot in d["schedule"]): d["path"]
        for d in bundle_datafiles("/app-sre/schedule-1.yml")
    }
    permissions: list[dict[str, Any]] = golden_body(GOLDEN)["data"]["permissions"]
    for permission in permissions:
        permission["__typename"] = "PermissionSlackUsergroup_v1"
        for target in permission["pagerduty"] or []:
            target["instance"]["name"] = instances[target["instance"]["token"]["path"]]
        if permission["schedule"]:
            slots = tuple((s["start"], s["end"]) for s in permission["schedule"]["schedule"])
            permission["schedule"]["path"] = schedules[slots]
    return permissions


def golden_users() -> list[dict[str, Any]]:
    """users_v1 of the same bundle (golden 03); no user there sets tag_on_merge_requests."""
    return [
        {**u, "tag_on_merge_requests": None}
        for u in golden_body("03-desired-state")["data"]["users"]
    ]


def inputs(
    data: dict[str, Any],
    oncall: dict[PagerDutyRef, list[str]] | None = None,
    owners: dict[OwnersRef, RepoOwners] | None = None,
) -> DesiredStateInputs:
    """Typed inputs from qontract-server-shaped `data` and the live answers."""
    parsed = SlackUsergroupsDesiredStateQueryData.model_validate(
        {"permissions": [], "users": [], "clusters": [], "roles": [], **data},
        extra="ignore",  # golden data answers qontract-reconcile's query, which selects more
    )
    return DesiredStateInputs(
        permissions=[
            p for p in parsed.permissions or [] if isinstance(p, PermissionSlackUsergroupV1)
        ],
        users=parsed.users or [],
        clusters=parsed.clusters or [],
        roles=parsed.roles or [],
        oncall=oncall or {},
        owners=owners or {},
    )


def as_dicts(workspaces: list[DesiredWorkspace]) -> list[dict[str, Any]]:
    """The workspaces as plain data (notifications left out when unset)."""
    return [w.model_dump(exclude_none=True) for w in workspaces]


def role_users(permission: dict[str, Any]) -> set[str]:
    """`compile_users_from_roles` of a golden permission."""
    return {u["org_username"] for r in permission["roles"] or [] for u in r["users"]}


def pd(kind: Literal["schedule", "escalation_policy"], id: str) -> PagerDutyRef:
    """A target of the bundle's PagerDuty instance `app-sre`."""
    return PagerDutyRef("app-sre", kind, id)


def target(schedule: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """A PagerDutyTarget_v1 of instance `app-sre`."""
    return {
        "name": schedule or policy,
        "instance": {"name": "app-sre"},
        "scheduleID": schedule,
        "escalationPolicyID": policy,
    }


GOLDEN_ONCALL = {
    pd("schedule", "PSCHED1"): ["bob.baker", "ghost"],
    pd("escalation_policy", "PESCAL1"): ["alice", "frank"],
    pd("schedule", "PGS002"): ["gen.user0", "genuser1"],
    pd("escalation_policy", "PGE001"): ["gen.user5"],
}
GOLDEN_OWNERS = {
    OwnersRef("https://github.com/app-sre/qontract-reconcile", "master"): RepoOwners(
        approvers=("Alice-GH",), reviewers=("dave-gh", "stranger")
    ),
    OwnersRef("https://github.com/app-sre/gen-repo-5", "master"): RepoOwners(
        approvers=(), reviewers=("genuser7-gh",)
    ),
}


def golden_inputs() -> DesiredStateInputs:
    """Golden 04 with on-call answers for four targets and OWNERS for two repositories."""
    permissions = golden_permissions()
    oncall: dict[PagerDutyRef, list[str]] = {}
    owners: dict[OwnersRef, RepoOwners] = {}
    for permission in permissions:
        for target in permission["pagerduty"] or []:
            if target["scheduleID"]:
                oncall.setdefault(pd("schedule", target["scheduleID"]), [])
            if target["escalationPolicyID"]:
                oncall.setdefault(pd("escalation_policy", target["escalationPolicyID"]), [])
        for url in permission["ownersFromRepos"] or []:
            owners.setdefault(OwnersRef.parse(url), RepoOwners((), ()))
    return inputs(
        {"permissions": permissions, "users": golden_users()},
        {**oncall, **GOLDEN_ONCALL},
        {**owners, **GOLDEN_OWNERS},
    )


def test_golden_04_bundle_gives_qontract_reconciles_desired_state() -> None:
    """Mirrors `compile_desired_state_from_permissions` over golden 04 (no clusters in it).

    Per permission, in bundle order: role users | active slot users | OWNERS approvers and
    reviewers mapped by GitHub login (case-insensitive, app-interface users only) | on-call
    PagerDuty usernames mapped by `pagerduty_username`, unknown ones kept; description, sorted
    distinct channels, `addUser` notification. Workspaces in order of first usergroup.
    """
    permissions = golden_permissions()
    pgs002 = {"genuser0", "genuser1"}  # gen.user0 is genuser0's pagerduty_username
    pge001 = {"genuser5"}  # gen.user5 is genuser5's
    gen_repo_5 = {"genuser7"}  # a reviewer, by GitHub login genuser7-gh
    extra = {
        "gen-group-0": pgs002,
        "gen-group-10": pgs002,
        "gen-group-11": pgs002,
        "gen-group-1": pge001,
        "gen-group-27": pge001,
        "gen-group-33": pge001,
        "gen-group-4": gen_repo_5,
        "gen-group-32": gen_repo_5,
    }
    hand_written = {
        "app-sre-ic": {
            "handle": "app-sre-ic",
            "config": {
                "description": "App SRE interrupt catcher (on-call) usergroup",
                "users": ["alice", "bob", "frank", "ghost"],
                "channels": ["sd-app-sre-oncall"],
                "notifications": {"add_user": "You are now App SRE interrupt catcher."},
            },
        },
        "app-sre-team": {
            "handle": "app-sre-team",
            "config": {
                "description": "App SRE team usergroup in the coreos workspace",
                "users": ["alice", "bob", "carol", "dave"],
                "channels": ["sd-app-sre", "sd-app-sre-info"],
            },
        },
    }
    coreos = [p for p in permissions if p["workspace"]["name"] == "coreos"]
    expected_coreos = [
        hand_written.get(p["handle"])
        or {
            "handle": p["handle"],
            "config": {
                "description": p["description"],
                "users": sorted(role_users(p) | extra.get(p["handle"], set())),
                "channels": sorted(set(p["channels"])),
            },
        }
        for p in coreos
    ]
    expected = [
        {
            "name": "coreos",
            "managed_usergroups": coreos[0]["workspace"]["managedUsergroups"],
            "usergroups": expected_coreos,
        },
        {
            "name": "redhat-internal",
            "managed_usergroups": ["backend-team"],
            "usergroups": [
                {
                    "handle": "backend-team",
                    "config": {
                        "description": "Backend team usergroup in the redhat-internal workspace",
                        "users": ["alice", "bob", "carol", "dave", "erin"],
                        "channels": ["team-backend"],
                    },
                }
            ],
        },
    ]
    assert len(expected_coreos) == 42
    assert as_dicts(desired_workspaces(golden_inputs(), NOW)) == expected


def test_golden_04_narrowed_to_one_usergroup_manages_only_that_handle() -> None:
    """Mirrors `_process_permission` filters and `managed_usergroups=[desired_usergroup_name]`."""
    result = desired_workspaces(golden_inputs(), NOW, usergroup_name="app-sre-ic")
    assert [(w.name, w.managed_usergroups) for w in result] == [("coreos", ["app-sre-ic"])]
    assert [g.handle for g in result[0].usergroups] == ["app-sre-ic"]


def test_golden_04_narrowed_to_one_workspace() -> None:
    """Mirrors the `desired_workspace_name` filter of `_process_permission`."""
    result = desired_workspaces(golden_inputs(), NOW, workspace_name="redhat-internal")
    assert [(w.name, [g.handle for g in w.usergroups]) for w in result] == [
        ("redhat-internal", ["backend-team"])
    ]


def test_schedule_slots_count_from_start_to_end_inclusive_in_utc() -> None:
    """Mirrors `compile_users_from_schedule`: `start <= now <= end`, naive times taken as UTC."""
    fmt = "%Y-%m-%d %H:%M"

    def slot(start: datetime, end: datetime, name: str) -> dict[str, Any]:
        return {"start": start.strftime(fmt), "end": end.strftime(fmt), "users": [user(name)]}

    hour = timedelta(hours=1)
    schedule = {
        "path": "/schedules/ic.yml",
        "schedule": [
            slot(NOW - hour, NOW, "ends-now"),
            slot(NOW, NOW + hour, "starts-now"),
            slot(NOW - 2 * hour, NOW - hour, "earlier"),
            slot(NOW + timedelta(minutes=1), NOW + hour, "later"),
        ],
    }
    data = {"permissions": [usergroup("team", COREOS, schedule=schedule)]}
    result = desired_workspaces(inputs(data), NOW)
    assert result[0].usergroups[0].config.users == ["ends-now", "starts-now"]


def test_owners_reviewers_join_like_approvers() -> None:
    """Mirrors `fetch_owners`: `approvers + reviewers`, GitHub logins lower-cased."""
    data = {
        "permissions": [usergroup("team", COREOS, ownersFromRepos=["https://github.com/o/r"])],
        "users": [user("ann", github="Ann-GH"), user("rev", github="rev-gh")],
    }
    owners = {OwnersRef("https://github.com/o/r", "master"): RepoOwners(("ann-gh",), ("REV-gh",))}
    result = desired_workspaces(inputs(data, owners=owners), NOW)
    assert result[0].usergroups[0].config.users == ["ann", "rev"]


def test_owners_with_tag_on_merge_requests_false_are_left_out() -> None:
    """Mirrors `fetch_owners`: `user.tag_on_merge_requests is not False` (None counts as true)."""
    data = {
        "permissions": [usergroup("team", COREOS, ownersFromRepos=["https://github.com/o/r:main"])],
        "users": [
            user("quiet", tag_on_merge_requests=False),
            user("loud", tag_on_merge_requests=True),
            user("unset"),
        ],
    }
    owners = {
        OwnersRef("https://github.com/o/r", "main"): RepoOwners(
            ("quiet-gh", "loud-gh", "unset-gh", "nobody-gh"), ()
        )
    }
    result = desired_workspaces(inputs(data, owners=owners), NOW)
    assert result[0].usergroups[0].config.users == ["loud", "unset"]


def test_tag_on_merge_requests_false_does_not_remove_role_or_oncall_users() -> None:
    """Mirrors `_process_permission`: only the OWNERS path looks at tag_on_merge_requests."""
    quiet = user("quiet", pagerduty="q.pd", tag_on_merge_requests=False)
    permission = usergroup("team", COREOS, roles=[role("r", [quiet])], pagerduty=[target("S1")])
    data = {"permissions": [permission], "users": [quiet]}
    result = desired_workspaces(inputs(data, oncall={pd("schedule", "S1"): ["q.pd"]}), NOW)
    assert result[0].usergroups[0].config.users == ["quiet"]


def test_oncall_pagerduty_users_without_app_interface_user_are_kept_by_pagerduty_name() -> None:
    """Mirrors `compile_users_from_pagerduty_schedules`: `users_map.get(username, username)`.

    The map holds only users with a `pagerduty_username`, so an on-call name equal to some
    user's org_username passes through unchanged even when that user has another PagerDuty name.
    """
    targets = [target("S1"), target(policy="E1"), target("S2", "E2")]
    data = {
        "permissions": [usergroup("oncall", COREOS, pagerduty=targets)],
        "users": [user("robert", pagerduty="bob"), user("olga", pagerduty="olga.pd")],
    }
    oncall = {
        pd("schedule", "S1"): ["bob", "ghost"],
        pd("escalation_policy", "E1"): ["olga"],
        pd("schedule", "S2"): ["olga.pd"],
        pd("escalation_policy", "E2"): ["nobody+1"],
    }
    result = desired_workspaces(inputs(data, oncall=oncall), NOW)
    assert result[0].usergroups[0].config.users == ["ghost", "nobody+1", "olga", "robert"]


def test_notifications_are_sent_per_usergroup() -> None:
    """Mirrors the `notifications` loop of `_process_permission` (addUser / removeUser)."""
    notes = [
        {"action": "addUser", "message": "welcome"},
        {"action": "removeUser", "message": "bye"},
        {"action": "addUser", "message": "see the runbook"},
    ]
    data = {"permissions": [usergroup("team", COREOS, notifications=notes)]}
    result = desired_workspaces(inputs(data), NOW)
    notifications = result[0].usergroups[0].config.notifications
    assert notifications is not None
    assert notifications.model_dump() == {
        "add_user": "welcome\n\nsee the runbook",
        "remove_user": "bye",
    }


def test_unknown_notification_action_is_a_config_error() -> None:
    """qontract-reconcile raises ValueError("Unknown notification action")."""
    notes = [{"action": "ping", "message": "x"}]
    data = {"permissions": [usergroup("team", COREOS, notifications=notes)]}
    with pytest.raises(
        ConfigError, match=r"\[coreos\] usergroup 'team': unknown notification action 'ping'"
    ):
        desired_workspaces(inputs(data), NOW)


@pytest.mark.parametrize("integration", ["slack-usergroups", "slack-usergroups-api"])
def test_workspaces_of_either_integration_name_are_reconciled(integration: str) -> None:
    """Mirrors `compile_desired_state_from_permissions`: either integration name's setting."""
    ws = workspace("w", ["team"], ["qontract-cli", integration])
    result = desired_workspaces(inputs({"permissions": [usergroup("team", ws)]}), NOW)
    assert [w.name for w in result] == ["w"]


def test_workspace_without_the_integration_setting_is_dropped_with_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mirrors the `logging.error(... has no slack-usergroups integration setting, skipping)`."""
    other = workspace("other", ["team"], ["qontract-cli"])
    data = {"permissions": [usergroup("team", other), usergroup("team", COREOS)]}
    with caplog.at_level(logging.ERROR):
        result = desired_workspaces(inputs(data), NOW)
    assert [w.name for w in result] == ["coreos"]
    assert "workspace other has no slack-usergroups integration setting" in caplog.text


def cluster_data(**extra: Any) -> dict[str, Any]:
    """Two workspaces with one usergroup each, two clusters and roles granting access."""
    tagged_off = user("mute", tag_on_cluster_updates=False)
    forced_on = user("keen", tag_on_cluster_updates=True)
    ns = {"delete": None, "managedRoles": True, "cluster": {"name": "c1"}}
    return {
        "permissions": [
            usergroup("team", COREOS),
            usergroup("ops", workspace("rh", ["ops"], ["slack-usergroups-api"], channel="rh-log")),
        ],
        "clusters": [
            cluster("c1"),
            cluster("c2"),
            cluster("c3"),
            cluster("off", ["slack-usergroups-api"]),
        ],
        "roles": [
            role(
                "ns-role",
                [user("ann"), tagged_off],
                access=[{"namespace": ns, "cluster": None, "group": None}],
            ),
            role(
                "group-role",
                [user("bob"), forced_on],
                tag_on_cluster_updates=False,
                access=[{"cluster": {"name": "c2"}, "group": "admins", "namespace": None}],
            ),
            role(
                "no-group",
                [user("cat")],
                access=[
                    {"cluster": {"name": "c3"}, "group": None, "namespace": None},
                    {"namespace": {**ns, "delete": True}, "cluster": None, "group": None},
                    {"namespace": {**ns, "managedRoles": None}, "cluster": None, "group": None},
                ],
            ),
            role(
                "expired",
                [user("old")],
                expirationDate="2026-06-01",
                access=[{"cluster": {"name": "c1"}, "group": "g", "namespace": None}],
            ),
            role(
                "off-role",
                [user("dan")],
                access=[{"cluster": {"name": "off"}, "group": "g", "namespace": None}],
            ),
        ],
        **extra,
    }


def test_cluster_usergroups_are_added_to_every_workspace() -> None:
    """Mirrors `compile_desired_state_cluster_usergroups`, `get_clusters` and `get_roles`.

    Access via a namespace with managedRoles that is not deleted, or a cluster with a group;
    the user's tag_on_cluster_updates wins over the role's; an expired role (expiration date
    today) and clusters disabling slack-usergroups(-api) are skipped, as are clusters without
    users. One channel list is shared by the usergroup of all workspaces, so each lists the
    default channel of every workspace.
    """
    result = as_dicts(desired_workspaces(inputs(cluster_data()), NOW))
    c1 = {
        "handle": "c1-cluster",
        "config": {
            "description": "Users with access to the c1 cluster",
            "users": ["ann"],
            "channels": ["coreos-log", "rh-log"],
        },
    }
    c2 = {
        "handle": "c2-cluster",
        "config": {
            "description": "Users with access to the c2 cluster",
            "users": ["keen"],
            "channels": ["coreos-log", "rh-log"],
        },
    }
    team = {"handle": "team", "config": {"description": "team team", "users": [], "channels": []}}
    ops = {"handle": "ops", "config": {"description": "ops team", "users": [], "channels": []}}
    assert result == [
        {
            "name": "coreos",
            "managed_usergroups": ["c1-cluster", "c2-cluster", "oncall", "team"],
            "usergroups": [team, c1, c2],
        },
        {
            "name": "rh",
            "managed_usergroups": ["c1-cluster", "c2-cluster", "ops"],
            "usergroups": [ops, c1, c2],
        },
    ]


def test_cluster_usergroup_alone_selected_gives_nothing_as_in_qontract_reconcile() -> None:
    """With `usergroup_name="c1-cluster"` no permission is selected, so no workspace exists."""
    assert desired_workspaces(inputs(cluster_data()), NOW, usergroup_name="c1-cluster") == []


def test_bad_role_expiration_date_is_a_config_error_naming_the_role() -> None:
    """qontract-reconcile's `expiration.filter` raises ValueError for a date not YYYY-MM-DD."""
    data = {
        "permissions": [usergroup("team", COREOS)],
        "roles": [role("r", [user("ann")], expirationDate="01/06/2026")],
    }
    with pytest.raises(ConfigError, match=r"role /roles/r.yml: expirationDate '01/06/2026'"):
        desired_workspaces(inputs(data), NOW)


@pytest.mark.parametrize("start", ["2026-06-01T00:00", "2026-06-01 00:00:00", "June 1st"])
def test_schedule_slot_in_another_format_is_a_config_error_naming_the_datafile(
    start: str,
) -> None:
    """qontract-reconcile only reads `%Y-%m-%d %H:%M` (strptime) and crashes on anything else."""
    schedule = {
        "path": "/schedules/ic.yml",
        "schedule": [{"start": start, "end": "2026-06-02 00:00", "users": [user("ann")]}],
    }
    data = {"permissions": [usergroup("team", COREOS, schedule=schedule)]}
    with pytest.raises(ConfigError, match=r"^schedule /schedules/ic.yml: slot '"):
        desired_workspaces(inputs(data), NOW)


def test_skipped_permissions_and_workspaces_without_managed_usergroups_are_left_out() -> None:
    """Mirrors `if permission.skip or not workspace.managed_usergroups: return None`."""
    unmanaged = workspace("none", [], ["slack-usergroups"])
    data = {
        "permissions": [
            usergroup("team", COREOS, skip=True),
            usergroup("oncall", COREOS, skip=False),
            usergroup("team", unmanaged),
        ]
    }
    result = desired_workspaces(inputs(data), NOW)
    assert [(w.name, [g.handle for g in w.usergroups]) for w in result] == [("coreos", ["oncall"])]


def test_handle_not_in_managed_usergroups_is_a_config_error_naming_the_workspace() -> None:
    """qontract-reconcile raises KeyError: "... not in 'managedUsergroups' of the workspace"."""
    data = {"permissions": [usergroup("rogue", COREOS)]}
    with pytest.raises(
        ConfigError,
        match=r"\[coreos\] usergroup 'rogue' is not in 'managedUsergroups' of the Slack "
        r"workspace /dependencies/slack/coreos.yml",
    ):
        desired_workspaces(inputs(data), NOW)


def test_description_defaults_to_empty_and_channels_are_sorted_distinct() -> None:
    """Mirrors `SlackUsergroupConfig(description=... or "", channels=sorted(set(...)))`."""
    data = {"permissions": [usergroup("team", COREOS, description="", channels=["b", "#a", "b"])]}
    config = desired_workspaces(inputs(data), NOW)[0].usergroups[0].config
    assert (config.description, config.channels) == ("", ["#a", "b"])


def test_a_handle_of_two_permissions_is_listed_twice_and_sent_once_with_the_last() -> None:
    """qontract-reconcile lists both; its server's diff (a dict by handle) keeps the last."""
    data = {
        "permissions": [
            usergroup("team", COREOS, roles=[role("a", [user("ann")])]),
            usergroup("oncall", COREOS),
            usergroup("team", COREOS, roles=[role("b", [user("bob")])], description="second"),
        ]
    }
    result = desired_workspaces(inputs(data), NOW)
    assert [g.handle for g in result[0].usergroups] == ["team", "oncall", "team"]
    sent = reconcile_input(result, dry_run=True).workspaces[0].usergroups
    assert [(g.handle, g.config.users, g.config.description) for g in sent] == [
        ("team", ["bob"], "second"),
        ("oncall", [], "oncall team"),
    ]


def test_owners_url_with_ref_reads_that_ref() -> None:
    """Mirrors `fetch_owners`: `url:ref` when the entry has two colons, else ref master."""
    assert OwnersRef.parse("https://github.com/o/r:release") == OwnersRef(
        "https://github.com/o/r", "release"
    )
    assert OwnersRef.parse("https://github.com/o/r") == OwnersRef(
        "https://github.com/o/r", "master"
    )
