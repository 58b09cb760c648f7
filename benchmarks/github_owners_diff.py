"""Time the GitHub owners diff at 20 orgs (10 x app-sre's), against a set-building baseline, and
the client's desired owners from app-interface roles.

Run: `python -m benchmarks.github_owners_diff [--orgs N] [--owners N] [--roles N] [--runs N]`.
"""

import argparse
from datetime import UTC, datetime

from benchmarks.slack_diff import median_seconds
from reconcile_client.gql.qontract_server.github_owners_desired_state import (
    BotV1,
    PermissionGithubOrgTeamV1,
    PermissionV1,
    RoleV1,
    UserV1,
)
from reconcile_client.integrations.github_owners_api import desired_owners
from resolvers.github.reconcile import compute_actions
from resolvers.github.reconcile_models import OrganizationRequest

TARGET_SECONDS = 1.0


def scenario(orgs: int, owners: int) -> list[tuple[OrganizationRequest, list[str]]]:
    """Per org: `owners` desired logins in mixed case (a few repeated), and the current owners
    (lower-case) holding all but every tenth of them, plus owners nobody asked for."""
    cases = []
    for o in range(orgs):
        wanted = [f"User-{o}-{n}" for n in range(owners)] + [f"user-{o}-0", f"USER-{o}-1"]
        current = [f"user-{o}-{n}" for n in range(owners) if n % 10 != 0]
        current += [f"legacy-{o}-{n}" for n in range(owners // 5)]
        cases.append((OrganizationRequest(org=f"org-{o}", owners=wanted), current))
    return cases


def diff(cases: list[tuple[OrganizationRequest, list[str]]]) -> int:
    """compute_actions over every org; how many actions."""
    return sum(len(compute_actions(desired, current)[0]) for desired, current in cases)


def baseline(cases: list[tuple[OrganizationRequest, list[str]]]) -> None:
    """The least any diff does: one set of desired and one of current logins per org."""
    for desired, current in cases:
        set(desired.owners)
        set(current)


def roles(count: int, orgs: int) -> list[RoleV1]:
    """`count` roles of 5 users and a bot; every other one grants an org's owner permission,
    the rest a member permission or something else."""
    found = []
    for n in range(count):
        org = f"org-{n % orgs}"
        kind = ("owner", "member", None)[n % 3] if n % 2 else "owner"
        permissions: list[PermissionV1] = [
            PermissionGithubOrgTeamV1.model_validate(
                {"__typename": "PermissionGithubOrgTeam_v1", "service": "github-org-team"}
                | {"org": org, "role": kind}
            )
        ]
        found.append(
            RoleV1(
                path=f"/roles/r{n}.yml",
                expirationDate=None if n % 7 else "2999-01-01",
                users=[UserV1(github_username=f"User-{n}-{u}") for u in range(5)],
                bots=[BotV1(github_username=f"bot-{n}" if n % 4 == 0 else None)],
                permissions=permissions,
            )
        )
    return found


def main() -> None:
    """Measure the diff, its baseline and the client's desired state in one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--owners", type=int, default=500)
    parser.add_argument("--roles", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    cases = scenario(args.orgs, args.owners)
    actions = diff(cases)
    measured = median_seconds(lambda: diff(cases), args.runs)
    base = median_seconds(lambda: baseline(cases), args.runs)
    app_interface = roles(args.roles, args.orgs)
    moment = datetime.now(tz=UTC)
    desired = median_seconds(lambda: desired_owners(app_interface, moment), args.runs)
    verdict = "ok" if measured <= TARGET_SECONDS else "OVER TARGET"
    print(f"github owners diff, {args.orgs} orgs x {args.owners} owners, median of {args.runs}")
    print(f"  add_owner actions: {actions}")
    target = f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
    print(f"  compute_actions, all orgs: {measured * 1000:.2f} ms  ({target})")
    print(f"  baseline (building the same sets): {base * 1000:.2f} ms")
    print(f"  ratio compute_actions / baseline: {measured / base:.1f} x")
    print(f"  client desired_owners, {args.roles} roles: {desired * 1000:.2f} ms")


if __name__ == "__main__":
    main()
