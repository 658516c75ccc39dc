"""Consent in the admin: notices are edited as drafts and published by an explicit action; grants, subjects
and the ledger are evidence and read-only; the ledger view verifies the chain and counts the funnel."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_base import TenantAdmin, TenantModelForm
from accounts.models import Organization
from accounts.selectors import organization_for_user
from consent import derived, retention
from consent.forms import attribute_choices_initial, derived_attribute_field, derived_attributes_label
from consent.guards import GrantState, grant_state, grant_state_expression
from consent.ledger import ledger_verify
from consent.models import (
    DataRequest,
    Grant,
    LedgerEntry,
    NoticeVersion,
    PurgePart,
    PurgeRequest,
    Purpose,
    RetentionPolicy,
    Subject,
    purpose_labels,
)
from consent.purging import purge_parts_dispatch
from consent.selectors import consent_funnel, notice_list_published, subject_get
from consent.services import (
    RETENTION_PERIOD_FIELDS,
    ConsentError,
    consent_grant,
    notice_draft_copy,
    notice_preview_text,
    notice_publish,
    notice_retire,
    retention_periods_capped,
    retention_policy_set,
)


def purposes_text(key: str) -> str:
    """A canonical purpose set ("face_analysis,personalization") with a space after each comma, so a list's
    cell can wrap it instead of running past the table's edge."""
    return ", ".join(p for p in key.split(",") if p)


def _organizations(request: HttpRequest) -> list[Organization]:
    """Operators see every organization; members their own; nobody else any."""
    if request.user.is_superuser:
        return list(Organization.objects.order_by("name"))
    organization = organization_for_user(request.user)
    return [organization] if organization else []


