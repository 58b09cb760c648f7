"""Dashboard and alerts: promtool checks them, and every metric they name is really exported."""

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.events.model import Event
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.tasks.engine import DRY_RUN_QUEUE, QUEUES
from gateway.tasks.queue import TaskQueue
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.ops.template import REPO, validate_object
from tests.support.gateway import graphql
from tests.support.ports import free_port
from tests.support.required import skip_unless_required
from tests.support.server_thread import ServerThread
from tests.support.wait import async_wait_until, wait_until

OBSERVABILITY = REPO / "observability"
RULES = OBSERVABILITY / "prometheusrule.yaml"
RULE_TESTS = OBSERVABILITY / "alerts-test.yaml"
DASHBOARD = OBSERVABILITY / "dashboard.json"
REQUIRE_PROMTOOL_VARIABLE = "QONTRACT_GATEWAY_REQUIRE_PROMTOOL"
ALERTS = {
    "QontractGatewayBreakerOpen",
    "QontractGatewayUpstreamRateLimited",
    "QontractGatewayRedisUnreachable",
    "QontractGatewayEventsDeadLettered",
    "QontractGatewayTasksPending",
    "QontractGatewayNotReady",
}
# What a PromQL expression may contain besides metric names.
FUNCTIONS = {"rate", "increase", "histogram_quantile", "max_over_time", "min_over_time"}
AGGREGATIONS = {"sum", "max", "min", "avg", "count"}
KEYWORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "offset", "bool"}
TOKEN = "pd-secret-token-value-123"


def prometheus_rule() -> dict[str, Any]:
    """The PrometheusRule object."""
    rule: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return rule


