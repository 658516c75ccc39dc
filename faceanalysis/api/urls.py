"""Face-analysis endpoints, included under /api/v1/ in the `api` namespace (opening a session needs a campaign:
`campaigns/api/urls.py`)."""

from django.urls import path

from faceanalysis.api import views

urlpatterns = [
    path("capture-sessions/<uuid:session_id>/", views.CaptureSessionDetailView.as_view(),
         name="capture-session-detail"),
    path("capture-sessions/<uuid:session_id>/end/", views.CaptureSessionEndView.as_view(), name="capture-session-end"),
    path("capture-sessions/<uuid:session_id>/frames/", views.FrameIntakeView.as_view(), name="capture-session-frames"),
    path("capture-sessions/<uuid:session_id>/video/", views.VideoIntakeView.as_view(), name="capture-session-video"),
    path("capture-sessions/<uuid:session_id>/timeline/", views.CaptureSessionTimelineView.as_view(),
         name="capture-session-timeline"),
    path("analysis/stats/", views.PipelineStatsView.as_view(), name="analysis-stats"),
]
