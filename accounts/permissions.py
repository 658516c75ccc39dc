from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import permissions
from rest_framework.request import Request

from accounts.models import ApiKey
from accounts.selectors import organization_for_request

if TYPE_CHECKING:
    from rest_framework.views import APIView


class HasOrganization(permissions.BasePermission):
    """The caller belongs to an organization; an API key also needs the scope the view names (`required_scope`)
    or, by default, the one the method asks for."""

    message = "Authentication with an API key or a member's session is required."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if organization_for_request(request) is None:
            self.message = "This account belongs to no organization."
            return False
        if isinstance(request.auth, ApiKey):
            # A view may name its own scope (decisions: `decide`); else reads need read and writes need write.
            needed = getattr(view, "required_scope", None) or (
                ApiKey.Scope.READ if request.method in permissions.SAFE_METHODS else ApiKey.Scope.WRITE
            )
            if not request.auth.has_scope(needed):
                self.message = f"This API key lacks the '{needed}' scope."
                return False
        return True


class IsApiKey(permissions.BasePermission):
    """The caller is one of the organization's partner keys (not a member's session): an audience leaves Visage
    only to the organization's own keys, each export recorded against the key that took it."""

    message = "Only an API key of the organization, with the 'export' scope, may take an audience out."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey)
