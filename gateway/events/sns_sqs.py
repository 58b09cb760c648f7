"""SNS/SQS backend: publish to an SNS topic, consume from an SQS queue subscribed to it."""

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from pydantic import ValidationError

from gateway.events.base import (
    UNKNOWN_EVENT_TYPE,
    Delivery,
    EventMetrics,
    Handler,
    ReceivedEvent,
    consume_until_stopped,
    publish_counted,
)
from gateway.events.model import Event

BACKEND = "sns"
SQS_BATCH_LIMIT = 10


def create_aws_client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
) -> Any:
    """A boto3 client for `service`, at `endpoint_url` when given (an emulator, a VPC endpoint)."""
    import boto3  # the optional `sns` extra; only this backend needs it

    return boto3.client(service, endpoint_url=endpoint_url, region_name=region_name)


def unwrap_body(body: str) -> str:
    """The event JSON inside an SQS body: an SNS notification envelope or a raw message."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict) and document.get("Type") == "Notification":
        message = document.get("Message")
        if isinstance(message, str):
            return message
    return body


class SnsPublisher:
    """Publishes each event's JSON to an SNS topic, with its type as a message attribute."""

    def __init__(self, sns_client: Any, topic_arn: str, *, metrics: EventMetrics) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._metrics = metrics
        self._log = structlog.get_logger(__name__)

    async def publish(self, event: Event) -> str | None:
        """Publish `event`; the SNS message id, or None (logged, counted) on failure."""

        async def send() -> str:
            response = await asyncio.to_thread(
                self._sns.publish,
                TopicArn=self._topic_arn,
                Message=event.to_json(),
                MessageAttributes={
                    "event_type": {"DataType": "String", "StringValue": event.event_type},
                },
            )
            return str(response["MessageId"])

        return await publish_counted(BACKEND, self._metrics, event, send)

    async def close(self) -> None:
        """Close the boto3 client."""
        await asyncio.to_thread(self._sns.close)


class SqsConsumer:
    """Consumes an SQS queue: delete after success, redelivery after the visibility timeout.

    After `max_deliveries` failed attempts the message is sent to `dead_letter_queue_url` and
    deleted; without one, it stays for the queue's own redrive policy to move.
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        *,
        metrics: EventMetrics,
        wait_time_seconds: int = 10,
        visibility_timeout_seconds: int | None = None,
        max_deliveries: int = 5,
        dead_letter_queue_url: str | None = None,
        batch_size: int = SQS_BATCH_LIMIT,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._metrics = metrics
        self._wait_time_seconds = wait_time_seconds
        self._visibility_timeout_seconds = visibility_timeout_seconds
        self._max_deliveries = max_deliveries
        self._dead_letter_queue_url = dead_letter_queue_url
        self._batch_size = min(batch_size, SQS_BATCH_LIMIT)
        self._log = structlog.get_logger(__name__).bind(queue_url=queue_url)

    async def receive(self, max_count: int = SQS_BATCH_LIMIT) -> list[ReceivedEvent]:
        """Up to `max_count` (at most 10) messages, long-polling up to `wait_time_seconds`."""
        request: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MaxNumberOfMessages": max(1, min(max_count, SQS_BATCH_LIMIT)),
            "WaitTimeSeconds": self._wait_time_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if self._visibility_timeout_seconds is not None:
            request["VisibilityTimeout"] = self._visibility_timeout_seconds
        response = await asyncio.to_thread(self._sqs.receive_message, **request)
        received: list[ReceivedEvent] = []
        for message in response.get("Messages", ()):
            delivery = await self._accept(message)
            if delivery is not None:
                received.append(delivery)
        return received

    async def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Delete deliveries (objects or receipt handles); returns how many were deleted."""
        labelled = [
            (d.delivery_id, d.event.event_type)
            if isinstance(d, ReceivedEvent)
            else (d, UNKNOWN_EVENT_TYPE)
            for d in deliveries
        ]
        deleted = 0
        for start in range(0, len(labelled), SQS_BATCH_LIMIT):
            chunk = labelled[start : start + SQS_BATCH_LIMIT]
            response = await asyncio.to_thread(
                self._sqs.delete_message_batch,
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, (h, _) in enumerate(chunk)],
            )
            by_type: dict[str, int] = defaultdict(int)
            for success in response.get("Successful", ()):
                by_type[chunk[int(success["Id"])][1]] += 1
            for event_type, count in by_type.items():
                self._metrics.acknowledged.labels(BACKEND, event_type).inc(count)
                deleted += count
        return deleted

    async def reject(self, received: ReceivedEvent, reason: str) -> None:
        """A failed attempt: dead-letter after the last allowed one, else redeliver later."""
        if received.delivery_count >= self._max_deliveries:
            await self._dead_letter(
                received.delivery_id,
                received.event.to_json(),
                received.event.event_type,
                received.delivery_count,
                reason,
            )

    async def consume(self, handler: Handler, *, stop: asyncio.Event | None = None) -> None:
        """Run `handler` on every delivery until `stop` is set; delete on success."""
        await consume_until_stopped(self, handler, stop, self._batch_size)

    async def close(self) -> None:
        """Close the boto3 client."""
        await asyncio.to_thread(self._sqs.close)

    async def _accept(self, message: dict[str, Any]) -> ReceivedEvent | None:
        handle = str(message["ReceiptHandle"])
        deliveries = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        body = unwrap_body(str(message.get("Body", "")))
        try:
            event = Event.from_json(body)
        except (ValueError, ValidationError) as error:
            await self._dead_letter(
                handle,
                body,
                UNKNOWN_EVENT_TYPE,
                deliveries,
                f"undecodable: {error}",
            )
            return None
        if deliveries > self._max_deliveries:
            await self._dead_letter(
                handle,
                body,
                event.event_type,
                deliveries - 1,
                "not deleted within the visibility timeout",
            )
            return None
        self._metrics.delivered.labels(BACKEND, event.event_type).inc()
        if deliveries > 1:
            self._metrics.redelivered.labels(BACKEND, event.event_type).inc()
        return ReceivedEvent(event=event, delivery_id=handle, delivery_count=deliveries)

    async def _dead_letter(
        self,
        handle: str,
        body: str,
        event_type: str,
        deliveries: int,
        reason: str,
    ) -> None:
        if self._dead_letter_queue_url is None:
            self._log.warning(
                "event failed its last attempt; left to the queue's redrive policy",
                event_type=event_type,
                deliveries=deliveries,
                reason=reason,
            )
            return
        await asyncio.to_thread(
            self._sqs.send_message,
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": event_type},
                "deliveries": {"DataType": "Number", "StringValue": str(deliveries)},
                "reason": {"DataType": "String", "StringValue": reason[:1024] or "unknown"},
            },
        )
        await asyncio.to_thread(
            self._sqs.delete_message,
            QueueUrl=self._queue_url,
            ReceiptHandle=handle,
        )
        self._metrics.dead_lettered.labels(BACKEND, event_type).inc()
        self._log.warning(
            "event dead-lettered",
            event_type=event_type,
            deliveries=deliveries,
            reason=reason,
        )
