"""`ldap_users_v1` for 5,000 usernames through `qontract-gateway serve` against a private slapd.

Run: `python -m benchmarks.ldap_users [--users N] [--runs N]` (needs slapd and redis-server;
loopback only, well under a minute). One request asks for every name (aliases of
`limits.max_list_items` names each), as ldap-users-api does. Prints the medians of: a cold
request (every name searched: one bind, OR filters of 100), a warm one (every name cached), and
the same searches made directly with ldap3 in the same run, with the ratios to that baseline
and the searches slapd saw for the warm requests (target: 0); then, in one more cold request
watched with MONITOR (not timed), the Redis commands per name clients sent and those scripts
ran.
"""

import argparse
import os
import statistics
import threading
import time
from contextlib import ExitStack
from typing import Any

import httpx
import redis as sync_redis

from benchmarks.harness import gateway
from gateway.settings import QueryLimits
from resolvers.ldap.api import users_filter
from tests.ldap.conftest import PASSWORD_VARIABLE, ldap_account
from tests.support.ldap_server import BASE_DN, PrivateSlapd
from tests.support.redis_server import PrivateRedis

NAMES_PER_SEARCH = 100
USERS_DN = f"cn=users,cn=accounts,{BASE_DN}"


def names(run: str, count: int) -> list[str]:
    """`count` usernames fresh to this `run` (so a cold request finds nothing cached); the
    directory's own users among them."""
    return ["alice", "bob", *(f"{run}-user{n}" for n in range(count - 2))]


def request(usernames: list[str]) -> dict[str, Any]:
    """One GraphQL request asking for every name, `max_list_items` names per aliased field."""
    step = QueryLimits().max_list_items
    chunks = [usernames[i : i + step] for i in range(0, len(usernames), step)]
    fields = " ".join(
        f'c{n}: ldap_users_v1(instance: "main", usernames: $c{n}) {{ username exists }}'
        for n in range(len(chunks))
    )
    variables = ", ".join(f"$c{n}: [String!]!" for n in range(len(chunks)))
    return {
        "query": f"query Users({variables}) {{ {fields} }}",
        "variables": {f"c{n}": chunk for n, chunk in enumerate(chunks)},
    }


def ask(client: httpx.Client, url: str, usernames: list[str]) -> float:
    """Seconds for one request; checks every name got an answer and the known users exist."""
    started = time.perf_counter()
    response = client.post(f"{url}/graphql", json=request(usernames))
    took = time.perf_counter() - started
    body = response.json()
    assert "errors" not in body, body.get("errors")
    answers = [item for field in body["data"].values() for item in field]
    assert len(answers) == len(usernames)
    assert answers[0] == {"username": "alice", "exists": True}
    return took


def direct(slapd: PrivateSlapd, usernames: list[str]) -> float:
    """Seconds to search the same names with ldap3: STARTTLS, one bind, OR filters of 100."""
    started = time.perf_counter()
    connection = slapd.connection(start_tls=True)
    found = 0
    for start in range(0, len(usernames), NAMES_PER_SEARCH):
        connection.search(
            USERS_DN,
            users_filter(usernames[start : start + NAMES_PER_SEARCH]),
            attributes=["uid"],
        )
        found += len(connection.entries)
    connection.unbind()
    took = time.perf_counter() - started
    assert found == 2
    return took


MONITOR_END = "ldap-users-benchmark-end"


def commands_per_name(redis_url: str, url: str, usernames: list[str]) -> str:
    """Redis commands per name of one cold request, as MONITOR sees them: those clients sent
    and those scripts ran."""
    counts = {"sent": 0, "scripts": 0}
    with (
        sync_redis.Redis.from_url(redis_url) as watcher,
        sync_redis.Redis.from_url(redis_url) as marker,
        watcher.monitor() as monitor,
    ):

        def count() -> None:
            while MONITOR_END not in (command := monitor.next_command())["command"]:
                counts["scripts" if command["client_type"] == "lua" else "sent"] += 1

        counter = threading.Thread(target=count)
        counter.start()
        with httpx.Client(timeout=120) as client:
            ask(client, url, usernames)
        marker.echo(MONITOR_END)
        counter.join(timeout=60)
    sent, scripts = (counts[kind] / len(usernames) for kind in ("sent", "scripts"))
    return f"{sent:.3f} sent by clients, {scripts:.3f} run by scripts"


def main() -> None:
    """Measure cold, warm and direct, and print the medians and ratios README quotes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        slapd = stack.enter_context(PrivateSlapd())
        os.environ[PASSWORD_VARIABLE] = slapd.bind_password
        account = ldap_account(slapd).model_dump(mode="json", exclude_none=True)
        url = stack.enter_context(gateway(redis.url, {"ldap": [account]}, {}))
        client = stack.enter_context(httpx.Client(timeout=120))
        ask(client, url, names("warm-up", args.users))
        cold, warm, baseline, warm_searches = [], [], [], 0
        for run in range(args.runs):
            usernames = names(f"r{run}", args.users)
            baseline.append(direct(slapd, usernames))
            cold.append(ask(client, url, usernames))
            searched = len(slapd.searches())
            warm.append(ask(client, url, usernames))
            warm_searches += len(slapd.searches()) - searched
        per_name = commands_per_name(redis.url, url, names("monitored", args.users))
    base = statistics.median(baseline)
    print(f"ldap_users_v1, {args.users} usernames in one request, medians of {args.runs} runs")
    print(f"  direct ldap3 (1 bind, {NAMES_PER_SEARCH}/search): {base * 1000:.1f} ms")
    for label, times in (("cold (all searched)", cold), ("warm (all cached)", warm)):
        median = statistics.median(times)
        print(f"  gateway {label}: {median * 1000:.1f} ms  ({median / base:.2f} x direct)")
    print(f"  searches slapd saw for the warm requests: {warm_searches} (target 0)")
    print(f"  Redis commands per name of a cold request (MONITOR, not timed): {per_name}")


if __name__ == "__main__":
    main()
