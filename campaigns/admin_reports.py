"""A campaign's report in the admin: its experiment's results per metric (a phase at a time), the sample-ratio
check, the holdout, charts drawn by static/visage/report.js with a table under each, breakdowns, the consent
funnel, and the same data as CSV and JSON. The campaign comes through CampaignAdmin.get_object, so a member sees
only their organization's (another's is the same 404 as a missing one) and an operator sees all.

The numbers are `campaigns.results`'s; this module only picks what to show and arranges it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode

from campaigns.models import Campaign, Experiment, ExperimentPhase
from campaigns.results import campaign_overview, experiment_results
from campaigns.results_export import results_csv
from campaigns.selectors import experiment_current, experiment_get, experiment_list, phase_number_parse

# Metrics whose values are shares of visitors (shown as percentages); the others are amounts (revenue).
AMOUNT_METRICS = ("revenue",)
FUNNEL_STAGES = (("shown", "Notice shown"), ("granted", "Granted"), ("refused", "Refused"),
                 ("withdrawn", "Withdrawn"))


def report_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The report's URLs under the campaign admin's (…/campaign/<pk>/report/), wrapped by the admin site."""
    wrap = model_admin.admin_site.admin_view

    def page(request: HttpRequest, object_id: str) -> HttpResponse:
        return report_view(request, model_admin=model_admin, object_id=object_id)

    def as_csv(request: HttpRequest, object_id: str) -> HttpResponse:
        return report_export_view(request, model_admin=model_admin, object_id=object_id, fmt="csv")

    def as_json(request: HttpRequest, object_id: str) -> HttpResponse:
        return report_export_view(request, model_admin=model_admin, object_id=object_id, fmt="json")

    return [
        path("<path:object_id>/report/", wrap(page), name="campaigns_campaign_report"),
        path("<path:object_id>/report/csv/", wrap(as_csv), name="campaigns_campaign_report_csv"),
        path("<path:object_id>/report/json/", wrap(as_json), name="campaigns_campaign_report_json"),
    ]


@dataclass(frozen=True)
class ReportSelection:
    """What a report shows: the campaign's experiments, the one chosen and its phases, and the phase chosen
    (None when there is no experiment, or it has not started)."""

    campaign: Campaign
    experiments: list[Experiment]
    experiment: Experiment | None
    phases: list[ExperimentPhase]
    phase_number: int | None

    @property
    def query(self) -> dict[str, Any]:
        if self.experiment is None:
            return {}
        return {"experiment": self.experiment.key, **({"phase": self.phase_number} if self.phase_number else {})}


def report_selection(*, campaign: Campaign, experiment_key: str | None, phase: str | None) -> ReportSelection:
    """The experiment named by `experiment_key` (default: selectors.experiment_current) and its phase `phase`
    (default: the latest); Http404 for a key or phase the campaign does not have."""
    experiments = list(experiment_list(campaign=campaign))
    if experiment_key:
        experiment = experiment_get(campaign=campaign, key=experiment_key)
        if experiment is None:
            raise Http404("No such experiment.")
    else:
        experiment = experiment_current(campaign=campaign)
    phases = list(experiment.phases.order_by("number")) if experiment is not None else []
    numbers = [p.number for p in phases]
    try:
        chosen = phase_number_parse(phase)
    except ValueError:
        raise Http404("No such phase.") from None
    if chosen is None:
        chosen = numbers[-1] if numbers else None
    elif chosen not in numbers:
        raise Http404("No such phase.")
    return ReportSelection(campaign, experiments, experiment, phases, chosen)


def report_data(selection: ReportSelection) -> dict[str, Any]:
    """The results dict of the chosen phase, or the campaign's overview (funnel, rules) without one."""
    if selection.experiment is None or selection.phase_number is None:
        return campaign_overview(selection.campaign)
    return experiment_results(selection.experiment, phase_number=selection.phase_number)