class ReadOnlyEvidenceAdmin(TenantAdmin):
    """Evidence is looked at, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _period_help(category: retention.Category) -> str:
    """A category's unit and caps, for the admin's help text."""
    caps = {retention.category_cap(category, code) for code, _ in retention.Jurisdiction.CHOICES}
    capped = "; ".join(f"at most {cap.value} ({cap.name})" for cap in sorted(caps, key=lambda c: -c.value))
    kind = "biometric" if category.biometric else "not biometric"
    return (f"In {category.unit}, at least {category.minimum}; {capped}. {kind.capitalize()}. A value above the "
            "cap of the jurisdiction is saved capped, with a warning. Empty: unchanged.")


class RetentionPolicyForm(TenantModelForm):
    """Every category's period with its unit and caps; a value above a cap is saved capped (the service warns),
    so the fields take any whole number from the category's minimum up."""

    class Meta:
        model = RetentionPolicy
        fields = ["organization", "jurisdiction",
                  *(category.field for category in retention.CATEGORIES), "grant_validity_days"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the fields this user may edit are on the form (a read-only member's has none).
        for category in retention.CATEGORIES:
            if category.field in self.fields:
                self.fields[category.field] = forms.IntegerField(
                    label=str(category.label), min_value=category.minimum, required=False,
                    initial=self.instance.period(category), help_text=_period_help(category),
                )
        for name in ("grant_validity_days", "jurisdiction"):
            if name in self.fields:
                self.fields[name].required = False
        self.asked_periods: dict[str, int | None] = {}

    def clean(self) -> dict:
        cleaned = super().clean()
        self.asked_periods = {field: cleaned.get(field) for field in RETENTION_PERIOD_FIELDS}
        if cleaned.get("grant_validity_days") is None:
            cleaned["grant_validity_days"] = self.instance.grant_validity_days
        current = {category.field: self.instance.period(category) for category in retention.CATEGORIES}
        jurisdiction = cleaned["jurisdiction"] = cleaned.get("jurisdiction") or self.instance.jurisdiction
        try:
            saved, _ = retention_periods_capped(asked=self.asked_periods, current=current, jurisdiction=jurisdiction)
        except ConsentError as error:
            raise forms.ValidationError(str(error)) from None
        cleaned.update(saved)  # what the model validates is what the service saves
        return cleaned


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(TenantAdmin):
    form = RetentionPolicyForm
    list_display = ["jurisdiction", "frame_bytes_seconds", "feature_retention_days", "grant_validity_days",
                    "updated_at", "public_page"]

    @admin.display(description="Public schedule")
    def public_page(self, obj: RetentionPolicy) -> str:
        url = reverse("consent:retention", kwargs={"org_slug": obj.organization.slug})
        return format_html('<a href="{}">{}</a>', url, url)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: RetentionPolicy, form, change: bool) -> None:
        if not change and not request.user.is_superuser:
            obj.organization = self._organization(request)
        saved = retention_policy_set(
            organization=obj.organization, jurisdiction=form.cleaned_data.get("jurisdiction") or None,
            **form.asked_periods,
        )
        obj.pk = saved.policy.pk
        obj.refresh_from_db()
        for warning in saved.warnings:
            messages.warning(request, str(warning))
        published = notice_list_published(organization=obj.organization)
        stale = [notice for notice in published if notice.retention_snapshot != obj.snapshot()]
        if stale:
            self.message_user(
                request,
                f"{len(stale)} published notice(s) still state the previous schedule, and grants under them "
                "follow it. Publish new versions (action 'New draft from selected versions', then publish).",
                messages.WARNING,
            )


class NoticeForm(TenantModelForm):
    """Purposes as checkboxes on a new draft; stored as the canonical comma-separated set."""

    model_field_aliases = {"purposes": "purpose_choices"}

    purpose_choices = forms.MultipleChoiceField(
        label="Purposes", choices=Purpose.choices, widget=forms.CheckboxSelectMultiple
    )
    attribute_choices = derived_attribute_field()

    class Meta:
        model = NoticeVersion
        fields = [
            "organization",
            "language",
            "controller_name",
            "controller_contact",
            "recipients",
            "introduction",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # the purpose set and language define a version line; fixed after creation
            del self.fields["purpose_choices"]
        self.fields["attribute_choices"].initial = attribute_choices_initial(
            self.instance.derived_attribute_set if self.instance.pk else None
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        if "purpose_choices" in self.fields:
            self.instance.purposes = ",".join(sorted(cleaned.get("purpose_choices") or []))
        self.instance.derived_attributes = derived.canonical(cleaned.get("attribute_choices") or [])
        return cleaned


NOTICE_CONTENT_FIELDS = ["controller_name", "controller_contact", "recipients", "introduction"]
NOTICE_STATE_FIELDS = ["status", "version", "text_hash", "published_at", "retired_at", "text_preview"]


@admin.register(NoticeVersion)
class NoticeVersionAdmin(TenantAdmin):
    """Drafts are edited here; publishing and retiring are explicit actions; published text is read-only."""

    form = NoticeForm
    list_display = ["purposes_list", "language", "version", "status", "published_at", "short_hash"]
    list_filter = ["status", "language"]
    actions = ["publish_selected", "retire_selected", "new_draft_from_selected"]

    @admin.display(description="Hash")
    def short_hash(self, obj: NoticeVersion) -> str:
        return obj.text_hash[:12]

    @admin.display(description="Purposes", ordering="purposes")
    def purposes_list(self, obj: NoticeVersion) -> str:
        return purposes_text(obj.purposes)

    @admin.display(description="Purposes")
    def purposes_display(self, obj: NoticeVersion) -> str:
        return ", ".join(purpose_labels(obj.purpose_list))

    @admin.display(description="Derived from faces")
    def derived_attributes_display(self, obj: NoticeVersion) -> str:
        return derived_attributes_label(obj.derived_attribute_set)

    @admin.display(description="Text (as published, or as it would be published now)")
    def text_preview(self, obj: NoticeVersion) -> str:
        if obj is None or obj.pk is None:
            return "Save the draft to see its text."
        text = obj.text or notice_preview_text(notice=obj)
        return format_html('<pre style="white-space: pre-wrap; max-width: 60rem">{}</pre>', text)

    def get_fields(self, request: HttpRequest, obj: NoticeVersion | None = None):
        if obj is None:
            head = ["organization"] if request.user.is_superuser else []
            return [*head, "language", "purpose_choices", *NOTICE_CONTENT_FIELDS, "attribute_choices"]
        attributes = "attribute_choices" if obj.status == NoticeVersion.Status.DRAFT else "derived_attributes_display"
        return ["organization", "language", "purposes_display", *NOTICE_CONTENT_FIELDS, attributes,
                *NOTICE_STATE_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: NoticeVersion | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return fields
        fields += ["language", "purposes_display", "derived_attributes_display", *NOTICE_STATE_FIELDS]
        if obj.status != NoticeVersion.Status.DRAFT:
            fields += NOTICE_CONTENT_FIELDS
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: NoticeVersion | None = None) -> bool:
        if obj is not None and obj.status != NoticeVersion.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # published versions are evidence; drafts are deleted one by one
        return actions

    def save_model(self, request: HttpRequest, obj: NoticeVersion, form, change: bool) -> None:
        if change and obj.status != NoticeVersion.Status.DRAFT:
            return  # nothing is editable; the model would refuse anyway
        if not change:
            if not request.user.is_superuser:
                obj.organization = organization_for_user(request.user)
            last = (
                NoticeVersion.objects.filter(
                    organization=obj.organization, language=obj.language, purposes=obj.purposes
                )
                .order_by("-version")
                .values_list("version", flat=True)
                .first()
            )
            obj.version = (last or 0) + 1
        obj.save()

    @admin.action(description="Publish selected drafts (freezes the text and its hash)", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[NoticeVersion]) -> None:
        for notice in queryset:
            try:
                published = notice_publish(notice=notice)
            except ConsentError as error:
                self.message_user(request, f"{notice}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"Published {published} — hash {published.text_hash}", messages.SUCCESS)

    @admin.action(
        description="Retire selected versions (their grants stop covering processing)", permissions=["change"]
    )
    def retire_selected(self, request: HttpRequest, queryset: QuerySet[NoticeVersion]) -> None:
        for notice in queryset:
            try:
                notice_retire(notice=notice)
            except ConsentError as error:
                self.message_user(request, f"{notice}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"Retired {notice}.", messages.WARNING)

    @admin.action(description="New draft from selected versions", permissions=["add"])
    def new_draft_from_selected(self, request: HttpRequest, queryset: QuerySet[NoticeVersion]) -> None:
        for notice in queryset:
            draft = notice_draft_copy(notice=notice)
            self.message_user(request, f"Created draft {draft}.", messages.SUCCESS)


class GrantStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        shown = [s for s in GrantState if s not in (GrantState.NONE, GrantState.UNKNOWN_SUBJECT)]
        return [(s.value, s.value.replace("_", " ").capitalize()) for s in shown]

    def queryset(self, request, queryset):
        """The grants that show this state in the column (consent.guards.grant_state_expression)."""
        value = self.value()
        if value not in {s.value for s in GrantState}:
            return queryset
        return queryset.alias(_state=grant_state_expression()).filter(_state=value)


class PaperConsentForm(forms.Form):
    """Consent given on paper, typed in by a member who holds the signed form."""

    subject_id = forms.UUIDField(label="Subject id", help_text="The subject's public id.")
    notice = forms.ModelChoiceField(queryset=NoticeVersion.objects.none(), help_text="The version printed on the form.")
    purposes = forms.MultipleChoiceField(choices=Purpose.choices, widget=forms.CheckboxSelectMultiple)
    paper_reference = forms.CharField(max_length=100, help_text="Where the signed paper is filed (no scans here).")


@admin.register(Grant)
class GrantAdmin(ReadOnlyEvidenceAdmin):
    list_display = [
        "subject",
        "purpose",
        "state_display",
        "language",
        "channel",
        "granted_at",
        "expires_at",
        "ended_at",
    ]
    list_filter = ["purpose", GrantStateFilter, "channel", "language"]
    search_fields = ["subject__public_id", "notice_hash", "context_ref"]
    change_list_template = "consent/admin/grant_change_list.html"
    list_select_related = ["subject", "organization", "notice"]

    @admin.display(description="State")
    def state_display(self, obj: Grant) -> str:
        return grant_state(obj)

    def get_urls(self):
        return [
            path("paper/", self.admin_site.admin_view(self.paper_view), name="consent_grant_paper"),
            *super().get_urls(),
        ]

    def paper_view(self, request: HttpRequest) -> HttpResponse:
        """Record a consent given on paper (channel admin_paper); the reference says where the paper is."""
        organizations = _organizations(request)
        if len(organizations) != 1 or not request.user.has_perm("consent.add_grant"):
            raise PermissionDenied
        organization = organizations[0]
        form = PaperConsentForm(request.POST or None)
        form.fields["notice"].queryset = notice_list_published(organization=organization)
        if request.method == "POST" and form.is_valid():
            subject = subject_get(organization=organization, public_id=form.cleaned_data["subject_id"])
            if subject is None:
                form.add_error("subject_id", "No such subject in your organization.")
            else:
                try:
                    consent_grant(
                        organization=organization,
                        subject=subject,
                        notice=form.cleaned_data["notice"],
                        purposes=form.cleaned_data["purposes"],
                        channel="admin_paper",
                        evidence={
                            "paper_reference": form.cleaned_data["paper_reference"],
                            "recorded_by": request.user.pk,
                        },
                    )
                except ConsentError as error:
                    form.add_error(None, str(error))
                else:
                    self.message_user(request, "Paper consent recorded.", messages.SUCCESS)
                    return redirect("admin:consent_grant_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Record consent given on paper",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "consent/admin/paper_consent.html", context)


@admin.register(Subject)
class SubjectAdmin(ReadOnlyEvidenceAdmin):
    list_display = ["public_id", "created_at", "erased_at", "has_partner_ref"]
    search_fields = ["public_id"]
    list_filter = ["erased_at"]
    exclude = ["partner_ref_hash", "access_token_hash"]

    @admin.display(boolean=True, description="Partner user")
    def has_partner_ref(self, obj: Subject) -> bool:
        return bool(obj.partner_ref_hash)


class LedgerPurposeFilter(admin.SimpleListFilter):
    title = "purpose"
    parameter_name = "purpose"

    def lookups(self, request, model_admin):
        return Purpose.choices

    def queryset(self, request, queryset):
        # Purpose values are not substrings of each other, so `contains` on the canonical set is exact.
        return queryset.filter(purposes__contains=self.value()) if self.value() else queryset


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyEvidenceAdmin):
    list_display = ["sequence", "event", "occurred_at", "purposes_list", "context_ref", "short_notice", "channel"]
    list_filter = ["event", LedgerPurposeFilter, "channel", "language"]
    search_fields = ["subject_ref", "context_ref", "notice_hash", "hash"]
    change_list_template = "consent/admin/ledger_change_list.html"

    @admin.display(description="Notice")
    def short_notice(self, obj: LedgerEntry) -> str:
        return obj.notice_hash[:12]

    @admin.display(description="Purposes", ordering="purposes")
    def purposes_list(self, obj: LedgerEntry) -> str:
        return purposes_text(obj.purposes)

    def get_urls(self):
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="consent_ledgerentry_verify"),
            path("funnel/", self.admin_site.admin_view(self.funnel_view), name="consent_ledgerentry_funnel"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str) -> dict:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta}

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Walk each visible organization's chain and show the first broken link, if any."""
        context = self._context(request, "Verify the consent ledger")
        context["results"] = [(org, ledger_verify(organization=org)) for org in _organizations(request)]
        return TemplateResponse(request, "consent/admin/ledger_verify.html", context)

    def funnel_view(self, request: HttpRequest) -> HttpResponse:
        """Shown, granted, refused and withdrawn per campaign (context) and notice version."""
        context = self._context(request, "Consent funnel")
        context["funnels"] = [(org, consent_funnel(organization=org)) for org in _organizations(request)]
        return TemplateResponse(request, "consent/admin/funnel.html", context)


class PurgePartInline(admin.TabularInline):
    model = PurgePart
    extra = 0
    can_delete = False
    fields = ["purger", "status", "attempts", "last_error", "dispatched_at", "done_at", "counts_text", "receipt_link"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Counts")
    def counts_text(self, obj: PurgePart) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in obj.counts.items()) or "—"

    @admin.display(description="Receipt")
    def receipt_link(self, obj: PurgePart) -> str:
        if obj.receipt_sequence is None:
            return "—"
        entry = LedgerEntry.objects.filter(organization_id=obj.organization_id, sequence=obj.receipt_sequence).first()
        if entry is None:
            return f"#{obj.receipt_sequence}"
        url = reverse("admin:consent_ledgerentry_change", args=[entry.pk])
        return format_html('<a href="{}">Ledger #{}</a>', url, obj.receipt_sequence)


@admin.register(PurgeRequest)
class PurgeRequestAdmin(ReadOnlyEvidenceAdmin):
    """What withdrawals, erasures and retention runs owe, part by part: owed parts are sent again by beat, or at
    once with the action below."""

    list_display = ["created_at", "reason", "subject_ref", "purposes_list", "parts_state", "completed_at"]
    list_filter = ["reason", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject_ref", "public_id"]
    fields = ["public_id", "reason", "subject_ref", "purposes", "before", "created_at", "completed_at"]
    readonly_fields = fields
    inlines = [PurgePartInline]
    actions = ["run_owed_parts"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("parts")

    @admin.display(description="Purposes", ordering="purposes")
    def purposes_list(self, obj: PurgeRequest) -> str:
        return purposes_text(obj.purposes)

    @admin.display(description="Parts")
    def parts_state(self, obj: PurgeRequest) -> str:
        parts = list(obj.parts.all())
        owed = [part.purger for part in parts if part.status == PurgePart.Status.OWED]
        done = len(parts) - len(owed)
        return f"{done} of {len(parts)} done" + (f"; owed: {', '.join(owed)}" if owed else "")

    @admin.action(description="Run the owed parts of the selected requests now")
    def run_owed_parts(self, request: HttpRequest, queryset: QuerySet[PurgeRequest]) -> None:
        owed = list(
            PurgePart.objects.filter(request__in=queryset, status=PurgePart.Status.OWED).values_list("pk", flat=True)
        )
        purge_parts_dispatch(part_ids=owed)
        self.message_user(request, f"Sent {len(owed)} owed part(s).", messages.SUCCESS)


@admin.register(DataRequest)
class DataRequestAdmin(ReadOnlyEvidenceAdmin):
    """Data subject requests (access, export, erasure) with their state and due date, one calendar month after
    receipt (GDPR Art. 12(3)); an erasure links the purge request whose parts say what is done."""

    list_display = ["received_at", "kind", "state", "subject_ref", "requested_by", "channel", "due", "completed_at"]
    list_filter = ["kind", "state", "channel"]
    search_fields = ["subject_ref", "public_id"]
    fields = ["public_id", "kind", "state", "subject_ref", "requested_by", "channel", "received_at", "due_at",
              "started_at", "completed_at", "purge_request", "detail"]
    readonly_fields = fields

    @admin.display(description="Due", ordering="due_at")
    def due(self, obj: DataRequest) -> str:
        overdue = obj.state != DataRequest.State.DONE and obj.due_at < timezone.now()
        return f"{obj.due_at:%Y-%m-%d}" + (" (overdue)" if overdue else "")
