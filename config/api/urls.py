"""Everything under /api/v1/. Apps add their own url modules here."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from accounts.api import views as accounts_views
from campaigns.api.urls import urlpatterns as campaigns_urls
from faceanalysis.api.urls import urlpatterns as faceanalysis_urls
from segments.api.urls import urlpatterns as segments_urls

app_name = "api"

urlpatterns = [
    path("", accounts_views.ApiRootView.as_view(), name="root"),
    path("keys/", accounts_views.ApiKeyListView.as_view(), name="key-list"),
    path("keys/<str:prefix>/", accounts_views.ApiKeyDetailView.as_view(), name="key-detail"),
    path("keys/<str:prefix>/revoke/", accounts_views.ApiKeyRevokeView.as_view(), name="key-revoke"),
    path("consent/", include("consent.api.urls")),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=[AllowAny], authentication_classes=[]),
        name="docs",
    ),
    *campaigns_urls,
    *faceanalysis_urls,
    *segments_urls,
]
