"""The campaigns API (campaigns, variants, rules), the capture-session endpoints that open a session in a
campaign, decisions and events (the partner's server with a key, the snippet under public/ without one), and
the capture session the snippet opens, included under /api/v1/ in the `api` namespace."""

from django.urls import path

from campaigns.api import content_views, decisions, experiments, public, views

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
    path(
        "campaigns/<str:public_id>/experiments/", experiments.ExperimentListView.as_view(),
        name="campaign-experiment-list",
    ),
    path(
        "campaigns/<str:public_id>/experiments/<slug:key>/", experiments.ExperimentDetailView.as_view(),
        name="campaign-experiment-detail",
    ),
    path(
        "campaigns/<str:public_id>/experiments/<slug:key>/start/", experiments.ExperimentStartView.as_view(),
        name="campaign-experiment-start",
    ),
    path(
        "campaigns/<str:public_id>/experiments/<slug:key>/stop/", experiments.ExperimentStopView.as_view(),
        name="campaign-experiment-stop",
    ),
    path("campaigns/<str:public_id>/results/", experiments.CampaignResultsView.as_view(), name="campaign-results"),
    path(
        "public/capture-sessions/", public.PublicCaptureSessionOpenView.as_view(), name="public-capture-session-open"
    ),
    path("decisions/", decisions.DecisionCreateView.as_view(), name="decision-create"),
    path("events/", decisions.EventView.as_view(), name="events"),
    path("public/decisions/", decisions.PublicDecisionCreateView.as_view(), name="public-decision-create"),
    path("public/events/", decisions.PublicEventCreateView.as_view(), name="public-event-create"),
]
