"""Experiments in the admin: an experiment of a campaign with its arms (variants and weights), started and stopped
by actions. Every save goes through campaigns.experiments, whose refusals appear at the field or arm they are
about; a change to a running experiment that would start a new phase is refused until the marketer ticks
"Start a new phase", so the warning comes before it happens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import TenantAdmin, TenantModelForm, scope_to_organization
from accounts.selectors import organization_for_user
from campaigns.content import ContentError
from campaigns.experiments import (
    experiment_check,
    experiment_create,
    experiment_start,
    experiment_stop,
    experiment_update,
)
from campaigns.models import Campaign, Experiment, ExperimentArm, Variant

FIELDS = ["campaign", "key", "name", "hypothesis", "kind", "coverage", "holdout", "seed", "custom_events_text",
          "sequential", "bandit_cadence_seconds", "bandit_top_two", "bandit_burn_in_per_arm", "start_new_phase"]
NEW_PHASE_WARNING = (
    "This experiment is running: changing its arms, weights, coverage or holdout starts a new phase, and the "
    "results page keeps phases apart (as GrowthBook and Optimizely do). Tick “Start a new phase” to confirm."
)


class ExperimentForm(TenantModelForm):
    custom_events_text = forms.CharField(
        required=False, label="Custom events",
        help_text="Names of custom events to analyse as metrics, comma-separated (signup, video_50).",
    )
    start_new_phase = forms.BooleanField(
        required=False, label="Start a new phase",
        help_text="Needed to change the arms, weights, coverage or holdout of a running experiment.",
    )

    class Meta:
        model = Experiment
        fields = [f for f in FIELDS if f not in ("custom_events_text", "start_new_phase")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["custom_events_text"].initial = ", ".join(self.instance.custom_events)
        if "campaign" in self.fields:
            organization = getattr(self, "tenant_organization", None) or (
                self.instance.organization if self.instance.organization_id else None
            )
            if organization is not None:
                self.fields["campaign"].queryset = Campaign.objects.filter(organization=organization)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        campaign = cleaned.get("campaign")
        if campaign is not None and self.instance.pk is None:
            self.instance.organization_id = campaign.organization_id  # the experiment is its campaign's
        return cleaned

    def clean_custom_events_text(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data.get("custom_events_text", "").split(",") if name.strip()]


class ArmFormSet(BaseInlineFormSet):
    """Checks the whole experiment through the service, which sees the form's fields (on the instance) and these
    arms together; its refusal is shown at the arm or field it names."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        experiment = self.instance
        if not experiment.campaign_id:
            return
        data = experiment_data(experiment, self)
        try:
            changes = experiment_check(
                campaign=experiment.campaign, experiment=experiment if experiment.pk else None, data=data
            )
        except ContentError as error:
            raise ValidationError(f"{error.path}: {error.message}" if error.path else error.message) from None
        if changes and not getattr(experiment, "_start_new_phase", False):
            raise ValidationError(f"{NEW_PHASE_WARNING} (Changed: {', '.join(changes)}.)")
        experiment._checked_data = data


class ArmForm(forms.ModelForm):
    """An arm's variant and weight; the weight may be left empty for a bandit (it sets its own), and an A/B test's
    missing weight is the service's refusal, shown at the arm."""

    weight = forms.FloatField(required=False, min_value=0, max_value=1,
                              help_text="A/B tests: the weights sum to 1. Bandits: leave empty.")

    class Meta:
        model = ExperimentArm
        fields = ["variant", "weight"]

    def clean_weight(self) -> float:
        self.weight_given = self.cleaned_data.get("weight")
        return 0.0 if self.weight_given is None else self.weight_given  # the row is written by the service


class ArmInline(admin.TabularInline):
    model = ExperimentArm
    form = ArmForm
    formset = ArmFormSet
    fields = ["variant", "weight"]
    extra = 2
    verbose_name = "arm"
    verbose_name_plural = "arms (the first is the control; a bandit sets its own weights)"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).filter(retired=False).order_by("position")

    def get_extra(self, request: HttpRequest, obj: Experiment | None = None, **kwargs: Any) -> int:
        return 0 if obj is not None else 2  # a new experiment starts with two empty arms

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "variant":
            variants = Variant.objects.select_related("campaign").order_by("campaign__name", "key")
            if not request.user.is_superuser:
                variants = scope_to_organization(variants, organization_for_user(request.user))
            object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            if object_id and str(object_id).isascii() and str(object_id).isdigit():  # int() refuses "²"
                campaign_id = Experiment.objects.filter(pk=int(object_id)).values_list("campaign_id", flat=True)
                variants = variants.filter(campaign_id__in=list(campaign_id))
            kwargs["queryset"] = variants
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "variant":
            field.label_from_instance = lambda v: f"{v.campaign.name}: {v.name} ({v.key})"
        return field


