"""Campaigns in the admin: which consent purposes the camera needs and which are optional extras, what is derived
from faces, whether visitors can see its consent page yet (a running or scheduled campaign must be ready), its
schedule, goal and setting of use, its variants and rules (with the condition editor), a preview of the consent
page and of "what would this visitor get", all recording nothing; and the decision log and events, read-only."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.admin_base import TenantAdmin, TenantModelForm, scope_to_organization
from accounts.selectors import organization_for_user
from campaigns import conditions, content
from campaigns.admin_reports import report_urls
from campaigns.models import Campaign, Decision, Event, Rule, Variant
from campaigns.preview import PreviewForm, preview_run
from campaigns.selectors import (
    CampaignReadiness,
    campaign_emotion_rule_names,
    campaign_list,
    campaign_readiness,
    campaign_readiness_for,
)
from campaigns.services import origin_normalise
from campaigns.views import consent_page_preview
from consent import derived
from consent.admin import ReadOnlyEvidenceAdmin  # the decision log and events are evidence too
from consent.forms import attribute_choices_initial, derived_attribute_field, derived_attributes_label
from consent.models import Purpose, purpose_labels
from segments.widgets import ConditionEditorWidget

ART_5_1_F = (
    "Emotion recognition is forbidden in a workplace or education setting (EU AI Act Art. 5(1)(f)): expression "
    "conditions (face.expression.*, face.top_expression, face.smile_share) cannot be saved or evaluated there."
)
READY_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED)


def _purpose_labels(purposes: list[str]) -> str:
    return ", ".join(purpose_labels(purposes)) or "—"


class CampaignForm(TenantModelForm):
    """Required and optional purposes and the derived attributes as checkboxes, stored as canonical sets; refuses
    to make a campaign running or scheduled while visitors could not see its consent page (naming what is
    missing), a schedule that does not add up, and a workplace or education setting while rules of the campaign
    use emotion recognition (naming them)."""

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
        fields = [
            "organization", "name", "status", "goal", "setting_of_use", "starts_at", "ends_at", "allowed_origins",
            "decision_ttl_seconds",
        ]
        help_texts = {
            "setting_of_use": "Where the campaign is used. At work and in education emotion recognition is "
            "forbidden (EU AI Act Art. 5(1)(f)): rules there cannot use expression conditions (face.expression.*, "
            "face.top_expression, face.smile_share), and such a rule saved before is skipped, never evaluated.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["purpose_choices"].initial = self.instance.required_purpose_list
            self.fields["optional_purpose_choices"].initial = self.instance.optional_purpose_list
        self.fields["attribute_choices"].initial = attribute_choices_initial(
            self.instance.derived_attribute_set if self.instance.pk else None
        )

    def clean_allowed_origins(self) -> str:
        """One origin a line, as a browser sends it (scheme://host[:port], lower case), or the line is named."""
        origins: list[str] = []
        for line in (self.cleaned_data.get("allowed_origins") or "").splitlines():
            if not line.strip():
                continue
            origin = origin_normalise(line)
            if origin is None:
                raise ValidationError(
                    f"“{line.strip()[:100]}” is not an origin: write scheme://host[:port] (https://shop.example), "
                    "http or https, without a path."
                )
            if origin not in origins:
                origins.append(origin)
        return "\n".join(origins)

    def clean(self) -> dict:
        cleaned = super().clean()
        self.instance.required_purposes = ",".join(sorted(cleaned.get("purpose_choices") or []))
        self.instance.optional_purposes = ",".join(sorted(cleaned.get("optional_purpose_choices") or []))
        self.instance.derived_attributes = derived.canonical(cleaned.get("attribute_choices") or [])
        self._refuse_a_schedule_that_does_not_add_up(cleaned)
        self._refuse_activation_unless_ready(cleaned)
        self._refuse_forbidden_setting_over_expression_rules(cleaned)
        return cleaned

    def _refuse_a_schedule_that_does_not_add_up(self, cleaned: dict) -> None:
        starts_at, ends_at = cleaned.get("starts_at"), cleaned.get("ends_at")
        if cleaned.get("status") == Campaign.Status.SCHEDULED and starts_at is None and "starts_at" in self.fields:
            self.add_error("starts_at", "A scheduled campaign needs a start: beat starts it running then.")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            self.add_error("ends_at", "The end must come after the start.")

    def _refuse_forbidden_setting_over_expression_rules(self, cleaned: dict) -> None:
        if not self.instance.pk or not Campaign.setting_forbids_emotion_recognition(cleaned.get("setting_of_use")):
            return
        named = campaign_emotion_rule_names(campaign=self.instance)
        if named:
            self.add_error(
                "setting_of_use",
                f"{ART_5_1_F} Change or delete these rules first: " + ", ".join(f"“{name}”" for name in named) + ".",
            )

    def _refuse_activation_unless_ready(self, cleaned: dict) -> None:
        if cleaned.get("status") not in READY_STATUSES or "purpose_choices" not in cleaned:
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
                "Visitors could not see this campaign's consent page, so it cannot be running or scheduled yet. "
                "Missing: "
                + " ".join(readiness.missing),
            )


