"""Where each upstream-backed value came from, reported in the response's `extensions`."""

from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from gateway.cache import CacheLookup
from schema.context import RequestContext


def record(info: Info[RequestContext, Any], lookup: CacheLookup) -> None:
    """Note `lookup` (source, key, hit/miss/stale, age) for this request's `extensions`."""
    info.context.provenance.append(
        {
            "source": lookup.source,
            "key": lookup.key,
            "outcome": lookup.outcome,
            "age_seconds": round(lookup.age_seconds, 3),
        }
    )


class Provenance(SchemaExtension):
    """Adds `extensions.provenance`: one entry per upstream lookup the operation made."""

    def get_results(self) -> dict[str, Any]:
        """The lookups recorded in the request context, if any."""
        context = self.execution_context.context
        lookups = getattr(context, "provenance", None)
        return {"provenance": lookups} if lookups else {}
