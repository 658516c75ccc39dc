"""The segments API under /api/v1/segments/, addressed by key, included in the `api` namespace. `preview` and
`fields` come before the keys (and no segment may be keyed so: segments.services.RESERVED_KEYS)."""

from django.urls import path

from segments.api import views

urlpatterns = [
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/preview/", views.SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/fields/", views.SegmentFieldsView.as_view(), name="segment-fields"),
    path("segments/<slug:key>/", views.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<slug:key>/members/", views.SegmentMembersView.as_view(), name="segment-members"),
    path("segments/<slug:key>/history/", views.SegmentHistoryView.as_view(), name="segment-history"),
    path("segments/<slug:key>/export/", views.SegmentExportView.as_view(), name="segment-export"),
    path("segments/<slug:key>/match/", views.SegmentMatchView.as_view(), name="segment-match"),
    path("segments/<slug:key>/upload/", views.SegmentUploadView.as_view(), name="segment-upload"),
    path("segments/<slug:key>/snapshot/", views.SegmentSnapshotView.as_view(), name="segment-snapshot"),
    path("segments/<slug:key>/recompute/", views.SegmentRecomputeView.as_view(), name="segment-recompute"),
]
