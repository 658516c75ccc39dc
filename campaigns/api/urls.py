"""Capture-session endpoints that open a session in a campaign, included under /api/v1/ in the `api` namespace."""

from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("capture-sessions/", views.CaptureSessionListView.as_view(), name="capture-session-list"),
    path("capture/sessions/", views.EndUserSessionStartView.as_view(), name="capture-session-start"),
]
