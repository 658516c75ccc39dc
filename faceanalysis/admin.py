"""Operator views of the pipeline in the admin: read-only, since sessions, frames and features are written by
the pipeline alone. The session page shows the organization's pipeline stats; the frame list filters by
status and reason (failures, dropped for consent, expired)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest

from accounts.admin_base import TenantAdmin
from accounts.selectors import organization_for_user
from faceanalysis.aggregates import MIN_OBSERVED_S
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures

EMPTY = "—"


def _percent(share: float | None) -> str:
    if share is None:
        return EMPTY
    return f"{share * 100:.1f}".removesuffix(".0") + " %"


def _number(value: float | None, digits: int = 1) -> str:
    return EMPTY if value is None else f"{value:.{digits}f}"


def session_report_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """The admin's table of one session's report (`selectors.capture_session_report`): label and value per
    row, sections between; every missing number an em dash."""
    aggregates = report["aggregates"]
    analysed, counted = aggregates["frames_analyzed"], aggregates["frames_counted"]
    rows = [
        {"kind": "section", "label": "Reactions (counted: frames whose face passed the quality gate)"},
        {"label": "Frames analysed", "value": str(analysed)},
        {"label": "Frames counted", "value": str(counted)},
        {"label": "Attention share", "value": _percent(aggregates["attention_share"]),
         "help": "counted frames looking at the screen"},
        {"label": "Mean attention score", "value": _number(aggregates["mean_attention_score"], 2)},
        {"label": "Smile share", "value": _percent(aggregates["smile_share"])},
        {"label": "Expression distribution", "value": "" if aggregates["expression_distribution"] else EMPTY},
    ]
    rows += [
        {"kind": "sub", "label": label, "value": _percent(share)}
        for label, share in sorted(aggregates["expression_distribution"].items(), key=lambda item: -item[1])
    ]
    rate, seconds = aggregates["blink_rate_per_minute"], aggregates["seconds_observed"]
    rows += [
        {"label": "Blink rate", "value": f"{rate} per minute ({aggregates['blinks']} in {seconds} s)"
         if rate is not None else f"{EMPTY} (needs {MIN_OBSERVED_S:.0f} s observed, {seconds} s so far)"},
        {"label": "Quality rejections", "value": f"{_percent(aggregates['quality_rejection_share'])}"
         f" ({analysed - counted} of {analysed} analysed)" if analysed else EMPTY},
        {"kind": "section", "label": "Frames by status"},
    ]
    rows += [
        {"label": str(label), "value": str(report["frame_counts"].get(status, 0))}
        for status, label in Frame.Status.choices
    ]
    latency = report["latency_ms"]
    rows += [
        {"kind": "section", "label": "Latency, intake to features"},
        {"label": "Latency p50 / p95 / max (ms)", "value": EMPTY if not latency["samples"] else
         f"{_number(latency['p50'])} / {_number(latency['p95'])} / {_number(latency['max'])}"},
    ]
    return rows


class ReadOnlyTenantAdmin(TenantAdmin):
    """Evidence of processing: viewable, never added, edited or deleted by hand. Derived data leaves only through
    a purge request (a withdrawal, an erasure, the retention run), each part with its receipt in the ledger."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CaptureSession)
class CaptureSessionAdmin(ReadOnlyTenantAdmin):
    list_display = ["public_id", "source", "campaign", "started_at", "ended_at", "end_reason"]
    list_filter = ["source", "end_reason"]
    search_fields = ["public_id", "media_ref"]
    change_list_template = "faceanalysis/admin/capturesession_change_list.html"
    change_form_template = "faceanalysis/admin/capturesession_change_form.html"
    fields = [
        "public_id", "subject", "campaign", "grant", "purposes", "source", "media_ref", "started_at", "ended_at",
        "end_reason", "aggregates_updated_at", "organization",
    ]
    readonly_fields = ["public_id", "started_at", "ended_at", "end_reason", "aggregates_updated_at"]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None):
        from faceanalysis.selectors import capture_session_report

        session = self.get_object(request, unquote(object_id))  # scoped to the member's organization
        extra_context = dict(extra_context or {})
        if session is not None and self.has_view_permission(request, session):
            extra_context["session_report"] = session_report_rows(capture_session_report(session=session))
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        from faceanalysis.selectors import pipeline_stats

        organization = organization_for_user(request.user)
        extra_context = {
            **(extra_context or {}),
            "pipeline_stats": pipeline_stats(organization=organization, include_broker=request.user.is_superuser)
            if organization is not None else None,
        }
        return super().changelist_view(request, extra_context)


@admin.register(Frame)
class FrameAdmin(ReadOnlyTenantAdmin):
    list_display = ["public_id", "status", "reason", "origin", "content_type", "received_at", "finished_at"]
    list_filter = ["status", "reason", "origin", "queue"]
    search_fields = ["public_id"]
    date_hierarchy = "received_at"


@admin.register(FrameFeatures)
class FrameFeaturesAdmin(ReadOnlyTenantAdmin):
    list_display = ["frame", "face_count", "quality_ok", "looking_at_screen", "expression", "latency_ms"]
    list_filter = ["quality_ok", "expression"]


@admin.register(FaceContext)
class FaceContextAdmin(ReadOnlyTenantAdmin):
    list_display = ["subject", "campaign", "updated_at"]
