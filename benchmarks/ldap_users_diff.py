"""Time the ldap-users-api deletion rules: 5,000 app-interface users, a few gone from LDAP,
against a baseline that only picks the gone users out of the same answers.

Run: `python -m benchmarks.ldap_users_diff [--users N] [--gone N] [--runs N]`.
"""

import argparse

from benchmarks.slack_diff import median_seconds
from reconcile_client.integrations.ldap_users_state import AppInterfaceUser, users_to_delete

TARGET_SECONDS = 1.0


def scenario(user_count: int, gone: int) -> tuple[list[AppInterfaceUser], dict[str, bool | None]]:
    """`user_count` users in their own files; every `user_count // gone`-th is gone from LDAP,
    and one in a thousand got no answer."""
    users = [
        AppInterfaceUser(f"user{n}", f"/teams/t{n % 50}/users/user{n}.yml")
        for n in range(user_count)
    ]
    step = max(1, user_count // max(1, gone))
    exists: dict[str, bool | None] = {
        user.username: (None if n % 1000 == 999 else n % step != 0) for n, user in enumerate(users)
    }
    return users, exists


def baseline(users: list[AppInterfaceUser], exists: dict[str, bool | None]) -> list[str]:
    """The least any deletion rule must do: one pass picking the users LDAP says are gone."""
    return [user.username for user in users if exists[user.username] is False]


def main() -> None:
    """Measure `users_to_delete` and its baseline in one run; print both, the ratio and the
    target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--gone", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    users, exists = scenario(args.users, args.gone)
    deletions = users_to_delete(users, exists)
    median = median_seconds(lambda: users_to_delete(users, exists), args.runs)
    base = median_seconds(lambda: baseline(users, exists), args.runs)
    verdict = "ok" if median <= TARGET_SECONDS else "OVER TARGET"
    print(f"ldap-users diff, {args.users} users, median of {args.runs}")
    print(f"  deleted: {len(deletions.users)}, unanswered: {len(deletions.unanswered)}")
    target = f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
    print(f"  users_to_delete: {median * 1000:.2f} ms  ({target})")
    print(f"  baseline (one pass picking the gone users): {base * 1000:.2f} ms")
    print(f"  ratio users_to_delete / baseline: {median / base:.1f} x")


if __name__ == "__main__":
    main()
