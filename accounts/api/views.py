from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.api.serializers import ApiKeySerializer, OrganizationSerializer
from accounts.models import ApiKey
from accounts.selectors import api_key_list
from accounts.services import api_key_revoke


class ApiRootView(OrganizationAPIView):
    """Who is calling, and where the API's parts are."""

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "organization": OrganizationSerializer(),
                "authenticated_as": serializers.CharField(),
                "links": serializers.DictField(child=serializers.URLField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "organization": OrganizationSerializer(self.organization).data,
                "authenticated_as": str(request.user),
                "links": {
                    "keys": reverse("api:key-list", request=request),
                    "schema": reverse("api:schema", request=request),
                    "docs": reverse("api:docs", request=request),
                },
            }
        )


class ApiKeyListView(OrganizationAPIView, ListAPIView):
    """The organization's API keys (never their secrets)."""

    serializer_class = ApiKeySerializer

    def get_queryset(self):
        return api_key_list(organization=self.organization)


class _ApiKeyObjectView(OrganizationAPIView):
    def get_object(self, prefix: str) -> ApiKey:
        """The caller's key with this prefix; another organization's key is simply not found."""
        return found_or_404(api_key_list(organization=self.organization).filter(prefix=prefix).first())


class ApiKeyDetailView(_ApiKeyObjectView):
    """One key of the caller's organization."""

    @extend_schema(responses=ApiKeySerializer)
    def get(self, request: Request, prefix: str) -> Response:
        return Response(ApiKeySerializer(self.get_object(prefix)).data)


class ApiKeyRevokeView(_ApiKeyObjectView):
    """Revoke a key of the caller's organization, for rotation; a key may revoke itself."""

    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request: Request, prefix: str) -> Response:
        return Response(ApiKeySerializer(api_key_revoke(api_key=self.get_object(prefix))).data)