def experiment_data(experiment: Experiment, arms: ArmFormSet) -> dict[str, Any]:
    """The service's body from the admin's form (its values on `experiment`) and arm rows."""
    rows = [
        {**form.cleaned_data, "weight": getattr(form, "weight_given", form.cleaned_data.get("weight"))}
        for form in arms.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("variant")
    ]
    data: dict[str, Any] = {
        "key": experiment.key, "name": experiment.name, "hypothesis": experiment.hypothesis, "kind": experiment.kind,
        "coverage": experiment.coverage, "holdout": experiment.holdout, "seed": experiment.seed,
        "custom_events": list(experiment.custom_events), "sequential": experiment.sequential,
        "bandit_cadence_seconds": experiment.bandit_cadence_seconds, "bandit_top_two": experiment.bandit_top_two,
        "bandit_burn_in_per_arm": experiment.bandit_burn_in_per_arm,
        "arms": [
            {"variant": row["variant"].key,
             **({"weight": row.get("weight")} if experiment.kind == Experiment.Kind.AB else {})}
            for row in rows
        ],
    }
    return data


@admin.register(Experiment)
class ExperimentAdmin(TenantAdmin):
    form = ExperimentForm
    inlines = [ArmInline]
    list_display = ["name", "key", "campaign", "kind", "status", "phase", "report"]
    list_filter = ["kind", "status"]
    list_select_related = ["campaign"]
    actions = ["start", "stop"]
    fieldsets = [
        (None, {"fields": ["campaign", "key", "name", "hypothesis", "kind"]}),
        ("Traffic", {"fields": ["coverage", "holdout", "seed", "start_new_phase"]}),
        ("Metrics and statistics", {"fields": ["custom_events_text", "sequential"]}),
        ("Bandit", {"fields": ["bandit_cadence_seconds", "bandit_top_two", "bandit_burn_in_per_arm"],
                    "classes": ["collapse"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Experiment | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("campaign")
            if obj.status == Experiment.Status.RUNNING:
                fields += ["seed", "kind"]
        return fields

    def get_form(self, request: HttpRequest, obj: Experiment | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "campaign" in form.base_fields and not request.user.is_superuser:
            form.base_fields["campaign"].queryset = Campaign.objects.filter(
                organization=organization_for_user(request.user)
            )
        return form

    def save_form(self, request: HttpRequest, form: ExperimentForm, change: bool) -> Experiment:
        experiment = super().save_form(request, form, change)
        experiment.custom_events = form.cleaned_data.get("custom_events_text", [])
        experiment._start_new_phase = form.cleaned_data.get("start_new_phase", False)
        if not change and experiment.campaign_id:
            experiment.organization_id = experiment.campaign.organization_id
        return experiment

    def save_model(self, request: HttpRequest, obj: Experiment, form, change: bool) -> None:
        """Nothing yet: the service writes the experiment and its arms together in save_related."""

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        experiment = form.instance
        data = getattr(experiment, "_checked_data", None)
        if data is None:  # no arm formset ran (cannot happen through the change form)
            return
        if change:
            saved = experiment_update(experiment=Experiment.objects.get(pk=experiment.pk), data=data,
                                      start_new_phase=getattr(experiment, "_start_new_phase", False))
        else:
            saved = experiment_create(campaign=experiment.campaign, data=data)
        experiment.pk = saved.pk
        experiment.status = saved.status
        for formset in formsets:  # the change message reads what a formset saved; the service saved the arms
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.display(description="phase")
    def phase(self, experiment: Experiment) -> str:
        phase = experiment.phases.order_by("-number").first()
        return "—" if phase is None else f"{phase.number}" + ("" if phase.ended_at else " (open)")

    @admin.display(description="results")
    def report(self, experiment: Experiment) -> str:
        url = reverse("admin:campaigns_campaign_report", args=[experiment.campaign_id])
        return format_html('<a href="{}?experiment={}">Report</a>', url, experiment.key)

    @admin.action(description="Start the selected experiments", permissions=["change"])
    def start(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, experiment_start, "started")

    @admin.action(description="Stop the selected experiments", permissions=["change"])
    def stop(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, experiment_stop, "stopped")

    def _each(self, request: HttpRequest, queryset, service, done: str) -> None:
        for experiment in queryset:
            try:
                service(experiment=experiment)
            except ContentError as error:
                self.message_user(request, f"{experiment.name}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{experiment.name}: {done}.", messages.SUCCESS)
