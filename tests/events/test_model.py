"""The event model: validation, JSON and CloudEvents forms."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from gateway.events.model import Event


def make_event() -> Event:
    """An event as the Slack usergroups reconciler publishes it."""
    return Event(
        event_type="slack-usergroups.update_users",
        source="qontract-gateway",
        payload={"workspace": "coreos", "usergroup": "team-a", "users": ["alice", "bob"]},
    )


def test_event_round_trips_through_json_unchanged() -> None:
    event = make_event()
    assert Event.from_json(event.to_json()) == event


def test_event_round_trips_through_cloudevents_structured_json() -> None:
    event = make_event()
    cloudevent = event.to_cloudevent()
    assert cloudevent["specversion"] == "1.0"
    assert cloudevent["type"] == "slack-usergroups.update_users"
    assert cloudevent["datacontenttype"] == "application/json"
    assert cloudevent["time"].endswith("Z")
    assert Event.from_cloudevent(cloudevent) == event


def test_event_defaults_are_a_fresh_uuid_version_1_and_utc_now() -> None:
    first, second = make_event(), make_event()
    assert first.id != second.id
    assert first.version == "1"
    assert first.timestamp.tzinfo is not None
    assert abs(datetime.now(UTC) - first.timestamp) < timedelta(seconds=5)


def test_event_timestamp_is_normalised_to_utc() -> None:
    local = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = Event(event_type="a.b", source="s", timestamp=local)
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.timestamp == local


@pytest.mark.parametrize(
    "event_type",
    ["update_users", "Slack.update", "slack..update", ".update", "slack.", ""],
)
def test_event_type_that_is_not_dot_separated_lowercase_is_rejected(event_type: str) -> None:
    with pytest.raises(ValidationError, match="event_type"):
        Event(event_type=event_type, source="qontract-gateway")


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Event(event_type="a.b", source="s", timestamp=datetime(2026, 1, 1))


def test_event_is_frozen() -> None:
    event = make_event()
    with pytest.raises(ValidationError):
        event.source = "someone-else"  # type: ignore[misc]


def test_cloudevent_of_another_spec_version_is_rejected() -> None:
    cloudevent = make_event().to_cloudevent() | {"specversion": "0.3"}
    with pytest.raises(ValueError, match="specversion"):
        Event.from_cloudevent(cloudevent)