def rule_expressions() -> list[str]:
    """Every alert expression."""
    groups = prometheus_rule()["spec"]["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    """Every panel query and templating query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["query"]["query"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` reads; AssertionError for anything it cannot account for."""
    text = re.sub(r'"[^"]*"', "", expr)  # label values and strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\boffset\s+\d+[smhd]", "", text)
    text = re.sub(r"^label_values\(([a-z_:]+),\s*\w+\)$", r"\1", text)  # Grafana variable
    names: set[str] = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        follows = text[match.end() :].lstrip()[:1]
        if word in KEYWORDS:
            continue
        if follows == "(":
            assert word in FUNCTIONS | AGGREGATIONS, f"unexpected function {word} in {expr}"
            continue
        assert word.startswith("qontract_gateway_"), f"{word} is not a gateway metric: {expr}"
        names.add(word)
    assert names, f"no metric in {expr}"
    return names


def exported_names(exposition: str) -> tuple[set[str], set[str]]:
    """(every series name the exposition declares, the names that have samples).

    A labelled metric nobody used yet has no sample, but its HELP and TYPE lines declare it:
    a counter `x` as `x_total` (and `x_created`), a histogram as `x_bucket`, `x_sum`,
    `x_count`, a gauge as `x`.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    declared: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        declared.update(family.name + suffix for suffix in suffixes[family.type])
        sampled.update(sample.name for sample in family.samples)
    return declared, sampled


def promtool() -> str:
    """The promtool binary; skipped locally without it, a failure where it is required."""
    binary = shutil.which("promtool")
    if binary is None:
        skip_unless_required(
            "promtool is not installed (Debian: apt-get install prometheus)",
            REQUIRE_PROMTOOL_VARIABLE,
        )
    return binary


def write_rule_file(directory: Path) -> Path:
    """The PrometheusRule's spec as a Prometheus rule file, beside a copy of the rule tests."""
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump(prometheus_rule()["spec"]))
    shutil.copy(RULE_TESTS, directory / RULE_TESTS.name)
    return rules


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; the completed process (output kept for the assertion message)."""
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_prometheus_rule_has_every_alert_and_validates() -> None:
    """The PrometheusRule has the six alerts with a severity, in the CRD's shape."""
    rule = prometheus_rule()
    validate_object(rule)
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == ALERTS
    assert all(r["labels"]["severity"] in {"warning", "critical"} for r in alerts.values())


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    """`promtool check rules` accepts the rule file."""
    done = run(promtool(), "check", "rules", str(write_rule_file(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_promtool_unit_tests_two_alerts(tmp_path: Path) -> None:
    """`promtool test rules` passes for the breaker and pending-task alerts, and can fail."""
    binary = promtool()
    write_rule_file(tmp_path)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    assert tested == {"QontractGatewayBreakerOpen", "QontractGatewayTasksPending"}
    done = run(binary, "test", "rules", str(tmp_path / RULE_TESTS.name))
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "rules.yaml"
    broken.write_text(broken.read_text().replace("> 600", "> 6000"))
    done = run(binary, "test", "rules", str(tmp_path / RULE_TESTS.name))
    assert done.returncode != 0
    assert "QontractGatewayTasksPending" in done.stdout + done.stderr


def test_metric_names_are_read_from_expressions() -> None:
    """The extraction the existence check relies on finds names and refuses foreign ones."""
    expr = 'sum by (le) (rate(qontract_gateway_x_bucket{a="b"}[5m])) / qontract_gateway_y offset 5m'
    assert metric_names(expr) == {"qontract_gateway_x_bucket", "qontract_gateway_y"}
    with pytest.raises(AssertionError, match="kube_pod_status_ready"):
        metric_names('kube_pod_status_ready{condition="false"}')


@pytest.fixture
def pagerduty() -> Iterator[ServerThread]:
    """A PagerDuty emulator with one schedule."""
    emulator = PagerDutyEmulator()
    emulator.state.token = TOKEN
    emulator.state.add_user("U1", "alice@example.com")
    emulator.state.oncall = {"PA": ["U1"]}
    with ServerThread(emulator.app) as server:
        yield server


def test_every_metric_the_dashboard_and_alerts_name_is_exported(
    gateway_factory: Callable[..., ServerThread],
    pagerduty: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An API gateway after a lookup declares every metric named, and samples the lookup's."""
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", TOKEN)
    account = {"name": "app-sre", "api_url": pagerduty.url, "token": {"env": "QGW_TEST_PD_TOKEN"}}
    server = gateway_factory(
        role="api",
        upstreams={"pagerduty": [account]},
        tasks={"heartbeat_interval": 0.25, "heartbeat_timeout": 0.5},
    )
    query = 'query Lookup { pagerduty_schedules_v1(instance: "app-sre", ids: ["PA"]) { id } }'
    body = graphql(server, query)
    assert body["data"]["pagerduty_schedules_v1"] == [{"id": "PA"}]
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200

    def metrics() -> str:
        return httpx.get(server.url + "/metrics", timeout=10).text

    wait_until(lambda: "qontract_gateway_tasks{" in metrics(), 20, "the first task sweep")
    declared, sampled = exported_names(metrics())
    named = {
        name for expr in rule_expressions() + dashboard_expressions() for name in metric_names(expr)
    }
    assert named - declared == set()
    lookup = {
        "qontract_gateway_http_requests_total",
        "qontract_gateway_graphql_operations_total",
        "qontract_gateway_graphql_operation_seconds_bucket",
        "qontract_gateway_cache_lookups_total",
        "qontract_gateway_upstream_requests_total",
        "qontract_gateway_upstream_request_duration_seconds_bucket",
        "qontract_gateway_upstream_breaker_state",
        "qontract_gateway_redis_up",
        "qontract_gateway_tasks",
        "qontract_gateway_task_oldest_seconds",
        "qontract_gateway_task_queue_messages",
        "qontract_gateway_events_group_lag_max",
        "qontract_gateway_events_dead_letters",
    }
    assert lookup - sampled == set()
    assert lookup <= named


def sample(runtime: Runtime, name: str, **labels: str) -> float | None:
    """One sample of the runtime's registry."""
    return runtime.metrics.registry.get_sample_value(name, labels)


async def test_task_backlog_gauges_follow_the_queue(redis_url: str, namespace: str) -> None:
    """A task no worker takes shows as pending, waiting in its Celery list, and ageing."""
    settings = Settings(
        role="api",
        redis={"url": redis_url, "namespace": namespace},
        tasks={"heartbeat_interval": 0.25, "heartbeat_timeout": 0.5},
    )
    runtime = Runtime.create(settings)
    queue = TaskQueue.create(runtime)
    await queue.start()
    try:
        await queue.submit("test.nothing", {}, dry_run=True)

        async def seen() -> bool:
            return sample(runtime, "qontract_gateway_tasks", state="pending") == 1

        await async_wait_until(seen, 20, "the pending task in the gauges")
        assert sample(runtime, "qontract_gateway_tasks", state="running") == 0
        messages = {
            q: sample(runtime, "qontract_gateway_task_queue_messages", queue=q) for q in QUEUES
        }
        assert messages == {q: 1.0 if q == DRY_RUN_QUEUE else 0.0 for q in QUEUES}
        first = sample(runtime, "qontract_gateway_task_oldest_seconds", state="pending")
        assert first is not None

        async def older() -> bool:
            age = sample(runtime, "qontract_gateway_task_oldest_seconds", state="pending")
            return age is not None and age > first + 0.5

        await async_wait_until(older, 20, "the oldest pending task to age")
    finally:
        await queue.aclose()
        for key in [k async for k in runtime.redis.scan_iter(f"{namespace}:*")]:
            await runtime.redis.delete(key)
        await runtime.aclose()


def test_redis_up_follows_readiness(gateway_factory: Callable[..., ServerThread]) -> None:
    """/readyz sets qontract_gateway_redis_up: 1 with Redis, 0 when nothing answers."""
    reachable = gateway_factory()
    dead = gateway_factory(redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    for server, status, up in ((reachable, 200, 1.0), (dead, 503, 0.0)):
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == status
        exposition = httpx.get(server.url + "/metrics", timeout=10).text
        values = {
            s.name: s.value
            for family in text_string_to_metric_families(exposition)
            for s in family.samples
        }
        assert values["qontract_gateway_redis_up"] == up


def test_dashboard_panels_are_well_formed() -> None:
    """Unique panel ids, every query on the datasource variable with a refId, no overlap."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, panel["title"]
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs) > 0
        assert all('namespace="$namespace"' in t["expr"] for t in panel["targets"])


async def test_event_backlog_gauges_show_lag_pending_and_dead_letters(
    redis_url: str, namespace: str
) -> None:
    """Three events, a group that took two and dead-lettered one: lag 1, pending 1, 1 dead."""
    settings = Settings(
        redis={"url": redis_url, "namespace": namespace}, events={"max_deliveries": 1}
    )
    runtime = Runtime.create(settings)
    try:
        await runtime.events.observe_backlog()
        assert sample(runtime, "qontract_gateway_events_dead_letters") == 0
        for number in range(3):
            event = Event(event_type="ops.test", source="tests", payload={"n": number})
            await runtime.events.publisher.publish(event)
        async with runtime.events.durable("ops-group", "consumer-1") as consumer:
            received = await consumer.receive(2)
            assert len(received) == 2
            await consumer.reject(received[0], "test failure")
        await runtime.events.observe_backlog()
        assert sample(runtime, "qontract_gateway_events_dead_letters") == 1
        assert sample(runtime, "qontract_gateway_events_group_lag_max") == 1
        assert sample(runtime, "qontract_gateway_events_group_pending") == 1
    finally:
        for key in [k async for k in runtime.redis.scan_iter(f"{namespace}:*")]:
            await runtime.redis.delete(key)
        await runtime.aclose()
