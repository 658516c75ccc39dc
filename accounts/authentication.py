"""API-key authentication: `Authorization: Bearer vsg_<prefix>_<secret>` (or `X-Api-Key`)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiKey
from accounts.services import KEY_PREFIX, api_key_touch
from accounts.tokens import token_hash


class PartnerPrincipal:
    """`request.user` for a call made with an API key: authenticated, never staff, no Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Finds the key by its hash; unknown, malformed and revoked keys all answer 401."""

    keyword = "Bearer"

    def _raw_key(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header:
            parts = header.split()
            if not parts:
                raise exceptions.AuthenticationFailed(_("Malformed Authorization header: use 'Bearer <key>'."))
            if parts[0].lower() != self.keyword.lower():
                return None  # another scheme (e.g. Basic); not ours to judge
            if len(parts) != 2:
                raise exceptions.AuthenticationFailed(_("Malformed Authorization header: use 'Bearer <key>'."))
            return parts[1]
        return request.headers.get("X-Api-Key") or None

    def authenticate(self, request: Request) -> tuple[PartnerPrincipal, ApiKey] | None:
        raw_key = self._raw_key(request)
        if raw_key is None:
            return None
        if not raw_key.startswith(f"{KEY_PREFIX}_") or len(raw_key) > 200:
            raise exceptions.AuthenticationFailed(_("Malformed API key."))
        api_key = (
            ApiKey.objects.select_related("organization").filter(key_hash=token_hash(raw_key)).first()
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Unknown API key."))
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        api_key_touch(api_key=api_key)
        return PartnerPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
