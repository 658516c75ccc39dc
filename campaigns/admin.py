"""Campaigns in the admin: which consent purposes each needs, and a link to its public consent page."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import TenantAdmin, TenantModelForm
from campaigns.models import Campaign
from consent.models import Purpose


class CampaignForm(TenantModelForm):
    """Required purposes as checkboxes, stored as the canonical set."""

    model_field_aliases = {"required_purposes": "purpose_choices"}

    purpose_choices = forms.MultipleChoiceField(
        label="Required consent purposes", choices=Purpose.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Campaign
        fields = ["organization", "name", "status"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["purpose_choices"].initial = self.instance.purpose_list if self.instance.pk else []

    def clean(self) -> dict:
        cleaned = super().clean()
        self.instance.required_purposes = ",".join(sorted(cleaned.get("purpose_choices") or []))
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    form = CampaignForm
    list_display = ["name", "status", "required_purposes", "consent_page"]
    list_filter = ["status"]
    search_fields = ["name", "public_id"]

    def get_fields(self, request, obj=None):
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        # A view-only member gets no form to tick: the stored purposes are shown as text instead.
        purposes = "purpose_choices" if self.has_change_permission(request, obj) else "purposes_display"
        return [*head, "name", "status", purposes, *(["consent_page"] if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "consent_page", "purposes_display"]

    @admin.display(description="Required consent purposes")
    def purposes_display(self, obj: Campaign) -> str:
        return ", ".join(str(Purpose(p).label) if p in Purpose.values else p for p in obj.purpose_list)

    @admin.display(description="Consent page")
    def consent_page(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("campaigns:consent-page", kwargs={"public_id": obj.public_id})
        return format_html('<a href="{}">{}</a>', url, url)
