"""Base for every tenant API view: the caller's organization, resolved once, never absent; and the one way a view
turns a scoped lookup that found nothing into a 404."""

from typing import TypeVar

from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.selectors import organization_for_request

T = TypeVar("T")


def found_or_404(found: T | None, *, message: str | None = None) -> T:
    """What a selector scoped to the caller found, or the API's 404 in the one error shape (`not_found`, with
    `message` or DRF's "Not found."). A selector answers None alike for "does not exist" and "another
    organization's", so the caller cannot tell them apart."""
    if found is None:
        raise NotFound(message)
    return found


class OrganizationAPIView(APIView):
    """An APIView whose `organization` is the caller's; views query only through selectors given it."""

    @property
    def organization(self) -> Organization:
        organization = organization_for_request(self.request)
        if organization is None:  # HasOrganization runs first; this only guards a misconfigured view
            raise NotAuthenticated()
        return organization
