"""Segments in the admin: a segment's definition in the condition editor (the rules' editor, with this app's
vocabulary) and its live size as the tree changes; on the change page its size over time (runs, drawn by the
vendored Chart.js), who entered and left since yesterday, its first members (pseudonymous ids, no feature
value), and buttons: recompute now (dynamic), take a snapshot or upload a list (static), export as CSV (members
with live partner-sharing consent only, recorded in the ledger).

Every segment comes through SegmentAdmin.get_object, scoped by the tenant admin base: another organization's
segment is the same 404 as a missing one. Writes go through segments.services."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.admin_base import TenantAdmin, TenantModelForm
from accounts.models import Organization
from config.api.error_shape import error_body
from segments.conditions import ConditionError, condition_fields
from segments.models import Segment
from segments.selectors import (
    segment_changes_since,
    segment_list,
    segment_members,
    segment_shareable_members,
    segment_size_history,
)
from segments.services import (
    SegmentError,
    definition_check,
    export_csv,
    segment_check,
    segment_delete,
    segment_export,
    segment_preview,
    segment_recompute,
    segment_save,
    segment_snapshot,
    segment_upload,
)
from segments.widgets import ConditionEditorWidget

HISTORY_DAYS = 30
# Runs come every minute or so: the chart shows at most this many of them, evenly spread, and the newest.
CHART_POINTS = 400
MEMBERS_SHOWN = 50
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
EXPORT_NOTE = (
    "Only members whose partner-sharing consent is live are exported (pseudonymous ids, when they entered, "
    "whether the partner knows them); each export is recorded in the consent ledger."
)


class SegmentForm(TenantModelForm):
    """Key, name, kind and definition, refused as segments.services would refuse them: at the field, and a
    definition's error with the path of the node it is about ("definition.all[1].window_seconds")."""

    class Meta:
        model = Segment
        fields = ["organization", "key", "name", "description", "kind", "definition"]
        widgets = {"definition": ConditionEditorWidget(path_root="definition")}
        help_texts = {
            "definition": "Rows of field, operator and value, grouped by all / any / not; “Edit JSON” shows the "
            "tree as JSON. The size above it is counted as you edit; the tree is checked when saved.",
        }

    def row_organization(self) -> Organization | None:
        cleaned = getattr(self, "cleaned_data", {})
        return cleaned.get("organization") or self.tenant_organization or (
            self.instance.organization if self.instance.organization_id else None
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organization = self.row_organization()
        if organization is None or "key" not in cleaned or "name" not in cleaned:
            return cleaned  # the missing field has its own error already
        try:
            cleaned["definition"] = segment_check(
                organization=organization, key=cleaned["key"], name=cleaned["name"],
                kind=cleaned.get("kind", self.instance.kind), definition=cleaned.get("definition"),
                segment=self.instance if self.instance.pk else None,  # not yet changed by the form: as stored
            )
        except ConditionError as error:
            self.add_error("definition" if "definition" in self.fields else None, f"{error.path}: {error.message}")
        except SegmentError as error:
            self.add_error(error.path if error.path in self.fields else None, error.message)
        return cleaned


def _thinned(points: list[dict], limit: int = CHART_POINTS) -> list[dict]:
    """At most `limit` points, evenly spread, always with the newest."""
    if len(points) <= limit:
        return points
    step = len(points) / (limit - 1)
    return [points[int(i * step)] for i in range(limit - 1)] + [points[-1]]


def _json_error(status: int, code: str, message: str, path: str = "") -> JsonResponse:
    return JsonResponse(error_body(code, message, path=path or None), status=status)


@admin.register(Segment)
class SegmentAdmin(TenantAdmin):
    """Segments of the marketer's organization, edited with the condition editor and its live size."""

    form = SegmentForm
    change_form_template = "segments/admin/segment_change_form.html"
    list_display = ["name", "key", "kind", "size", "face_based", "emotion_based", "last_run_at"]
    list_filter = ["kind", "face_based", "emotion_based"]
    search_fields = ["key", "name"]
    computed = ["face_based", "emotion_based", "size", "last_run_at", "last_run_ms", "cadence_seconds"]

    def get_fields(self, request: HttpRequest, obj: Segment | None = None) -> list[str]:
        head = ["organization"] if request.user.is_superuser or obj is not None else []
        return [*head, "key", "name", "description", "kind", "definition", *(self.computed if obj else [])]

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None) -> list[str]:
        fixed = ["kind"] if obj is not None else []  # a segment's kind cannot change
        return [*super().get_readonly_fields(request, obj), *fixed, *self.computed]

    def get_form(self, request: HttpRequest, obj: Segment | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        definition = form.base_fields.get("definition")
        if definition is not None:  # absent for a member who may only view
            url = (reverse("admin:segments_segment_preview", args=[obj.pk]) if obj is not None
                   else reverse("admin:segments_segment_preview_new"))
            definition.widget.attrs["data-preview-url"] = url
        return form

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(self.preview_view), name="segments_segment_preview_new"),
            path("<path:object_id>/preview/", wrap(self.preview_view), name="segments_segment_preview"),
            path("<path:object_id>/recompute/", wrap(self.recompute_view), name="segments_segment_recompute"),
            path("<path:object_id>/snapshot/", wrap(self.snapshot_view), name="segments_segment_snapshot"),
            path("<path:object_id>/upload/", wrap(self.upload_view), name="segments_segment_upload"),
            path("<path:object_id>/export/", wrap(self.export_view), name="segments_segment_export"),
            *super().get_urls(),
        ]

    # --- saving through the service ---------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Segment, form: SegmentForm, change: bool) -> None:
        cleaned = form.cleaned_data
        stored = self.get_queryset(request).get(pk=obj.pk) if change else None  # as before the form changed it
        saved = segment_save(
            organization=stored.organization if stored else form.row_organization(), key=cleaned["key"],
            name=cleaned["name"], kind=stored.kind if stored else cleaned["kind"],
            definition=cleaned.get("definition"), description=cleaned.get("description", ""), segment=stored,
        )
        obj.pk = saved.pk  # the admin's log, message and redirect go on with the form's instance
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        try:
            segment_delete(segment=obj)
        except SegmentError as error:
            self.message_user(request, f"“{obj.name}” was kept: {error.message}.", messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for segment in queryset:
            self.delete_model(request, segment)

    # --- the change page --------------------------------------------------------------------------------------

    def _vocabulary(self, request: HttpRequest, obj: Segment | None) -> list[dict]:
        """The editor's fields, with the organization's other segments as the values a segment leaf offers."""
        organization_id = obj.organization_id if obj is not None else getattr(self._organization(request), "pk", None)
        keys = list(segment_list(organization_id=organization_id).exclude(pk=getattr(obj, "pk", None))
                    .order_by("key").values_list("key", flat=True))
        fields = condition_fields()
        for entry in fields:
            if entry["field"] == "segment" and keys:
                entry["values"] = keys
        return fields

    def render_change_form(self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None):
        context["condition_fields"] = self._vocabulary(request, obj)
        if obj is not None:
            context.update(self._panel_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panel_context(self, request: HttpRequest, segment: Segment) -> dict[str, Any]:
        now = timezone.now()
        history = _thinned(segment_size_history(segment=segment, since=now - timedelta(days=HISTORY_DAYS)))
        members = segment_members(segment=segment, now=now)
        return {
            "chart_data": {"labels": [point["at"] for point in history],
                           "sizes": [point["size"] for point in history]},
            "history": list(reversed(history)),
            "history_days": HISTORY_DAYS,
            "changes": segment_changes_since(segment=segment, since=now - timedelta(days=1)),
            "members": list(members[:MEMBERS_SHOWN]),
            "member_count": members.count(),
            "members_shown": MEMBERS_SHOWN,
            "shareable_count": segment_shareable_members(segment=segment, now=now).count(),
            "export_note": EXPORT_NOTE,
            "can_act": self.has_change_permission(request, segment),
        }

    # --- views ------------------------------------------------------------------------------------------------

    def _segment_for(self, request: HttpRequest, object_id: str, *, change: bool) -> Segment:
        segment = self.get_object(request, unquote(object_id))  # scoped to the member's organization
        if segment is None:
            raise Http404
        allowed = self.has_change_permission if change else self.has_view_permission
        if not allowed(request, segment):
            raise PermissionDenied
        return segment

    def _back(self, segment: Segment) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))

    def preview_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """POST {"definition": tree}: {"size": subjects meeting it now}, or the error shape with the node's path;
        saves nothing. For a segment's page, in its organization; for the add page, in the member's."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = self._segment_for(request, object_id, change=False) if object_id else None
        if segment is None and not self.has_view_permission(request):
            raise PermissionDenied
        organization_id = segment.organization_id if segment else getattr(self._organization(request), "pk", None)
        if organization_id is None:
            return _json_error(400, "invalid", "Save the segment first: its organization decides who is counted.")
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return _json_error(400, "invalid", "The body is not JSON.")
        if not isinstance(body, dict) or "definition" not in body:
            return _json_error(400, "invalid", "Send {\"definition\": tree}.", "definition")
        try:
            if segment is not None:  # naming itself, or a segment that names it, is a cycle
                definition_check(organization_id=organization_id, definition=body["definition"], key=segment.key)
            size = segment_preview(organization_id=organization_id, definition=body["definition"])
        except ConditionError as error:
            return _json_error(400, "invalid", error.message, error.path)
        return JsonResponse({"size": size})

    def recompute_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Recompute a dynamic segment's members now, instead of at its next beat."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = self._segment_for(request, object_id, change=True)
        run = segment_recompute(segment_id=segment.pk)
        if run is None:
            self.message_user(request, "Only a dynamic segment with a definition is recomputed.", messages.ERROR)
        else:
            self.message_user(request, f"Recomputed: {run.size} members ({run.entered} entered, {run.exited} left) "
                                       f"in {run.duration_ms} ms.", messages.SUCCESS)
        return self._back(segment)

    def snapshot_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Make a static segment's members those who meet its definition now."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = self._segment_for(request, object_id, change=True)
        try:
            run = segment_snapshot(segment=segment)
        except SegmentError as error:
            self.message_user(request, f"{error.path}: {error.message}", messages.ERROR)
        else:
            self.message_user(request, f"Snapshot taken: {run.size} members ({run.entered} entered, {run.exited} "
                                       "left).", messages.SUCCESS)
        return self._back(segment)

    def upload_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Make a static segment's members the subjects of the partner user ids given (typed or a file, one a
        line); a bad line is named and nothing changes."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = self._segment_for(request, object_id, change=True)
        upload = request.FILES.get("partner_file")
        if upload is not None and upload.size > MAX_UPLOAD_BYTES:
            self.message_user(request, f"upload: the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB. "
                                       "Nothing was changed.", messages.ERROR)
            return self._back(segment)
        try:
            text = upload.read().decode("utf-8-sig") if upload is not None else request.POST.get("partner_ids", "")
        except UnicodeDecodeError:
            self.message_user(request, "upload: the file is not UTF-8 text. Nothing was changed.", messages.ERROR)
            return self._back(segment)
        try:
            run = segment_upload(segment=segment, text=text)
        except SegmentError as error:
            self.message_user(request, f"{error.path}: {error.message}. Nothing was changed.", messages.ERROR)
        else:
            details = run.details
            self.message_user(request, f"List uploaded: {details['matched']} of {details['ids']} ids matched a "
                                       f"subject ({details['unmatched']} unknown); {run.size} members now.",
                              messages.SUCCESS)
        return self._back(segment)

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The members an export may name, as CSV, recorded in the ledger with who asked."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = self._segment_for(request, object_id, change=True)
        rows, _entry = segment_export(segment=segment, requested_by=f"admin:{request.user.get_username()}",
                                      fmt="csv")
        response = HttpResponse(export_csv(rows), content_type="text/csv; charset=utf-8")
        # A slug key: nothing a header would need quoted.
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.key}.csv"'
        return response
