"""Per-request batching of keyed lookups, with per-item errors and provenance."""

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.cache import Cached
from gateway.errors import GatewayError
from schema.cached_subtrees import cached_item
from schema.context import RequestContext
from schema.provenance import record

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A loader value; errors stay values so one bad key fails only its own list item."""

    result: Cached[T] | GatewayError


def keyed_loader(
    info: Info[RequestContext, Any],
    name: str,
    fetch: Callable[[list[str]], Awaitable[Mapping[str, Cached[T] | GatewayError]]],
) -> DataLoader[str, Loaded[T]]:
    """This request's loader `name`: keys asked anywhere in the request, fetched in one batch."""

    async def load(keys: list[str]) -> list[Loaded[T]]:
        results = await fetch(keys)
        return [Loaded(results[key]) for key in keys]

    return info.context.per_request(name, lambda: DataLoader(load_fn=load))


def unwrap(info: Info[RequestContext, Any], result: "Cached[T] | GatewayError") -> T:
    """The value, its lookup recorded as provenance; raises the item's error instead."""
    if isinstance(result, GatewayError):
        raise result
    record(info, result.lookup)
    return result.value


def items(
    info: Info[RequestContext, Any],
    results: Iterable[tuple[K, "Cached[T] | GatewayError"]],
    make: Callable[[K, T], R],
) -> list[R | None]:
    """One list item per (key, result): `make(key, value)` (its lookup recorded), or the
    item's own error.

    The error stands in the list where the item would be: graphql-core raises it for that
    item alone, so the client sees a null item with its coded error (hence `R | None`).
    An item is made only when the executor has not completed it for this selection before
    (see `schema.cached_subtrees.cached_item`).
    """
    made: list[R | GatewayError] = []
    for key, result in results:
        if isinstance(result, GatewayError):
            made.append(result)
            continue
        record(info, result.lookup)
        made.append(cached_item(result, key, functools.partial(make, key, result.value)))
    return cast(list[R | None], made)
