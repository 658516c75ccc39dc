"""Public campaign pages."""

from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("c/<str:public_id>/", views.consent_page, name="consent-page"),
    path("c/<str:public_id>/my-data/", views.visitor_my_data, name="visitor-my-data"),
]
