"""Typed async client of the PagerDuty REST API v2 (no caching; the source adds that)."""

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.errors import NotFound, UpstreamError
from gateway.source import IdSyntax
from gateway.upstream import UpstreamClient, UpstreamPath

ONCALL_WINDOW = dt.timedelta(seconds=60)
_ID = re.compile(r"[A-Za-z0-9]+")
_HINT = "letters and digits, like PABC123"
SCHEDULE_ID = IdSyntax("PagerDuty schedule id", _ID, 64, _HINT)
POLICY_ID = IdSyntax("PagerDuty escalation policy id", _ID, 64, _HINT)


class PagerDutyUser(BaseModel):
    """A PagerDuty user as the gateway needs it."""

    id: str
    name: str = ""
    email: str = ""
    deleted_at: str | None = None

    @property
    def username(self) -> str:
        """The local part of the e-mail, which is the org username."""
        return self.email.split("@", 1)[0]


class EscalationTarget(BaseModel):
    """A rule target: a schedule or a user."""

    id: str
    type: str

    @property
    def kind(self) -> Literal["schedule", "user", "other"]:
        """`schedule` or `user` (PagerDuty's `*_reference` types), else `other`."""
        base = self.type.removesuffix("_reference")
        return base if base in ("schedule", "user") else "other"  # type: ignore[return-value]


class EscalationRule(BaseModel):
    """One rule of an escalation policy, in order."""

    escalation_delay_in_minutes: int = 0
    targets: list[EscalationTarget] = Field(default_factory=list)


class PagerDutyApi:
    """Schedules, escalation policies and users of one PagerDuty account."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    async def schedule_oncall_users(
        self, schedule_id: str, now: dt.datetime
    ) -> list[PagerDutyUser]:
        """Users on call in the schedule's final layer between now and now + 60 s (UTC)."""
        params = {
            "since": now.isoformat(),
            "until": (now + ONCALL_WINDOW).isoformat(),
            "time_zone": "UTC",
        }
        body = await self._get(
            "schedules.users",
            UpstreamPath("/schedules/{}/users", schedule_id),
            params,
            what=f"schedule {schedule_id}",
        )
        return [PagerDutyUser.model_validate(user) for user in body.get("users", [])]

    async def escalation_rules(self, policy_id: str) -> list[EscalationRule]:
        """The policy's rules in order."""
        body = await self._get(
            "escalation_policies.get",
            UpstreamPath("/escalation_policies/{}", policy_id),
            {},
            what=f"escalation policy {policy_id}",
        )
        rules = body.get("escalation_policy", {}).get("escalation_rules", [])
        return [EscalationRule.model_validate(rule) for rule in rules]

    async def user(self, user_id: str) -> PagerDutyUser:
        """One user by id; a deleted (off-boarded) user is NOT_FOUND, as PagerDuty answers 404."""
        path = UpstreamPath("/users/{}", user_id)
        body = await self._get("users.get", path, {}, what=f"user {user_id}")
        return PagerDutyUser.model_validate(body["user"])

    async def _get(
        self, operation: str, path: UpstreamPath, params: dict[str, str], what: str
    ) -> dict[str, Any]:
        try:
            response = await self.client.request(operation, "GET", path, params=params)
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                raise NotFound(
                    f"PagerDuty {what} not found in account {self.client.account.name!r}"
                ) from None
            raise
        body: dict[str, Any] = response.json()
        return body
