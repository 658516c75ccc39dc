"""Base for every tenant API view: the caller's organization, resolved once, never absent."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.selectors import organization_for_request


class OrganizationAPIView(APIView):
    """An APIView whose `organization` is the caller's; views query only through selectors given it."""

    @property
    def organization(self) -> Organization:
        organization = organization_for_request(self.request)
        if organization is None:  # HasOrganization runs first; this only guards a misconfigured view
            raise NotAuthenticated()
        return organization
