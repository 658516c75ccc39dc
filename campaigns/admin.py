"""Campaigns in the admin: which consent purposes each needs, whether visitors can see its consent page yet (an
active campaign must be ready), a link to that page and a preview of it that records nothing."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin_base import TenantAdmin
from accounts.models import Organization
from campaigns.models import Campaign
from campaigns.selectors import CampaignReadiness, campaign_readiness, campaign_readiness_for
from campaigns.views import consent_page_preview
from consent.models import Purpose


class CampaignForm(forms.ModelForm):
    """Required purposes as checkboxes, stored as the canonical set; refuses to make a campaign active while
    visitors could not see its consent page (naming what is missing)."""

    # The organization a member's new campaign will get (the admin sets it on save); None for operators.
    member_organization: Organization | None = None

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
        self._refuse_activation_unless_ready(cleaned)
        return cleaned

    def _refuse_activation_unless_ready(self, cleaned: dict) -> None:
        if cleaned.get("status") != Campaign.Status.ACTIVE or "purpose_choices" not in cleaned:
            return
        organization = (
            cleaned.get("organization")
            or (self.instance.organization if self.instance.organization_id else None)
            or self.member_organization
        )
        readiness = campaign_readiness_for(organization=organization, purposes=cleaned["purpose_choices"])
        if not readiness.ready:
            self.add_error(
                "status",
                "Visitors could not see this campaign's consent page, so it cannot be active yet. Missing: "
                + " ".join(readiness.missing),
            )


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    form = CampaignForm
    list_display = ["name", "status", "required_purposes", "readiness_column", "consent_page"]
    list_filter = ["status"]
    search_fields = ["name", "public_id"]

    def get_form(self, request: HttpRequest, obj: Campaign | None = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.member_organization = None if request.user.is_superuser else self._organization(request)
        return form

    def get_fields(self, request, obj=None):
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        tail = ["readiness", "consent_page", "preview"] if obj else []
        return [*head, "name", "status", "purpose_choices", *tail]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "readiness", "consent_page", "preview"]

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
        if campaign is not None and campaign.status == Campaign.Status.ACTIVE:
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
