"""The task record: what was asked, its status, result or error, as stored in a Redis hash."""

import datetime as dt
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.tracing import TRACEPARENT


class TaskStatus(StrEnum):
    """Where a task is in its life; `success` and `failed` are final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True for the final statuses."""
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILED)


def utcnow() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


class TaskRecord(BaseModel):
    """One submitted task; `attempt` counts runs started after a lost worker.

    `traceparent` is the W3C trace context of the request that submitted it (tracing on), so
    its runs, on whichever process, are spans of that trace.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    dry_run: bool
    status: TaskStatus = TaskStatus.PENDING
    resource: str | None = None
    request_id: str = ""
    traceparent: str | None = Field(None, pattern=TRACEPARENT.pattern)
    attempt: int = 1
    submitted_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_fields(self) -> dict[str, str]:
        """The hash fields: plain strings, `result` as JSON, absent values left out."""
        fields: dict[str, str] = {}
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            if name == "result":
                fields[name] = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, bool):
                fields[name] = "1" if value else "0"
            else:
                fields[name] = str(value)
        return fields

    @classmethod
    def from_fields(cls, raw: Mapping[bytes | str, bytes | str]) -> "TaskRecord":
        """The record stored in hash fields `raw` (the payload field is not part of it)."""
        fields: dict[str, Any] = {_text(k): _text(v) for k, v in raw.items()}
        fields.pop("payload", None)
        if "result" in fields:
            fields["result"] = json.loads(fields["result"])
        return cls.model_validate(fields)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
