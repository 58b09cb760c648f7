"""The event every backend carries, and its CloudEvents 1.0 structured JSON form."""

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gateway.errors import shown
from gateway.tracing import TRACEPARENT

EVENT_TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
CLOUDEVENTS_SPEC_VERSION = "1.0"


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


def _is_none(value: object) -> bool:
    return value is None


class Event(BaseModel):
    """Something that happened: an applied action or an error, named `integration.action`.

    `traceparent`, the W3C trace context of the span that made it (producers pass
    `gateway.tracing.current_traceparent()`), links the event to the request and task behind
    it; it is left out of the JSON when there is none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id, min_length=1)
    version: str = "1"
    event_type: str
    source: str = Field(min_length=1)
    timestamp: AwareDatetime = Field(default_factory=_now)
    payload: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = Field(None, pattern=TRACEPARENT.pattern, exclude_if=_is_none)

    @field_validator("event_type")
    @classmethod
    def _dot_separated(cls, value: str) -> str:
        if not EVENT_TYPE_PATTERN.match(value):
            raise ValueError(
                "event_type must be dot-separated lowercase words, e.g. "
                f"'slack-usergroups.update_users', not {shown(value)}"
            )
        return value

    @field_validator("timestamp")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> str:
        """This event as JSON (the wire form of every backend)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> "Event":
        """Parse and validate an event from its JSON form."""
        return cls.model_validate_json(data)

    def to_cloudevent(self) -> dict[str, Any]:
        """This event as a CloudEvents 1.0 structured-mode JSON object."""
        cloudevent: dict[str, Any] = {
            "specversion": CLOUDEVENTS_SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.event_type,
            "time": self.timestamp.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "eventversion": self.version,
            "data": self.payload,
        }
        if self.traceparent is not None:  # the CloudEvents distributed tracing extension
            cloudevent["traceparent"] = self.traceparent
        return cloudevent

    @classmethod
    def from_cloudevent(cls, cloudevent: Mapping[str, Any]) -> "Event":
        """Parse a CloudEvents 1.0 structured-mode JSON object; rejects other spec versions."""
        spec_version = cloudevent.get("specversion")
        if spec_version != CLOUDEVENTS_SPEC_VERSION:
            raise ValueError(f"unsupported CloudEvents specversion {spec_version!r}")
        content_type = cloudevent.get("datacontenttype", "application/json")
        if content_type != "application/json":
            raise ValueError(f"unsupported datacontenttype {content_type!r}")
        fields: dict[str, Any] = {
            "id": cloudevent["id"],
            "source": cloudevent["source"],
            "event_type": cloudevent["type"],
            "payload": cloudevent.get("data") or {},
        }
        if "time" in cloudevent:
            fields["timestamp"] = cloudevent["time"]
        if "traceparent" in cloudevent:
            fields["traceparent"] = cloudevent["traceparent"]
        if "eventversion" in cloudevent:
            fields["version"] = cloudevent["eventversion"]
        return cls.model_validate(fields)
