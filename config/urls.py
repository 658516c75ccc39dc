from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health

admin.site.site_header = "Visage"
admin.site.site_title = "Visage admin"
admin.site.index_title = "Campaigns, consent and analysis"
admin.site.empty_value_display = "—"  # an em dash for every empty value, never "None" or a bare hyphen

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include("config.api.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("consent/", include("consent.urls")),
    path("", include("campaigns.capture_urls")),
    path("", include("campaigns.urls")),
]

handler400 = "config.api.errors.bad_request"
handler404 = "config.api.errors.not_found"
handler500 = "config.api.errors.server_error"
