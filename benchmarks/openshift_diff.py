"""Time the openshift-namespaces diff: 1,000 namespaces over 50 clusters, against a set baseline.

Run: `python -m benchmarks.openshift_diff [--clusters N] [--namespaces N] [--runs N]`.
"""

import argparse
import random

from benchmarks.slack_diff import median_seconds
from resolvers.openshift.reconcile import compute_actions
from resolvers.openshift.reconcile_models import ClusterRequest
from resolvers.openshift.source import ClusterNamespaces

TARGET_SECONDS = 1.0
UNMANAGED = 300
"""Namespaces per cluster that app-interface does not name (operators, system, tenants)."""

Scenario = list[tuple[ClusterRequest, ClusterNamespaces]]


def scenario(clusters: int, namespaces: int, seed: int = 11) -> Scenario:
    """Desired versus current with app-sre's mix, `namespaces` spread over `clusters`.

    Most namespaces exist already; 3 % are new, 2 % are to be deleted (half of them already
    gone), 1 % are terminating, and every other cluster is plain Kubernetes.
    """
    rng = random.Random(seed)
    per_cluster = max(1, namespaces // clusters)
    data: Scenario = []
    for c in range(clusters):
        desired: list[dict[str, object]] = []
        current: dict[str, str] = {f"unmanaged-{n}": "Active" for n in range(UNMANAGED)}
        for n in range(per_cluster):
            name = f"app-{c:02d}-{n:04d}"
            roll = rng.random()
            desired.append({"name": name, "delete": 0.03 <= roll < 0.05})
            if roll >= 0.04:
                current[name] = "Terminating" if roll >= 0.99 else "Active"
        request = ClusterRequest.model_validate({"name": f"cluster-{c:02d}", "namespaces": desired})
        data.append((request, ClusterNamespaces(openshift=c % 2 == 0, namespaces=current)))
    return data


def diff(data: Scenario) -> int:
    """Diff every cluster; the number of actions."""
    return sum(len(compute_actions(request, current)[0]) for request, current in data)


def baseline(data: Scenario) -> None:
    """The least any diff does: one membership test per desired namespace."""
    for request, current in data:
        names = current["namespaces"]
        for namespace in request.namespaces:
            _ = namespace.name in names


def main() -> None:
    """Measure the diff and the baseline in one run and print both, with the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--namespaces", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    data = scenario(args.clusters, args.namespaces)
    actions = diff(data)
    measured = median_seconds(lambda: diff(data), args.runs)
    base = median_seconds(lambda: baseline(data), args.runs)
    verdict = "ok" if measured <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"openshift namespaces diff, {args.namespaces} namespaces over {args.clusters} clusters "
        f"({UNMANAGED} unmanaged each), median of {args.runs}"
    )
    print(f"  actions: {actions}")
    target = f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
    print(f"  compute_actions: {measured * 1000:.2f} ms  ({target})")
    print(f"  baseline (one lookup per namespace): {base * 1000:.2f} ms")
    print(f"  ratio compute_actions / baseline: {measured / base:.1f} x")


if __name__ == "__main__":
    main()
