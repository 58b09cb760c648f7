"""What every upstream source shares: its account, API client, the cache and per-type TTLs."""

from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

from gateway.cache import Cache, CacheKey

Api = TypeVar("Api")


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
