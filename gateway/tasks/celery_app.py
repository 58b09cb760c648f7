"""The Celery app (one per process, made by a factory): Redis broker, JSON only, late acks."""

from urllib.parse import parse_qs, urlsplit

from celery import Celery
from kombu.entity import Queue

from gateway.redis_keys import TaskKeys
from gateway.settings import Settings
from gateway.tasks.engine import DRY_RUN_QUEUE, QUEUES

RUN_TASK = "gateway.tasks.run"


def broker_url(redis_url: str) -> str:
    """The kombu URL of a Redis URL; kombu names a unix socket `redis+socket://`."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app on the gateway's Redis; its keys live under `<ns>:celery:{broker}:`."""
    if settings.redis.url is None:
        raise ValueError("the Celery engine needs a Redis URL")
    app = Celery("qontract-gateway", set_as_current=False)
    app.conf.update(
        broker_url=broker_url(settings.redis.url),
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.tasks.visibility_timeout,
            "global_keyprefix": TaskKeys(settings.redis.namespace).celery_prefix(),
        },
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_queues=[Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue=DRY_RUN_QUEUE,
        task_create_missing_queues=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
