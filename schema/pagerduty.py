"""PagerDuty types and root fields: `pagerduty_schedules_v1`, `pagerduty_escalation_policies_v1`."""

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import strawberry
from strawberry.types import Info

from resolvers.pagerduty.source import PagerDutySource, Result, UserRecord
from schema.context import RequestContext
from schema.entities import only_item
from schema.inputs import bounded
from schema.loaders import items, keyed_loader

T = TypeVar("T")


@strawberry.type(name="PagerDutyUser_v1")
class PagerDutyUser:
    """A PagerDuty user; `username` is the local part of the e-mail (the org username)."""

    id: str
    name: str
    email: str
    username: str


@strawberry.federation.type(name="PagerDutySchedule_v1", keys=["instance id"])
class PagerDutySchedule:
    """A schedule and the users on call in it now (deleted users skipped)."""

    instance: str = strawberry.field(description="The PagerDuty instance (account) name")
    id: str
    users: list[PagerDutyUser]

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], instance: str, id: str
    ) -> "PagerDutySchedule":
        """The entity `instance id`, through the request's schedule loader."""
        return only_item(await pagerduty_schedules(info, instance, [id]))


@strawberry.federation.type(name="PagerDutyEscalationPolicy_v1", keys=["instance id"])
class PagerDutyEscalationPolicy:
    """An escalation policy and the users its rules page now."""

    instance: str = strawberry.field(description="The PagerDuty instance (account) name")
    id: str
    users: list[PagerDutyUser]

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], instance: str, id: str
    ) -> "PagerDutyEscalationPolicy":
        """The entity `instance id`, through the request's escalation policy loader."""
        return only_item(await pagerduty_escalation_policies(info, instance, [id]))


async def _on_call(
    info: Info[RequestContext, None],
    instance: str,
    ids: list[str],
    kind: str,
    make: Callable[[str, list[PagerDutyUser]], T],
) -> list[T | None]:
    """One item per id from the request's `kind` loader; an item's error stays its own."""
    source = info.context.sources.get(PagerDutySource, instance)
    fetch: Callable[[list[str]], Awaitable[Mapping[str, Result]]] = getattr(source, kind)
    loader = keyed_loader(info, f"pagerduty/{instance}/{kind}", fetch)
    loaded = [one.result for one in await loader.load_many(ids)]
    return items(info, zip(ids, loaded, strict=True), lambda i, u: make(i, _users(u)))


def _users(records: list[UserRecord]) -> list[PagerDutyUser]:
    return [
        PagerDutyUser(id=u["id"], name=u["name"], email=u["email"], username=u["username"])
        for u in records
    ]


async def pagerduty_schedules(
    info: Info[RequestContext, None], instance: str, ids: list[str]
) -> list[PagerDutySchedule | None]:
    """Resolve `pagerduty_schedules_v1`: an unknown id is a null item with a NOT_FOUND error."""
    return await _on_call(
        info,
        instance,
        ids,
        "schedule_users",
        lambda i, u: PagerDutySchedule(instance=instance, id=i, users=u),
    )


async def pagerduty_escalation_policies(
    info: Info[RequestContext, None], instance: str, ids: list[str]
) -> list[PagerDutyEscalationPolicy | None]:
    """Resolve `pagerduty_escalation_policies_v1`: users its rules page now."""
    return await _on_call(
        info,
        instance,
        ids,
        "escalation_policy_users",
        lambda i, u: PagerDutyEscalationPolicy(instance=instance, id=i, users=u),
    )


@strawberry.type
class PagerDutyQuery:
    """PagerDuty root fields (joined into Query by the system registry)."""

    pagerduty_schedules_v1: list[PagerDutySchedule | None] = strawberry.field(
        resolver=pagerduty_schedules,
        extensions=bounded("read"),
        description="Schedules of PagerDuty `instance` with their on-call users, cached",
    )

    pagerduty_escalation_policies_v1: list[PagerDutyEscalationPolicy | None] = strawberry.field(
        resolver=pagerduty_escalation_policies,
        extensions=bounded("read"),
        description="Escalation policies of PagerDuty `instance` with the users they page now",
    )
