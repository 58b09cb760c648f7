"""The event every backend carries, and its JSON form."""

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gateway.errors import shown

EVENT_TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Something that happened: an applied action or an error, named `integration.action`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id, min_length=1)
    version: str = "1"
    event_type: str
    source: str = Field(min_length=1)
    timestamp: AwareDatetime = Field(default_factory=_now)
    payload: dict[str, Any] = Field(default_factory=dict)

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
