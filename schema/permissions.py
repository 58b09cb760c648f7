"""Scope checks for root fields: `extensions=[PermissionExtension([RequireScope("read")])]`."""

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from gateway.errors import Forbidden
from schema.context import RequestContext


class RequireScope(BasePermission):
    """Lets the field run only for callers holding one of `scopes`; others get FORBIDDEN."""

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes
        self.refusal = (
            "this operation needs the " + " or ".join(f"'{s}'" for s in scopes) + (" scope")
        )
        self.message = self.refusal

    def has_permission(self, source: Any, info: Info[RequestContext, Any], **kwargs: Any) -> bool:
        """Raises Unauthenticated (bad token) or Forbidden (missing scope); else True."""
        identity = info.context.identity
        if not any(identity.has_scope(name) for name in self.scopes):
            raise Forbidden(self.refusal)
        return True


def scope(*names: str) -> list[Any]:
    """The `extensions=` list for a field that needs any one of the scopes `names`."""
    from strawberry.permission import PermissionExtension

    return [PermissionExtension(permissions=[RequireScope(*names)], use_directives=False)]
