"""A task run by a real Celery worker is a span of the submitting trace, exported over OTLP/HTTP."""

import pytest
from opentelemetry.trace import SpanKind

from gateway import tracing
from gateway.tasks.record import TaskStatus
from tests.emulators.otlp import OtlpReceiver
from tests.support.server_thread import ServerThread
from tests.support.tracing import recording_spans
from tests.support.wait import wait_until
from tests.tasks.conftest import QueueFactory, WorkerFactory

CONSUMER = 5  # OTLP's SPAN_KIND_CONSUMER


async def test_worker_runs_the_task_in_the_submitters_trace_and_exports_it_over_otlp(
    queue_factory: QueueFactory, worker_factory: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = OtlpReceiver()
    with ServerThread(receiver.app) as collector, recording_spans():
        monkeypatch.setenv("QONTRACT_GATEWAY_TRACING__ENABLED", "true")
        monkeypatch.setenv("QONTRACT_GATEWAY_TRACING__OTLP_ENDPOINT", f"{collector.url}/v1/traces")
        monkeypatch.setenv("QONTRACT_GATEWAY_TRACING__SERVICE_NAME", "qgw-worker")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        queue = await queue_factory("api")
        worker_factory(queues="reconcile-apply")
        with tracing.span("mutation Submit", kind=SpanKind.SERVER) as submitting:
            assert submitting is not None
            record = await queue.submit("test.echo", {"n": 1}, dry_run=False, resource="x:y")
        assert (await queue.wait(record.id, 30)).status == TaskStatus.SUCCESS
        trace_id = f"{submitting.get_span_context().trace_id:032x}"
        span_id = f"{submitting.get_span_context().span_id:016x}"

        def exported() -> bool:
            return any(s.trace_id == trace_id for s in receiver.spans)

        wait_until(exported, 30, "the worker's task span at the collector")
    [task] = [s for s in receiver.spans if s.trace_id == trace_id]
    assert task.name == "task test.echo"
    assert task.kind == CONSUMER
    assert task.service == "qgw-worker"
    assert task.parent_span_id == span_id
    assert task.attributes["qontract.task.kind"] == "test.echo"
    assert task.attributes["qontract.task.status"] == "success"
    assert task.attributes["qontract.task.attempt"] == 1
    assert record.id not in str(task.attributes)
