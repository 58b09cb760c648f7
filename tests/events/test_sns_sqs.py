"""SNS/SQS backend against moto's server over real HTTP on 127.0.0.1."""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from prometheus_client import CollectorRegistry

from gateway.events import EventConsumer, EventMetrics, ReceivedEvent, create_event_consumer
from gateway.events import create_event_publisher as create_publisher
from gateway.events.model import Event
from gateway.events.sns_sqs import unwrap_body
from tests.events.conftest import counted
from tests.support.ports import free_port
from tests.support.wait import async_wait_until

REGION = "us-east-1"


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """An SNS/SQS emulator (moto) listening on a free loopback port for this module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials: the emulator accepts any, boto3 insists on some."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class Topology:
    """A topic with a queue subscribed to it, and a dead-letter queue, all uniquely named."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
        sns = boto3.client("sns", endpoint_url=endpoint, region_name=REGION)
        name = f"events-{uuid.uuid4().hex[:8]}"
        self.topic_arn: str = sns.create_topic(Name=name)["TopicArn"]
        self.queue_url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.dead_letter_url: str = self.sqs.create_queue(QueueName=name + "-dl")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["QueueArn"],
        )["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def messages_in(self, queue_url: str) -> int:
        """Visible plus in-flight messages of `queue_url`."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def consumer(self, metrics: EventMetrics, **options: Any) -> EventConsumer:
        """A consumer of the subscribed queue that polls briefly."""
        return create_event_consumer(
            "sns",
            metrics=metrics,
            queue_url=self.queue_url,
            endpoint_url=self.endpoint,
            region_name=REGION,
            dead_letter_queue_url=self.dead_letter_url,
            **({"wait_time_seconds": 1} | options),
        )


@pytest.fixture
def topology(aws_endpoint: str) -> Topology:
    """A fresh topic, subscribed queue and dead-letter queue."""
    return Topology(aws_endpoint)


def usergroup_event() -> Event:
    """An event as the Slack usergroups reconciler publishes it."""
    return Event(
        event_type="slack-usergroups.update_users",
        source="qontract-gateway",
        payload={"usergroup": "team-a", "users": ["alice"]},
    )


async def receive_one(consumer: EventConsumer) -> ReceivedEvent:
    """The next delivery of `consumer`, failing after a deadline."""
    got: list[ReceivedEvent] = []

    async def arrived() -> bool:
        got.extend(await consumer.receive())
        return bool(got)

    await async_wait_until(arrived, timeout=15, what="a message from SQS")
    assert len(got) == 1
    return got[0]


async def test_event_published_to_topic_arrives_unwrapped_in_subscribed_queue_and_ack_deletes(
    topology: Topology,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    publisher = create_publisher(
        "sns",
        metrics=metrics,
        topic_arn=topology.topic_arn,
        endpoint_url=topology.endpoint,
        region_name=REGION,
    )
    consumer = topology.consumer(metrics)
    event = usergroup_event()
    try:
        assert await publisher.publish(event) is not None
        received = await receive_one(consumer)
        assert received.event == event
        assert received.delivery_count == 1
        assert await consumer.ack([received]) == 1
    finally:
        await publisher.close()
        await consumer.close()
    assert topology.messages_in(topology.queue_url) == 0
    assert counted(registry, "published", "sns", event.event_type) == 1
    assert counted(registry, "acknowledged", "sns", event.event_type) == 1


async def test_raw_message_without_sns_envelope_is_accepted(
    topology: Topology,
    metrics: EventMetrics,
) -> None:
    event = usergroup_event()
    topology.sqs.send_message(QueueUrl=topology.queue_url, MessageBody=event.to_json())
    consumer = topology.consumer(metrics)
    try:
        assert (await receive_one(consumer)).event == event
    finally:
        await consumer.close()


def test_unwrap_body_takes_the_message_out_of_a_notification_envelope_only() -> None:
    assert unwrap_body('{"Type": "Notification", "Message": "{\\"a\\": 1}"}') == '{"a": 1}'
    confirmation = '{"Type": "SubscriptionConfirmation"}'
    assert unwrap_body(confirmation) == confirmation
    assert unwrap_body("not json") == "not json"


async def test_message_whose_handler_fails_is_redelivered_after_the_visibility_timeout(
    topology: Topology,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    publisher = create_publisher(
        "sns",
        metrics=metrics,
        topic_arn=topology.topic_arn,
        endpoint_url=topology.endpoint,
        region_name=REGION,
    )
    consumer = topology.consumer(metrics, visibility_timeout_seconds=1)
    attempts: list[int] = []

    async def fails_once(received: ReceivedEvent) -> None:
        attempts.append(received.delivery_count)
        if received.delivery_count == 1:
            raise RuntimeError("slack is down")

    event = usergroup_event()
    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.consume(fails_once, stop=stop))
    try:
        await publisher.publish(event)

        async def handled_and_deleted() -> bool:
            return len(attempts) == 2 and topology.messages_in(topology.queue_url) == 0

        await async_wait_until(handled_and_deleted, timeout=15, what="the redelivery handled")
    finally:
        stop.set()
        await consuming
        await publisher.close()
        await consumer.close()
    assert attempts == [1, 2]
    assert counted(registry, "redelivered", "sns", event.event_type) == 1
    assert topology.messages_in(topology.dead_letter_url) == 0


async def test_message_failing_max_deliveries_times_moves_to_the_dead_letter_queue(
    topology: Topology,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    consumer = topology.consumer(metrics, visibility_timeout_seconds=1, max_deliveries=2)
    event = usergroup_event()
    topology.sqs.send_message(QueueUrl=topology.queue_url, MessageBody=event.to_json())
    attempts: list[int] = []

    async def always_fails(received: ReceivedEvent) -> None:
        attempts.append(received.delivery_count)
        raise RuntimeError("slack is down")

    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.consume(always_fails, stop=stop))
    try:

        async def dead_lettered() -> bool:
            return topology.messages_in(topology.dead_letter_url) == 1

        await async_wait_until(dead_lettered, timeout=15, what="the dead-letter queue")
    finally:
        stop.set()
        await consuming
        await consumer.close()
    assert attempts == [1, 2]
    assert topology.messages_in(topology.queue_url) == 0
    assert counted(registry, "dead_lettered", "sns", event.event_type) == 1
    [message] = topology.sqs.receive_message(QueueUrl=topology.dead_letter_url)["Messages"]
    assert Event.from_json(message["Body"]) == event
