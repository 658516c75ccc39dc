"""The campaigns API (campaigns, variants, rules) and the capture-session endpoints that open a session in a
campaign, included under /api/v1/ in the `api` namespace."""

from django.urls import path

from campaigns.api import content_views, views

urlpatterns = [
    path("capture-sessions/", views.CaptureSessionListView.as_view(), name="capture-session-list"),
    path("capture/sessions/", views.EndUserSessionStartView.as_view(), name="capture-session-start"),
    path("campaigns/", content_views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<str:public_id>/", content_views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<str:public_id>/variants/", content_views.VariantListView.as_view(), name="campaign-variant-list"),
    path(
        "campaigns/<str:public_id>/variants/<slug:key>/", content_views.VariantDetailView.as_view(),
        name="campaign-variant-detail",
    ),
    path("campaigns/<str:public_id>/rules/", content_views.RuleListView.as_view(), name="campaign-rule-list"),
    path(
        "campaigns/<str:public_id>/rules/<int:rule_id>/", content_views.RuleDetailView.as_view(),
        name="campaign-rule-detail",
    ),
]
