"""Tracing with the real OpenTelemetry SDK recording in memory: a lookup and a reconcile run."""

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway import tracing
from gateway.events.model import Event
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from gateway.settings import Settings, TracingSettings
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.support.tracing import recording_spans
from tests.support.wait import wait_until
from tests.test_pagerduty import SCHEDULES
from tests.test_pagerduty import TOKEN as PD_TOKEN
from tests.test_slack_reconcile import TOKEN as SLACK_TOKEN
from tests.test_slack_usergroups_mutation import DESIRED, SECRET, SUBMIT, call

ON = {"enabled": True, "service_name": "qgw-test"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span the gateways of this test end, kept in memory by the real SDK."""
    with recording_spans() as exporter:
        yield exporter


def strings(span: ReadableSpan) -> list[str]:
    """The span's name and every string in its attributes and events."""
    found = [span.name]
    attribute_sets = [span.attributes or {}] + [event.attributes or {} for event in span.events]
    for attributes in attribute_sets:
        for value in attributes.values():
            found.extend(str(v) for v in (value if isinstance(value, Sequence) else [value]))
    return found


def assert_nothing_secret(finished: Sequence[ReadableSpan], secrets: Sequence[str]) -> None:
    """No span names or attributes a secret, a URL or one of the ids callers asked for."""
    for span in finished:
        for text in strings(span):
            assert not any(secret in text for secret in secrets), (span.name, text)
            assert "://" not in text, (span.name, text)
            assert "/schedules" not in text, (span.name, text)


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span's parent, its parent's parent... as far as this exporter saw them."""
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def of_trace(finished: Sequence[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    """The spans of one trace."""
    return [s for s in finished if s.context is not None and s.context.trace_id == trace_id]


def operation_spans(finished: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The GraphQL operation spans, in the order they ended."""
    return [s for s in finished if s.kind == SpanKind.SERVER]


@pytest.fixture
def pd_gateway(
    gateway_factory: Callable[..., ServerThread], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PagerDutyEmulator, ServerThread]]:
    """A traced gateway on a PagerDuty emulator whose schedule PA has users U1 and U2."""
    emulator = PagerDutyEmulator()
    emulator.state.token = PD_TOKEN
    emulator.state.add_user("U1", "alice@example.com")
    emulator.state.add_user("U2", "bob@example.com")
    emulator.state.oncall = {"PA": ["U1", "U2"]}
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", PD_TOKEN)
    with ServerThread(emulator.app) as upstream:
        account = {
            "name": "app-sre",
            "api_url": upstream.url,
            "token": {"env": "QGW_TEST_PD_TOKEN"},
        }
        yield emulator, gateway_factory(tracing=ON, upstreams={"pagerduty": [account]})


