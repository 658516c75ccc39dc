"""Public consent pages."""

from django.urls import path

from consent import views

app_name = "consent"

urlpatterns = [
    path("o/<slug:org_slug>/retention/", views.retention_schedule, name="retention"),
    path("o/<slug:org_slug>/notices/<str:text_hash>/", views.notice_detail, name="notice"),
    path("my-data/<str:token>/", views.my_data, name="my-data"),
    path("my-data/<str:token>/withdraw/", views.my_data_withdraw, name="my-data-withdraw"),
    path("my-data/<str:token>/rotate/", views.my_data_rotate, name="my-data-rotate"),
    path("my-data/<str:token>/receipts/<int:grant_id>/", views.my_data_receipt, name="my-data-receipt"),
    path("o/<slug:org_slug>/receipts/jwks.json", views.receipt_keys, name="receipt-keys"),
    path("my-data/<str:token>/export/", views.my_data_export, name="my-data-export"),
    path("my-data/<str:token>/erase/", views.my_data_erase, name="my-data-erase"),
]
