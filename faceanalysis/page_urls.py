"""The end user's capture page, next to the campaign's consent page (/c/<public_id>/)."""

from django.urls import path

from faceanalysis import pages

app_name = "capture"

urlpatterns = [
    path("c/<str:public_id>/capture/", pages.capture_page, name="capture-page"),
    path("c/<str:public_id>/capture/session/", pages.capture_session_open, name="capture-session-open"),
    path("c/<str:public_id>/capture/consent/", pages.capture_consent_state, name="capture-consent-state"),
]
