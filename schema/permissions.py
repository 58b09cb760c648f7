"""Scope checks for root fields: `extensions=[PermissionExtension([RequireScope("read")])]`."""

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from gateway.errors import Forbidden
from schema.context import RequestContext


class RequireScope(BasePermission):
    """Lets the field run only for callers holding `scope`; others get FORBIDDEN."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.refusal = f"this operation needs the '{scope}' scope"
        self.message = self.refusal

    def has_permission(self, source: Any, info: Info[RequestContext, Any], **kwargs: Any) -> bool:
        """Raises Unauthenticated (bad token) or Forbidden (missing scope); else True."""
        if not info.context.identity.has_scope(self.scope):
            raise Forbidden(self.refusal)
        return True


def scope(name: str) -> list[Any]:
    """The `extensions=` list for a field that needs scope `name`."""
    from strawberry.permission import PermissionExtension

    return [PermissionExtension(permissions=[RequireScope(name)], use_directives=False)]
