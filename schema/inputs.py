"""Bounds on what one root field may ask for, checked before its resolver does any work."""

from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types import Info

from gateway.errors import BadUserInput
from gateway.settings import QueryLimits
from gateway.upstream import FetchSlots
from schema.context import RequestContext
from schema.permissions import RequireScope

_ITEMS = "lookup_items"
_FETCH_BOUND = "upstream_fetch_bound"


class BoundedInputs(FieldExtension):
    """Refuses a caller without the field's scope (`required`, FORBIDDEN), then a field whose
    arguments exceed `limits.*` with BAD_USER_INPUT naming the limit.

    Lists are bounded in length (each, and all of a request's together), strings in characters
    (`jql` and `path` by their own limits, a `path` also in directories), in time linear in the
    input. The field's upstream requests then count against the request's fetch bound.
    One extension does both, so a lookup field pays for one extension layer, not two.
    """

    def __init__(self, required: RequireScope) -> None:
        super().__init__()
        self.required = required

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: Info[RequestContext, Any], **kwargs: Any
    ) -> Any:
        """Check, then resolve."""
        self.required.has_permission(source, info)
        self._admit(info, kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[RequestContext, Any],
        **kwargs: Any,
    ) -> Any:
        """Check, then resolve."""
        self.required.has_permission(source, info)
        self._admit(info, kwargs)
        return await next_(source, info, **kwargs)

    def _admit(self, info: Info[RequestContext, Any], arguments: dict[str, Any]) -> None:
        context = info.context
        limits = context.runtime.settings.limits
        items = 0
        for name, value in arguments.items():
            if isinstance(value, list):
                items += len(value)
                where = f"`{name}` of {info.field_name}"
                _at_most(where, "items", len(value), limits.max_list_items, "max_list_items")
                for item in value:
                    if isinstance(item, str):
                        _string(f"an item of {where}", name, item, limits)
            elif isinstance(value, str):
                _string(f"`{name}` of {info.field_name}", name, value, limits)
        counted: list[int] = context.per_request(_ITEMS, lambda: [0])
        counted[0] += items
        _at_most(
            "this request's lookup lists",
            "items",
            counted[0],
            limits.max_request_items,
            "max_request_items",
        )
        slots: FetchSlots = context.runtime.fetch_slots
        FetchSlots.enter_request(context.per_request(_FETCH_BOUND, slots.request_bound))


def check_items(
    where: str, count: int, limits: QueryLimits, *, whole_request: bool = False
) -> None:
    """BAD_USER_INPUT naming the limit when `where` holds more items than one list may
    (`limits.max_list_items`), or, with `whole_request`, than one request may in all."""
    if whole_request:
        _at_most(where, "items", count, limits.max_request_items, "max_request_items")
    else:
        _at_most(where, "items", count, limits.max_list_items, "max_list_items")


def _string(where: str, name: str, value: str, limits: QueryLimits) -> None:
    if name == "jql":
        _at_most(where, "characters", len(value), limits.max_jql_length, "max_jql_length")
    elif name == "path":
        _at_most(where, "characters", len(value), limits.max_path_length, "max_path_length")
        directories = sum(1 for part in value.split("/") if part)
        _at_most(where, "directories", directories, limits.max_path_segments, "max_path_segments")
    else:
        _at_most(where, "characters", len(value), limits.max_string_length, "max_string_length")


def _at_most(where: str, unit: str, count: int, limit: int, setting: str) -> None:
    if count > limit:
        raise BadUserInput(
            f"{where} holds {count} {unit}; the limit is {limit} (limits.{setting})",
            limit=f"limits.{setting}",
        )


def bounded(*scopes: str) -> list[Any]:
    """The `extensions=` of a lookup field: one of `scopes` required, inputs bounded."""
    return [BoundedInputs(RequireScope(*scopes))]
