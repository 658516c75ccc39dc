"""Partner consent API, included under /api/v1/consent/ in the `api` namespace."""

from django.urls import path

from consent.api import views

urlpatterns = [
    path("notices/", views.NoticeListView.as_view(), name="consent-notice-list"),
    path("subjects/", views.SubjectListView.as_view(), name="consent-subject-list"),
    path("subjects/<uuid:subject_id>/", views.SubjectConsentView.as_view(), name="consent-subject-detail"),
    path("subjects/<uuid:subject_id>/grants/", views.SubjectGrantView.as_view(), name="consent-subject-grant"),
    path("subjects/<uuid:subject_id>/withdraw/", views.SubjectWithdrawView.as_view(), name="consent-subject-withdraw"),
    path("retention/", views.RetentionScheduleView.as_view(), name="consent-retention"),
    path("subjects/<uuid:subject_id>/history/", views.SubjectHistoryView.as_view(), name="consent-subject-history"),
    path(
        "subjects/<uuid:subject_id>/grants/<int:grant_id>/receipt/",
        views.SubjectGrantReceiptView.as_view(),
        name="consent-subject-grant-receipt",
    ),
    path("subjects/<uuid:subject_id>/requests/", views.SubjectRequestListView.as_view(),
         name="consent-subject-requests"),
    path("requests/<uuid:request_id>/", views.DataRequestDetailView.as_view(), name="consent-request-detail"),
    path("requests/<uuid:request_id>/export/", views.DataRequestExportView.as_view(), name="consent-request-export"),
]
