"""Operator views of the pipeline in the admin: read-only, since sessions, frames and features are written by
the pipeline alone. The session page shows the organization's pipeline stats; the frame list filters by
status and reason (failures, dropped for consent, expired)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin_base import TenantAdmin
from accounts.selectors import organization_for_user
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures


class ReadOnlyTenantAdmin(TenantAdmin):
    """Evidence of processing: viewable, never added or edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CaptureSession)
class CaptureSessionAdmin(ReadOnlyTenantAdmin):
    list_display = ["public_id", "source", "campaign", "started_at", "ended_at", "end_reason"]
    list_filter = ["source", "end_reason"]
    search_fields = ["public_id", "media_ref"]
    change_list_template = "faceanalysis/admin/capturesession_change_list.html"

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
