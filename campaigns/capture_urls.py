"""The end user's capture page, next to the campaign's consent page (/c/<public_id>/)."""

from django.urls import path

from campaigns import capture_pages

app_name = "capture"

urlpatterns = [
    path("c/<str:public_id>/capture/", capture_pages.capture_page, name="capture-page"),
    path("c/<str:public_id>/capture/session/", capture_pages.capture_session_open, name="capture-session-open"),
    path("c/<str:public_id>/capture/consent/", capture_pages.capture_consent_state, name="capture-consent-state"),
]
