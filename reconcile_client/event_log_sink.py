"""event-log-sink: follow the gateway's events durably and write each as one JSON line."""

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from reconcile_client.gateway_client import GatewayClient

SUBSCRIPTION = """
subscription EventLogSink($group: String!, $consumer: String!, $types: [String!]) {
  events_durable_v1(group: $group, consumer: $consumer, types: $types) {
    id version event_type source timestamp payload stream_id delivery_count
  }
}
"""
ACKNOWLEDGE = """
mutation EventLogSinkAck($group: String!, $ids: [String!]!) {
  events_ack_v1(group: $group, ids: $ids)
}
"""


@dataclass(frozen=True)
class SinkResult:
    """What one run did: lines written and deliveries acknowledged."""

    written: int
    acknowledged: int


def event_line(event: dict[str, Any]) -> str:
    """One delivered event as a JSON line (its payload as JSON, not as the wire's string)."""
    record = {**event, "payload": json.loads(event["payload"])}
    return json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"


async def run_event_log_sink(
    gateway: GatewayClient,
    group: str,
    consumer: str,
    *,
    types: Sequence[str] | None = None,
    dry_run: bool = False,
    output: TextIO | None = None,
    max_events: int | None = None,
    stop: asyncio.Event | None = None,
) -> SinkResult:
    """Write each event of consumer `group` to `output` (stdout), acknowledging it once flushed.

    In dry run nothing is acknowledged, so the group gets every event again later. Runs until
    `max_events` lines are written or `stop` is set; failures are `gateway`'s client errors
    (an unreachable gateway is GatewayUnreachable, exit 3).
    """
    stream = output if output is not None else sys.stdout
    written = acknowledged = 0
    variables = {"group": group, "consumer": consumer, "types": list(types) if types else None}
    deliveries = gateway.subscribe_document(SUBSCRIPTION, variables)
    async with contextlib.aclosing(deliveries):
        while max_events is None or written < max_events:
            result = await _next_or_stop(deliveries, stop)
            if result is None:
                break
            event = result["events_durable_v1"]
            stream.write(event_line(event))
            stream.flush()
            written += 1
            if not dry_run:
                ids = {"group": group, "ids": [event["stream_id"]]}
                answer = await gateway.execute_document(ACKNOWLEDGE, ids)
                acknowledged += int(answer["events_ack_v1"])
    return SinkResult(written=written, acknowledged=acknowledged)


async def _next_or_stop(
    deliveries: AsyncGenerator[dict[str, Any], None], stop: asyncio.Event | None
) -> dict[str, Any] | None:
    """The next delivery, or None when the stream ended or `stop` was set first."""
    following = asyncio.ensure_future(anext(deliveries, None))
    if stop is None:
        return await following
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if following in done:
        return following.result()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await following
    return None