class TenantInlineMixin:
    """Inline rows of the member's organization only (operators see all), and foreign-key choices likewise."""

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return scope_to_organization(queryset, organization_for_user(request.user))


class VariantInlineForm(forms.ModelForm):
    """A variant's content; its HTML is kept only as sanitised, and its payload is bounded."""

    class Meta:
        model = Variant
        fields = ["key", "name", "is_default", "headline", "body", "image_url", "cta_text", "cta_url", "payload",
                  "html"]

    def clean_html(self) -> str:
        return content.html_sanitize(self.cleaned_data.get("html") or "")

    def clean_payload(self) -> Any:
        payload = self.cleaned_data.get("payload")
        if payload is not None and content.payload_too_large(payload):
            raise ValidationError("The payload is larger than 16 KB.")
        return {} if payload is None else payload


class VariantFormSet(BaseInlineFormSet):
    """Exactly one of a campaign's variants is its default."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        defaults = [f.cleaned_data.get("key") for f in kept if f.cleaned_data.get("is_default")]
        if kept and len(defaults) != 1:
            raise ValidationError(
                "Exactly one variant must be the default (the one shown when no rule matches); "
                + (f"{len(defaults)} are ticked: {', '.join(defaults)}." if defaults else "none is ticked.")
            )


class VariantInline(TenantInlineMixin, admin.StackedInline):
    """A campaign's content variants."""

    model = Variant
    form = VariantInlineForm
    formset = VariantFormSet
    extra = 0
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = VariantInlineForm.Meta.fields


class RuleInlineForm(forms.ModelForm):
    """A rule: its variant is one of the campaign's, its condition tree is validated on the server (errors name
    the node's path) with the campaign's setting of use as submitted."""

    class Meta:
        model = Rule
        fields = ["name", "priority", "enabled", "variant", "condition"]
        widgets = {"condition": ConditionEditorWidget()}

    def __init__(self, *args: Any, campaign: Campaign | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        forbidden = campaign is not None and campaign.emotion_recognition_forbidden
        if "condition" in self.fields:
            self.fields["condition"].widget.attrs["data-emotion-forbidden"] = "true" if forbidden else "false"
            self.fields["condition"].help_text = (
                "Rows of field, operator and value, grouped by all / any / not; “Edit JSON” shows the tree as "
                "JSON. Checked when saved." + (f" {ART_5_1_F}" if forbidden else "")
            )
        if "variant" in self.fields:
            variants = Variant.objects.none()
            if campaign is not None and campaign.pk and campaign.organization_id:
                variants = Variant.objects.for_organization(campaign.organization).filter(campaign=campaign)
            self.fields["variant"].queryset = variants
            self.fields["variant"].help_text = "One of this campaign's variants (save a new variant first)."

    def clean_condition(self) -> Any:
        tree = self.cleaned_data.get("condition")
        forbidden = self.campaign is not None and self.campaign.emotion_recognition_forbidden
        if self.campaign is None:
            try:
                return conditions.condition_validate(tree, path="condition")
            except conditions.ConditionError as error:
                raise ValidationError(f"{error.path}: {error.message}") from error
        try:
            tree = content.condition_check(campaign=self.campaign, tree=tree, emotion_recognition_forbidden=False)
        except conditions.ConditionError as error:
            raise ValidationError(f"{error.path}: {error.message}") from error
        if forbidden:
            try:
                content.condition_check(campaign=self.campaign, tree=tree, emotion_recognition_forbidden=True)
            except conditions.ConditionError as error:
                raise ValidationError(f"{error.path}: {ART_5_1_F}") from error
        return tree


class RuleFormSet(BaseInlineFormSet):
    """Hands each rule form its campaign as submitted (its setting of use decides what may be saved)."""

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "campaign": self.instance}


