"""Time the Slack usergroups diff: 1,000 usergroups x 50 users, against a set-building baseline.

Run: `python -m benchmarks.slack_diff [--groups N] [--users N] [--runs N]`.
"""

import argparse
import random
import statistics
import time
from collections.abc import Callable

from resolvers.slack.diff import compute_actions
from resolvers.slack.reconcile_models import WorkspaceRequest
from resolvers.slack.source import (
    ChannelDirectory,
    UserDirectory,
    UsergroupRecord,
    Usergroups,
    UserRecord,
)

TARGET_SECONDS = 1.0


def directory(user_count: int) -> UserDirectory:
    """`user_count` active users (every tenth with a Grid id) and a few deleted ones."""
    members: dict[str, UserRecord] = {}
    ids: dict[str, str] = {}
    for n in range(user_count):
        name = f"user{n}"
        user_ids = [f"U{n:06d}"] + ([f"W{n:06d}"] if n % 10 == 0 else [])
        members[name] = UserRecord(
            id=user_ids[0], ids=user_ids, org_username=name, name=name, email=None
        )
        ids.update(dict.fromkeys(user_ids, name))
    return UserDirectory(members=members, ids=ids, deleted_ids=[f"U9{n:05d}" for n in range(50)])


def channel_directory(channel_count: int) -> ChannelDirectory:
    """`channel_count` channels `chan<n>` with ids `C<n>`."""
    by_name = {f"chan{n}": f"C{n:05d}" for n in range(channel_count)}
    return ChannelDirectory(by_name=by_name, by_id={v: k for k, v in by_name.items()})


def scenario(
    groups: int, users_per_group: int, seed: int = 7
) -> tuple[WorkspaceRequest, Usergroups, UserDirectory, ChannelDirectory]:
    """Desired versus current with realistic overlap.

    Most groups are already right; every fifth differs by a few members, every tenth by its
    description, every twentieth lists unknown users and channels, and 2 % are not in Slack yet.
    """
    rng = random.Random(seed)
    users = directory(groups * 5)
    channels = channel_directory(500)
    names = list(users["members"])
    current: Usergroups = {}
    desired: list[dict[str, object]] = []
    for n in range(groups):
        handle = f"team-{n}"
        members = rng.sample(names, users_per_group)
        group_channels = rng.sample(list(channels["by_name"]), 3)
        wanted = list(members)
        if n % 5 == 0:
            wanted[:3] = rng.sample(names, 3)
        if n % 20 == 0:
            wanted += ["ghost-a", "ghost-b"]
        description = f"Team {n}" + (" (renamed)" if n % 10 == 0 else "")
        if n % 50 != 0:
            current[handle] = UsergroupRecord(
                id=f"S{n:05d}",
                handle=handle,
                name=handle,
                description=f"Team {n}",
                channels=[channels["by_name"][c] for c in group_channels],
                users=[users["members"][m]["ids"][-1] for m in members] + ["U900001"],
                disabled=n % 97 == 0,
            )
        wanted_channels = [f"#{c}" for c in group_channels] + (["#gone"] if n % 20 == 0 else [])
        desired.append(
            {
                "handle": handle,
                "config": {
                    "description": description,
                    "users": wanted,
                    "channels": wanted_channels,
                },
            }
        )
    request = WorkspaceRequest.model_validate(
        {
            "name": "bench",
            "managed_usergroups": [f"team-{n}" for n in range(groups)],
            "usergroups": desired,
        }
    )
    return request, current, users, channels


def baseline(
    request: WorkspaceRequest, current: Usergroups, users: UserDirectory, _: ChannelDirectory
) -> None:
    """The least any diff does: one set of desired and one of current members per usergroup."""
    for usergroup in request.usergroups:
        set(usergroup.config.users)
        group = current.get(usergroup.handle)
        if group is not None:
            set(group["users"])


def median_seconds(function: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure the diff and the baseline in one run and print both, with the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    data = scenario(args.groups, args.users)
    actions, errors = compute_actions(*data)
    diff = median_seconds(lambda: compute_actions(*data), args.runs)
    base = median_seconds(lambda: baseline(*data), args.runs)
    kinds = {
        kind: sum(a.kind == kind for a in actions) for kind in sorted({a.kind for a in actions})
    }
    verdict = "ok" if diff <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"slack usergroups diff, {args.groups} groups x {args.users} users, median of {args.runs}"
    )
    print(f"  actions: {kinds}, errors: {len(errors)}")
    target = f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
    print(f"  compute_actions: {diff * 1000:.1f} ms  ({target})")
    print(f"  baseline (building the same sets): {base * 1000:.1f} ms")
    print(f"  ratio compute_actions / baseline: {diff / base:.1f} x")


if __name__ == "__main__":
    main()
