"""PagerDuty types and root fields: `pagerduty_schedules_v1`, `pagerduty_escalation_policies_v1`."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.errors import GatewayError
from resolvers.pagerduty.source import PagerDutySource, Result
from schema.context import RequestContext
from schema.provenance import record


@strawberry.type(name="PagerDutyUser_v1")
class PagerDutyUser:
    """A PagerDuty user; `username` is the local part of the e-mail (the org username)."""

    id: str
    name: str
    email: str
    username: str


@strawberry.type(name="PagerDutySchedule_v1")
class PagerDutySchedule:
    """A schedule and the users on call in it now (deleted users skipped)."""

    id: str
    users: list[PagerDutyUser]


@strawberry.type(name="PagerDutyEscalationPolicy_v1")
class PagerDutyEscalationPolicy:
    """An escalation policy and the users its rules page now."""

    id: str
    users: list[PagerDutyUser]


Fetch = Callable[[PagerDutySource, Sequence[str]], Awaitable[dict[str, Result]]]


@dataclass(frozen=True)
class Loaded:
    """A loader value; errors stay values so one bad id fails only its own list item."""

    result: Result


def _loader(
    info: Info[RequestContext, None], instance: str, kind: str, fetch: Fetch
) -> DataLoader[str, Loaded]:
    """This request's loader for `kind` on `instance`: ids asked anywhere in it, one batch."""
    context = info.context
    source = context.sources.pagerduty_instance(instance)

    async def load(ids: list[str]) -> list[Loaded]:
        results = await fetch(source, ids)
        return [Loaded(results[i]) for i in ids]

    return context.per_request(f"pagerduty/{instance}/{kind}", lambda: DataLoader(load_fn=load))


def _users(info: Info[RequestContext, None], loaded: Loaded) -> list[PagerDutyUser]:
    result = loaded.result
    if isinstance(result, GatewayError):
        raise result
    record(info, result.lookup)
    return [PagerDutyUser(**user) for user in result.value]


async def pagerduty_schedules(
    info: Info[RequestContext, None], instance: str, ids: list[str]
) -> list[PagerDutySchedule | None]:
    """Resolve `pagerduty_schedules_v1`: an unknown id is a null item with a NOT_FOUND error."""
    loader = _loader(info, instance, "schedule_users", PagerDutySource.schedule_users)
    results = await loader.load_many(ids)
    items: list[Any] = []
    for schedule_id, result in zip(ids, results, strict=True):
        try:
            items.append(PagerDutySchedule(id=schedule_id, users=_users(info, result)))
        except GatewayError as error:
            items.append(error)
    return items


async def pagerduty_escalation_policies(
    info: Info[RequestContext, None], instance: str, ids: list[str]
) -> list[PagerDutyEscalationPolicy | None]:
    """Resolve `pagerduty_escalation_policies_v1`."""
    fetch = PagerDutySource.escalation_policy_users
    loader = _loader(info, instance, "escalation_policy_users", fetch)
    results = await loader.load_many(ids)
    items: list[Any] = []
    for policy_id, result in zip(ids, results, strict=True):
        try:
            items.append(PagerDutyEscalationPolicy(id=policy_id, users=_users(info, result)))
        except GatewayError as error:
            items.append(error)
    return items
