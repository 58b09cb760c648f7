"""Cached, rate-limited PagerDuty data: on-call users of schedules and escalation policies."""

import asyncio
import datetime as dt
from collections.abc import Sequence

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from gateway.cache import (
    Cached,
    CacheKey,
    CacheLookup,
    Derived,
    get_or_derive_many,
    get_or_fetch_many,
)
from gateway.errors import GatewayError, NotFound
from gateway.source import AccountSource
from resolvers.pagerduty.api import POLICY_ID, SCHEDULE_ID, PagerDutyApi, PagerDutyUser

SYSTEM = "pagerduty"
DEFAULT_TTL = {"schedule_users": 300.0, "escalation_policy_users": 600.0, "user": 43_200.0}


class UserRecord(TypedDict):
    """What is cached and served of a user."""

    id: str
    name: str
    email: str
    username: str


USERS = TypeAdapter(list[UserRecord])
Result = Cached[list[UserRecord]] | GatewayError


def user_record(user: PagerDutyUser) -> UserRecord:
    """The cached record of `user`."""
    return UserRecord(id=user.id, name=user.name, email=user.email, username=user.username)


class PagerDutySource(AccountSource[PagerDutyApi]):
    """One PagerDuty account's on-call data through the shared cache and rate budget."""

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    @staticmethod
    def clock() -> dt.datetime:
        """Now, in UTC: the start of the on-call window."""
        return dt.datetime.now(dt.UTC)

    async def schedule_users(self, ids: Sequence[str]) -> dict[str, Result]:
        """On-call users (deleted ones skipped) per schedule id; a malformed id is its own
        BAD_USER_INPUT."""

        async def fetch(key: CacheKey) -> list[UserRecord]:
            users = await self.api.schedule_oncall_users(key.ident, self.clock())
            return [user_record(u) for u in users if u.deleted_at is None]

        valid, errors = SCHEDULE_ID.split(ids)
        keys = [self.key("schedule_users", i) for i in valid]
        ttl = self.ttl["schedule_users"]
        found = await get_or_fetch_many(self.cache, keys, fetch, ttl, USERS)
        results: dict[str, Result] = dict(errors)
        results.update((key.ident, found[key]) for key in keys)
        return results

    async def escalation_policy_users(self, ids: Sequence[str]) -> dict[str, Result]:
        """Users per escalation policy, by its rules (see `_policy_users`); a malformed id is
        its own BAD_USER_INPUT."""

        async def build(key: CacheKey) -> Derived[list[UserRecord]]:
            return await self._policy_users(key.ident)

        valid, errors = POLICY_ID.split(ids)
        keys = [self.key("escalation_policy_users", i) for i in valid]
        ttl = self.ttl["escalation_policy_users"]
        found = await get_or_derive_many(self.cache, keys, build, ttl, USERS)
        results: dict[str, Result] = dict(errors)
        results.update((key.ident, found[key]) for key in keys)
        return results

    async def _policy_users(self, policy_id: str) -> Derived[list[UserRecord]]:
        """Walk the rules in order; stop after the first rule with users unless its delay is 0.

        The users come from cached schedules and users, so the result is `Derived` from them:
        as old as the oldest, and stale (served, never stored) when any of them was.
        """
        users: dict[str, UserRecord] = {}
        inputs: list[CacheLookup] = []
        for rule in await self.api.escalation_rules(policy_id):
            schedule_ids = [t.id for t in rule.targets if t.kind == "schedule"]
            user_ids = [t.id for t in rule.targets if t.kind == "user"]
            by_schedule, direct = await asyncio.gather(
                self.schedule_users(schedule_ids), self._users(user_ids)
            )
            found = 0
            for result in [*by_schedule.values(), *direct]:
                if isinstance(result, GatewayError):
                    raise result
                inputs.append(result.lookup)
                for user in result.value:
                    users.setdefault(user["id"], user)
                    found += 1
            if found and rule.escalation_delay_in_minutes != 0:
                break
        return Derived(list(users.values()), tuple(inputs))

    async def _users(self, ids: Sequence[str]) -> list[Result]:
        """Users by id, cached for long; deleted ones are empty lists, whether PagerDuty still
        shows them (`deleted_at`) or answers 404 (off-boarded users that rules still target,
        which PagerDuty's own on-call list skips)."""

        async def fetch(key: CacheKey) -> list[UserRecord]:
            try:
                user = await self.api.user(key.ident)
            except NotFound:
                return []
            return [] if user.deleted_at else [user_record(user)]

        keys = [self.key("user", i) for i in ids]
        found = await get_or_fetch_many(self.cache, keys, fetch, self.ttl["user"], USERS)
        return [found[key] for key in keys]
