"""What every upstream source shares: its account, API client, the cache and per-type TTLs."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from gateway.cache import Cache, CacheKey
from gateway.errors import BadUserInput, GatewayError, shown

Api = TypeVar("Api")


@dataclass(frozen=True)
class IdSyntax:
    """What an identifier of one kind looks like upstream (`what`, explained by `hint`).

    Sources check caller-supplied ids against it before any cache or upstream work, so a
    malformed id costs nothing and fails alone, with BAD_USER_INPUT naming it.
    """

    what: str
    pattern: re.Pattern[str]
    max_length: int
    hint: str

    def problem(self, ident: str) -> BadUserInput | None:
        """Why `ident` is not a valid identifier, or None when it is."""
        if len(ident) <= self.max_length and self.pattern.fullmatch(ident):
            return None
        return BadUserInput(
            f"{shown(ident)} is not a {self.what}: {self.hint}, "
            f"at most {self.max_length} characters"
        )

    def check(self, ident: str) -> str:
        """`ident`, or BAD_USER_INPUT when it is malformed."""
        problem = self.problem(ident)
        if problem is not None:
            raise problem
        return ident

    def split(self, idents: Iterable[str]) -> tuple[list[str], dict[str, GatewayError]]:
        """The valid identifiers (in order, once each) and an error for each malformed one."""
        valid: list[str] = []
        errors: dict[str, GatewayError] = {}
        for ident in dict.fromkeys(idents):
            problem = self.problem(ident)
            if problem is None:
                valid.append(ident)
            else:
                errors[ident] = problem
        return valid, errors


class AccountSource(Generic[Api]):
    """One upstream account's cached data; subclasses name `system` and `default_ttl`."""

    system: ClassVar[str]
    default_ttl: ClassVar[Mapping[str, float]]

    def __init__(
        self, account: str, api: Api, cache: Cache, ttl: Mapping[str, float] | None = None
    ) -> None:
        self.account = account
        self.api = api
        self.cache = cache
        self.ttl = {**self.default_ttl, **(ttl or {})}

    def key(self, data_type: str, ident: str) -> CacheKey:
        """The cache key of `ident` of `data_type` in this account."""
        return CacheKey(self.system, self.account, data_type, ident)