def _campaign_for(request: HttpRequest, model_admin: ModelAdmin, object_id: str) -> Campaign:
    campaign = model_admin.get_object(request, unquote(object_id))  # scoped to the member's organization
    if campaign is None:
        raise Http404
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    return campaign


def _selection_for(request: HttpRequest, campaign: Campaign) -> ReportSelection:
    return report_selection(
        campaign=campaign, experiment_key=request.GET.get("experiment"), phase=request.GET.get("phase")
    )


def report_export_view(request: HttpRequest, *, model_admin: ModelAdmin, object_id: str, fmt: str) -> HttpResponse:
    """The report's data as a download: JSON is the results dict as `campaigns.results` gives it, CSV its table
    (campaigns.results_export)."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    campaign = _campaign_for(request, model_admin, object_id)
    selection = _selection_for(request, campaign)
    data = report_data(selection)
    if selection.phase_number is None:
        name = f"{campaign.public_id}-overview"
    else:  # a public id and a slug: nothing a header would need quoted
        name = f"{campaign.public_id}-{selection.experiment.key}-phase-{selection.phase_number}"
    if fmt == "json":
        response: HttpResponse = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2})
    else:
        response = HttpResponse(results_csv(data), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def report_view(request: HttpRequest, *, model_admin: ModelAdmin, object_id: str) -> HttpResponse:
    """The report page of one campaign, for members who may view it."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    campaign = _campaign_for(request, model_admin, object_id)
    selection = _selection_for(request, campaign)
    data = report_data(selection)
    has_results = selection.phase_number is not None
    query = urlencode(selection.query)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": campaign,
        "title": f"Report: {campaign.name}",
        "selection": selection,
        "has_results": has_results,
        "results": data,
        "query": f"?{query}" if query else "",
        "experiment_links": [
            {"experiment": e, "query": urlencode({"experiment": e.key}),
             "current": selection.experiment is not None and e.pk == selection.experiment.pk}
            for e in selection.experiments
        ],
        "funnel": [{"label": label, "count": (data.get("funnel") or {}).get(key, 0)} for key, label in FUNNEL_STAGES],
        "rules": (data.get("breakdowns") or {}).get("rule") or [],
        "chart_data": report_chart_data(data),
    }
    if has_results:
        context.update(_results_context(data, selection))
    return TemplateResponse(request, "campaigns/admin/report.html", context)


