from django.http import HttpRequest

from accounts.models import ApiKey, Organization


def organization_for_user(user) -> Organization | None:
    """The organization of a signed-in user; None for anonymous users and users without membership."""
    if user is None or not user.is_authenticated:
        return None
    membership = getattr(user, "membership", None)
    return membership.organization if membership is not None else None


def organization_for_request(request: HttpRequest) -> Organization | None:
    """The caller's organization, from its API key or its user. None means: no tenant data at all."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth.organization
    return organization_for_user(getattr(request, "user", None))


def api_key_list(*, organization: Organization | None):
    """The organization's keys, newest first."""
    return ApiKey.objects.for_organization(organization)
