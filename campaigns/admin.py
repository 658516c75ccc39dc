"""Campaigns in the admin: which consent purposes the camera needs and which are optional extras, what is derived
from faces, and a link to its public consent page."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import TenantAdmin
from campaigns.models import Campaign
from consent import derived
from consent.forms import derived_attribute_field, derived_attributes_label
from consent.models import Purpose
from consent.selectors import notice_languages_published


class CampaignForm(forms.ModelForm):
    """Required and optional purposes and the derived attributes as checkboxes, stored as canonical sets."""

    purpose_choices = forms.MultipleChoiceField(
        label="Consent purposes the camera needs", choices=Purpose.choices, widget=forms.CheckboxSelectMultiple,
        help_text="A visitor must consent to every one of these (and to face analysis) before the camera starts.",
    )
    optional_purpose_choices = forms.MultipleChoiceField(
        label="Optional extra purposes", choices=Purpose.choices, widget=forms.CheckboxSelectMultiple,
        required=False, help_text="Offered on the consent page too; the camera works without them.",
    )
    attribute_choices = derived_attribute_field()

    class Meta:
        model = Campaign
        fields = ["organization", "name", "status"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["purpose_choices"].initial = self.instance.required_purpose_list
            self.fields["optional_purpose_choices"].initial = self.instance.optional_purpose_list
            self.fields["attribute_choices"].initial = sorted(
                self.instance.derived_attribute_set & set(derived.OPTIONAL_KEYS)
            )
        else:
            self.fields["attribute_choices"].initial = list(derived.OPTIONAL_KEYS)

    def clean(self) -> dict:
        cleaned = super().clean()
        self.instance.required_purposes = ",".join(sorted(cleaned.get("purpose_choices") or []))
        self.instance.optional_purposes = ",".join(sorted(cleaned.get("optional_purpose_choices") or []))
        self.instance.derived_attributes = derived.canonical(cleaned.get("attribute_choices") or [])
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    """Campaigns of the marketer's organization; saving one without a published notice for exactly its
    purposes and derived attributes warns that its consent page is not offered until there is one."""

    form = CampaignForm
    list_display = ["name", "status", "required_purposes", "optional_purposes", "derived_display", "consent_page"]
    list_filter = ["status"]
    search_fields = ["name", "public_id"]

    def get_fields(self, request, obj=None):
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        return [*head, "name", "status", "purpose_choices", "optional_purpose_choices", "attribute_choices",
                *(["consent_page"] if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "consent_page"]

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not notice_languages_published(
            organization=obj.organization, purposes=obj.purpose_list, derived_attributes=obj.derived_attribute_set
        ):
            self.message_user(
                request,
                "No published notice covers exactly this campaign's purposes and what it derives "
                f"({derived_attributes_label(obj.derived_attribute_set)}), so its consent page is not offered and "
                "no camera starts. Publish a notice version for this choice (Consent > Notice versions).",
                messages.WARNING,
            )

    @admin.display(description="Derived from faces")
    def derived_display(self, obj: Campaign) -> str:
        return derived_attributes_label(obj.derived_attribute_set)

    @admin.display(description="Consent page")
    def consent_page(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("campaigns:consent-page", kwargs={"public_id": obj.public_id})
        return format_html('<a href="{}">{}</a>', url, url)
