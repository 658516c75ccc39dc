"""Campaigns in the admin: which consent purposes the camera needs and which are optional extras, what is derived
from faces, whether visitors can see its consent page yet (an active campaign must be ready), a link to that page
and a preview of it that records nothing."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin_base import TenantAdmin, TenantModelForm
from campaigns.models import Campaign
from campaigns.selectors import CampaignReadiness, campaign_readiness, campaign_readiness_for
from campaigns.views import consent_page_preview
from consent import derived
from consent.forms import attribute_choices_initial, derived_attribute_field, derived_attributes_label
from consent.models import Purpose, purpose_labels


def _purpose_labels(purposes: list[str]) -> str:
    return ", ".join(purpose_labels(purposes)) or "—"


class CampaignForm(TenantModelForm):
    """Required and optional purposes and the derived attributes as checkboxes, stored as canonical sets; refuses
    to make a campaign active while visitors could not see its consent page (naming what is missing)."""

    model_field_aliases = {
        "required_purposes": "purpose_choices",
        "optional_purposes": "optional_purpose_choices",
        "derived_attributes": "attribute_choices",
    }

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
        self.fields["attribute_choices"].initial = attribute_choices_initial(
            self.instance.derived_attribute_set if self.instance.pk else None
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        self.instance.required_purposes = ",".join(sorted(cleaned.get("purpose_choices") or []))
        self.instance.optional_purposes = ",".join(sorted(cleaned.get("optional_purpose_choices") or []))
        self.instance.derived_attributes = derived.canonical(cleaned.get("attribute_choices") or [])
        self._refuse_activation_unless_ready(cleaned)
        return cleaned

    def _refuse_activation_unless_ready(self, cleaned: dict) -> None:
        if cleaned.get("status") != Campaign.Status.RUNNING or "purpose_choices" not in cleaned:
            return
        organization = (
            cleaned.get("organization")
            # A member's new campaign has the member's organization already (TenantModelForm).
            or (self.instance.organization if self.instance.organization_id else None)
        )
        # clean() has put the chosen purposes and attributes on the instance already.
        readiness = campaign_readiness_for(
            organization=organization,
            purposes=self.instance.purpose_list,
            derived_attributes=self.instance.derived_attribute_set,
        )
        if not readiness.ready:
            self.add_error(
                "status",
                "Visitors could not see this campaign's consent page, so it cannot be active yet. Missing: "
                + " ".join(readiness.missing),
            )


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    """Campaigns of the marketer's organization; saving one without a published notice for exactly its
    purposes and derived attributes warns that its consent page is not offered until there is one."""

    form = CampaignForm
    list_display = [
        "name", "status", "required_purposes", "optional_purposes", "derived_display", "readiness_column",
        "consent_page",
    ]
    list_filter = ["status"]
    search_fields = ["name", "public_id"]

    def get_fields(self, request, obj=None):
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        tail = ["readiness", "consent_page", "preview"] if obj else []
        if self.has_change_permission(request, obj):
            choices = ["purpose_choices", "optional_purpose_choices", "attribute_choices"]
        else:  # a view-only member gets no form to tick: the stored choices are shown as text instead
            choices = ["purposes_display", "optional_purposes_display", "derived_display"]
        return [*head, "name", "status", *choices, *tail]

    def get_readonly_fields(self, request, obj=None):
        return [
            *super().get_readonly_fields(request, obj), "readiness", "consent_page", "preview", "purposes_display",
            "optional_purposes_display", "derived_display",
        ]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        campaign = self.get_object(request, unquote(object_id)) if request.method == "GET" else None
        if campaign is not None and campaign.status == Campaign.Status.RUNNING:
            readiness = campaign_readiness(campaign=campaign)
            if not readiness.ready:
                self.message_user(
                    request,
                    "This campaign is active, but visitors see “This campaign is not available right now”. "
                    "Missing: " + " ".join(readiness.missing),
                    messages.WARNING,
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The campaign's consent page as visitors would see it, recording nothing; for members who may view the
        campaign (the same 404 for another organization's campaign as for a missing one)."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])  # a preview records nothing, so it takes no form
        campaign = self.get_object(request, unquote(object_id))  # scoped to the member's organization
        if campaign is None:
            raise Http404
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        return consent_page_preview(request, campaign=campaign, readiness=campaign_readiness(campaign=campaign))

    @admin.display(description="Visitors can see it")
    def readiness_column(self, obj: Campaign) -> str:
        readiness = campaign_readiness(campaign=obj)
        if readiness.ready:
            return "Ready" + (f" ({len(readiness.warnings)} warning(s))" if readiness.warnings else "")
        return "Not ready: " + " ".join(readiness.missing)

    @admin.display(description="Readiness")
    def readiness(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        readiness: CampaignReadiness = campaign_readiness(campaign=obj)
        head = "Ready: visitors can see the consent page." if readiness.ready else "Not ready. Missing:"
        items = [*readiness.missing, *(f"Warning: {w}" for w in readiness.warnings)]
        return format_html(
            "<p>{}</p><ul>{}</ul>", head, format_html_join("", "<li>{}</li>", ((item,) for item in items))
        )

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        readiness = campaign_readiness(campaign=obj)
        if not readiness.ready:  # a draft may be saved unready; say what its consent page still lacks
            self.message_user(
                request,
                "Visitors cannot see this campaign's consent page yet, and no camera starts. Missing: "
                + " ".join(readiness.missing),
                messages.WARNING,
            )

    @admin.display(description="Derived from faces")
    def derived_display(self, obj: Campaign) -> str:
        return derived_attributes_label(obj.derived_attribute_set)

    @admin.display(description="Consent purposes the camera needs")
    def purposes_display(self, obj: Campaign) -> str:
        return _purpose_labels(obj.required_purpose_list)

    @admin.display(description="Optional extra purposes")
    def optional_purposes_display(self, obj: Campaign) -> str:
        return _purpose_labels(obj.optional_purpose_list)

    @admin.display(description="Consent page")
    def consent_page(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("campaigns:consent-page", kwargs={"public_id": obj.public_id})
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.display(description="Preview")
    def preview(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:campaigns_campaign_preview", args=[obj.pk])
        return format_html(
            '<a href="{}" id="campaign-preview-link">Preview the consent page (records nothing)</a>', url
        )