class RuleInline(TenantInlineMixin, admin.StackedInline):
    """A campaign's personalization rules, tried by ascending priority."""

    model = Rule
    form = RuleInlineForm
    formset = RuleFormSet
    extra = 0
    fields = RuleInlineForm.Meta.fields
    classes = ["visage-rules"]


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    """Campaigns of the marketer's organization; saving one without a published notice for exactly its
    purposes and derived attributes warns that its consent page is not offered until there is one."""

    form = CampaignForm
    inlines = [VariantInline, RuleInline]
    change_form_template = "campaigns/admin/campaign_change_form.html"
    list_display = [
        "name", "status", "required_purposes", "optional_purposes", "derived_display", "readiness_column",
        "consent_page",
    ]
    list_filter = ["status"]
    search_fields = ["name", "public_id"]

    def get_fields(self, request, obj=None):
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        tail = ["readiness", "consent_page", "preview", "personalization_preview"] if obj else []
        if self.has_change_permission(request, obj):
            choices = ["purpose_choices", "optional_purpose_choices", "attribute_choices"]
        else:  # a view-only member gets no form to tick: the stored choices are shown as text instead
            choices = ["purposes_display", "optional_purposes_display", "derived_display"]
        return [
            *head, "name", "status", "goal", "setting_of_use", "starts_at", "ends_at", *choices, "allowed_origins",
            "decision_ttl_seconds", *tail,
        ]

    def get_readonly_fields(self, request, obj=None):
        return [
            *super().get_readonly_fields(request, obj), "readiness", "consent_page", "preview", "purposes_display",
            "optional_purposes_display", "derived_display", "personalization_preview",
        ]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
            path(
                "<path:object_id>/personalization-preview/",
                self.admin_site.admin_view(self.personalization_preview_view),
                name="campaigns_campaign_personalization_preview",
            ),
            *report_urls(self),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        campaign = self.get_object(request, unquote(object_id)) if request.method == "GET" else None
        if campaign is not None and campaign.status == Campaign.Status.RUNNING:
            readiness = campaign_readiness(campaign=campaign)
            if not readiness.ready:
                self.message_user(
                    request,
                    "This campaign is running, but visitors see “This campaign is not available right now”. "
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

    def personalization_preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """"What would this visitor get?": a subject or typed signals and request attributes, each rule's outcome
        in order and the variant chosen; records nothing. For members who may view the campaign (the same 404 for
        another organization's campaign as for a missing one)."""
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = self.get_object(request, unquote(object_id))  # scoped to the member's organization
        if campaign is None:
            raise Http404
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        form = PreviewForm(request.POST if request.method == "POST" else None, campaign=campaign)
        result = preview_run(form=form) if form.is_bound and form.is_valid() else None
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": campaign,
            "title": "What would this visitor get?", "subtitle": campaign.name, "form": form, "result": result,
        }
        return TemplateResponse(request, "campaigns/admin/personalization_preview.html", context)

    def render_change_form(self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None):
        # The condition editor's vocabulary, once per page (json_script in the change form template).
        forbidden = obj is not None and obj.emotion_recognition_forbidden
        context.update({
            "condition_fields": conditions.condition_fields(), "emotion_forbidden_reason": ART_5_1_F,
            "emotion_forbidden": forbidden,
        })
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        campaign: Campaign = form.instance
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        # The old default is unticked before the new one is saved: at most one default at any moment.
        for obj in sorted(instances, key=lambda o: bool(getattr(o, "is_default", False))):
            obj.organization_id = campaign.organization_id
            if isinstance(obj, Rule):
                obj.updated_at = timezone.now()
            obj.save()
        formset.save_m2m()

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

    @admin.display(description="Personalization")
    def personalization_preview(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:campaigns_campaign_personalization_preview", args=[obj.pk])
        return format_html(
            '<a href="{}" id="personalization-preview-link">What would this visitor get? (records nothing)</a>', url
        )


class CampaignOfOrganizationFilter(admin.SimpleListFilter):
    """Campaigns to filter by: the member's organization's only (a related-field filter would list every
    organization's campaign names)."""

    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[int, str]]:
        campaigns = (
            Campaign.objects.all() if request.user.is_superuser
            else campaign_list(organization=organization_for_user(request.user))
        )
        return [(c.pk, c.name) for c in campaigns.order_by("name")]

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if not value:
            return queryset
        # ASCII digits only: int() refuses other Unicode digits ("²"), which isdigit() accepts.
        return queryset.filter(campaign_id=int(value)) if value.isascii() and value.isdigit() else queryset.none()


@admin.register(Decision)
class DecisionAdmin(ReadOnlyEvidenceAdmin):
    """Which variant each visitor got and why (the rule, or sticky, or default; rules skipped and why)."""

    list_display = ["public_id", "campaign", "variant", "reason", "rule", "channel", "created_at"]
    list_filter = [CampaignOfOrganizationFilter, "reason", "channel"]
    list_select_related = ["campaign", "variant", "rule"]
    search_fields = ["visitor_id"]
    date_hierarchy = "created_at"
    fields = ["public_id", "campaign", "visitor_id", "subject", "variant", "rule", "reason", "channel", "trace",
              "attributes", "created_at"]
    readonly_fields = fields


@admin.register(Event)
class EventAdmin(ReadOnlyEvidenceAdmin):
    """Impressions, clicks, conversions and custom events, attributed to their decision's variant and rule."""

    list_display = ["kind", "name", "value", "currency", "campaign", "variant", "rule", "occurred_at"]
    list_filter = [CampaignOfOrganizationFilter, "kind"]
    list_select_related = ["campaign", "variant", "rule"]
    search_fields = ["name", "client_event_id"]
    fields = ["decision", "campaign", "variant", "rule", "subject", "kind", "name", "value", "currency",
              "client_event_id", "occurred_at", "received_at"]
    readonly_fields = fields


from campaigns import admin_experiments  # noqa: E402, F401  (registers experiments with this admin site)