def _when(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _results_context(data: dict[str, Any], selection: ReportSelection) -> dict[str, Any]:
    arms = data.get("arms") or []
    names = {arm["key"]: arm["name"] for arm in arms}
    phase = data.get("phase") or {}
    return {
        "arms": arms,
        "leader_name": names.get(data.get("leader")) if data.get("leader") else None,
        "phase": {**phase, "started": _when(phase.get("started_at")), "ended": _when(phase.get("ended_at"))},
        "computed": _when(data.get("computed_at")),
        "srm_rows": [
            {"name": arm["name"], "observed": observed, "expected": expected}
            for arm, observed, expected in zip(
                arms, (data.get("srm") or {}).get("observed") or [], (data.get("srm") or {}).get("expected") or [],
                strict=False,
            )
        ],
        "metrics": [_metric_table(metric, arms) for metric in data.get("metrics") or []],
        "phase_rows": [
            {**p, "started": _when(p.get("started_at")), "ended": _when(p.get("ended_at")),
             "query": urlencode({"experiment": selection.experiment.key, "phase": p["number"]}),
             "current": p["number"] == selection.phase_number}
            for p in data.get("phases") or []
        ],
        "breakdowns": [
            {"title": title, "empty": empty, "rows": [
                {"value": group["value"], "cells": group.get("arms") or []}
                for group in (data.get("breakdowns") or {}).get(key) or []
            ]}
            for key, title, empty in (
                ("device", "Device", "No visitors yet."), ("language", "Language", "No visitors yet."),
                ("segment", "Segment", "No exposed visitor is in a segment yet (only visitors who consented "
                                       "can be members; members as of now)."),
            )
        ],
        **_chart_tables(data, names),
    }


def _metric_table(metric: dict[str, Any], arms: list[dict[str, Any]]) -> dict[str, Any]:
    by_key = {arm["key"]: arm for arm in arms}
    return {
        **metric,
        "unit": "amount" if metric["key"] in AMOUNT_METRICS else "share",
        "loss_unit": "amount" if metric["key"] in AMOUNT_METRICS else "loss",
        "rows": [
            {**row, "name": by_key.get(row["key"], {}).get("name", row["key"]),
             "control": bool(by_key.get(row["key"], {}).get("control"))}
            for row in metric.get("arms") or []
        ],
    }


def _chart_tables(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The rows of the tables under the charts: what each chart draws, for readers who cannot see it."""
    series = data.get("timeseries") or {}
    days = series.get("days") or []
    by_arm = series.get("arms") or {}
    arm_keys = [arm["key"] for arm in data.get("arms") or [] if arm["key"] in by_arm]
    cumulative_rows = [
        {"day": day, "name": names[key], "visitors": by_arm[key]["cumulative_visitors"][i],
         "conversions": by_arm[key]["cumulative_conversions"][i], "rate": by_arm[key]["rate"][i],
         "interval": [by_arm[key]["lower"][i], by_arm[key]["upper"][i]]
         if by_arm[key]["lower"][i] is not None else None}
        for i, day in enumerate(days) for key in arm_keys
    ]
    daily_rows = [{"day": day, "counts": [by_arm[key]["visitors"][i] for key in arm_keys]}
                  for i, day in enumerate(days)]
    weight_rows = [
        {"number": a["number"], "starts": _when(a.get("starts_at")), "note": a.get("note") or "",
         "weights": [(names.get(key, key), weight) for key, weight in (a.get("weights") or {}).items()]}
        for a in data.get("allocations") or []
    ]
    reaction_rows = [
        {"label": metric["label"], "name": names.get(arm["key"], arm["key"]), "n": arm["n"], "value": arm["value"],
         "interval": arm.get("interval")}
        for metric in data.get("metrics") or [] if metric.get("reaction") for arm in metric.get("arms") or []
    ]
    return {
        "series_arm_names": [names[key] for key in arm_keys],
        "cumulative_rows": cumulative_rows,
        "daily_rows": daily_rows,
        "weight_rows": weight_rows,
        "show_weights": data.get("experiment", {}).get("kind") == "bandit" or len(weight_rows) > 1,
        "reaction_rows": reaction_rows,
    }


def report_chart_data(data: dict[str, Any]) -> dict[str, Any]:
    """What report.js draws, read from a json_script element: per-arm series, weights over time, reaction metrics
    per arm and the consent funnel."""
    series = data.get("timeseries") or {}
    return {
        "arms": [{"key": arm["key"], "name": arm["name"]} for arm in data.get("arms") or []],
        "days": series.get("days") or [],
        "series": series.get("arms") or {},
        "allocations": [
            {"number": a["number"], "starts_at": a.get("starts_at"), "weights": a.get("weights") or {}}
            for a in data.get("allocations") or []
        ],
        # Where the last weights' step ends: the phase's end, or now for a phase still running.
        "weights_until": (data.get("phase") or {}).get("ended_at") or data.get("computed_at"),
        "weights_until_now": not (data.get("phase") or {}).get("ended_at"),
        "reactions": [
            {"label": m["label"], "arms": [{"key": arm["key"], "value": arm["value"], "n": arm["n"]}
                                           for arm in m.get("arms") or []]}
            for m in data.get("metrics") or [] if m.get("reaction")
        ],
        "funnel": [{"stage": label, "count": (data.get("funnel") or {}).get(key, 0)} for key, label in FUNNEL_STAGES],
    }