def test_lookup_is_an_operation_span_over_cache_and_upstream_spans_and_a_hit_calls_nothing(
    spans: InMemorySpanExporter, pd_gateway: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    _, gateway = pd_gateway
    first = graphql(gateway, SCHEDULES, ids=["PA"])
    assert {u["id"] for u in first["data"]["pagerduty_schedules_v1"][0]["users"]} == {"U1", "U2"}
    wait_until(lambda: len(operation_spans(spans.get_finished_spans())) == 1, 10, "first span")
    [miss] = operation_spans(spans.get_finished_spans())
    assert miss.context is not None
    # The client named its operation `Schedules`; a name the gateway does not know is `other`.
    assert miss.name == "query other"
    assert miss.attributes is not None
    assert miss.attributes["graphql.operation.name"] == "other"
    assert miss.attributes["graphql.operation.type"] == "query"
    assert miss.attributes["qontract.outcome"] == "ok"

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    trace = of_trace(finished, miss.context.trace_id)
    lookups = [s for s in trace if s.name == "cache.get"]
    assert lookups, [s.name for s in trace]
    for lookup in lookups:
        assert lookup.attributes is not None
        assert lookup.attributes["qontract.system"] == "pagerduty"
        assert lookup.attributes["qontract.account"] == "app-sre"
        assert lookup.attributes["qontract.cache.outcome"] == "miss"
        assert miss in ancestors(lookup, by_id)
    calls = [s for s in trace if s.kind == SpanKind.CLIENT]
    assert calls, [s.name for s in trace]
    for upstream in calls:
        assert upstream.attributes is not None
        assert upstream.name.startswith("pagerduty ")
        assert upstream.attributes["qontract.system"] == "pagerduty"
        assert upstream.attributes["qontract.account"] == "app-sre"
        assert upstream.attributes["http.response.status_code"] == 200
        assert upstream.attributes["qontract.upstream.retries"] == 0
        assert [e.name for e in upstream.events] == ["rate_limit.acquired"]
        chain = ancestors(upstream, by_id)
        assert chain[-1] is miss
        assert any(s.name == "cache.get" for s in chain)

    spans.clear()
    graphql(gateway, SCHEDULES, ids=["PA"])
    wait_until(lambda: bool(operation_spans(spans.get_finished_spans())), 10, "second span")
    again = spans.get_finished_spans()
    assert [s for s in again if s.kind == SpanKind.CLIENT] == []
    assert_nothing_secret([*finished, *again], [PD_TOKEN, "PA", "U1", "U2", "alice@"])


def test_failed_lookup_span_carries_the_error_code_and_the_upstream_status(
    spans: InMemorySpanExporter, pd_gateway: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    _, gateway = pd_gateway
    body = graphql(gateway, SCHEDULES, ids=["PNOPE"])
    code = body["errors"][0]["extensions"]["code"]
    wait_until(lambda: bool(operation_spans(spans.get_finished_spans())), 10, "the span")
    [operation] = operation_spans(spans.get_finished_spans())
    assert operation.attributes is not None
    assert operation.attributes["qontract.outcome"] == "error"
    assert operation.attributes["qontract.error_codes"] == (code,)
    assert operation.status.status_code == StatusCode.ERROR
    [upstream] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert upstream.attributes is not None
    assert upstream.attributes["http.response.status_code"] == 404
    assert upstream.status.status_code == StatusCode.ERROR
    assert_nothing_secret(spans.get_finished_spans(), [PD_TOKEN, "PNOPE"])


@pytest.fixture
def slack_gateway(
    gateway_factory: Callable[..., ServerThread], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    """A traced gateway (in-process task engine) on the Slack emulator of the reconcile tests."""
    from tests.test_slack_reconcile import GENEROUS, coreos_state

    emulator = SlackEmulator()
    coreos_state(emulator.state)
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", SLACK_TOKEN)
    with ServerThread(emulator.app) as server:
        workspace = {
            "name": "coreos",
            "api_url": f"{server.url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": GENEROUS,
        }
        yield gateway_factory(tracing=ON, auth={"secret": SECRET}, upstreams={"slack": [workspace]})


def test_reconcile_run_is_one_trace_from_mutation_through_task_to_slack_and_its_events(
    spans: InMemorySpanExporter, slack_gateway: ServerThread, redis_url: str, namespace: str
) -> None:
    submitted = call(
        slack_gateway,
        ["reconcile:apply"],
        SUBMIT,
        input={"dry_run": False, "workspaces": [DESIRED]},
    )
    task_id = submitted["data"]["slack_usergroups_reconcile_v1"]["id"]

    def task_span() -> ReadableSpan | None:
        found = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
        return found[0] if found else None

    wait_until(lambda: task_span() is not None, 30, "the task span to end")
    task = task_span()
    assert task is not None
    assert task.context is not None
    assert task.parent is not None
    [mutation] = [s for s in operation_spans(spans.get_finished_spans()) if s.name.startswith("m")]
    assert mutation.context is not None
    assert mutation.name == "mutation other"
    assert task.context.trace_id == mutation.context.trace_id
    assert task.parent.span_id == mutation.context.span_id
    assert task.attributes is not None
    assert task.attributes["qontract.task.kind"] == "slack-usergroups.reconcile"
    assert task.attributes["qontract.task.dry_run"] is False
    assert task.attributes["qontract.task.queue"] == "reconcile-apply"
    assert task.attributes["qontract.task.status"] == "success"

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    calls = [s for s in of_trace(finished, task.context.trace_id) if s.kind == SpanKind.CLIENT]
    assert {s.name for s in calls} >= {"slack usergroups.create"}, [s.name for s in calls]
    for upstream in calls:
        assert upstream.attributes is not None
        assert upstream.attributes["qontract.system"] == "slack"
        assert upstream.attributes["qontract.account"] == "coreos"
        assert task in ancestors(upstream, by_id)

    client = redis.Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    finally:
        client.close()
    events = [decode_entry(fields) for _, fields in entries]
    assert events
    trace_hex = f"{task.context.trace_id:032x}"
    for event in events:
        assert event.traceparent is not None
        assert event.traceparent.split("-")[1] == trace_hex
        assert event.to_cloudevent()["traceparent"] == event.traceparent
    assert task_id not in json.dumps([strings(s) for s in finished])
    assert_nothing_secret(finished, [SLACK_TOKEN, SECRET])


def test_tracing_is_off_by_default_and_then_records_nothing(
    spans: InMemorySpanExporter,
) -> None:
    tracing.configure(Settings().tracing)
    assert not tracing.enabled()
    with tracing.span("anything") as span:
        assert span is None
        assert tracing.current_traceparent() is None
    assert spans.get_finished_spans() == ()
    tracing.configure(TracingSettings(enabled=True))
    with tracing.span("traced") as span:
        assert span is not None
    assert [s.name for s in spans.get_finished_spans()] == ["traced"]


def test_a_task_record_or_event_refuses_a_malformed_traceparent() -> None:
    with pytest.raises(ValueError, match="traceparent"):
        Event(event_type="a.b", source="s", traceparent="00-not-a-trace\n-01")
    event = Event(event_type="a.b", source="s")
    assert "traceparent" not in event.to_json()
    assert "traceparent" not in event.to_cloudevent()
