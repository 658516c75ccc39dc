"""The partner API for segments, addressed by key: definitions (create, change, delete, preview the size before
saving), members, size history, exports and matches of the partner's own ids, static snapshots and uploads, and
a recompute on demand.

Every lookup goes through a selector scoped to the caller's organization (missing and foreign are the same 404);
every write is one service call; a refusal is a 400 (or 409) in the one error shape with the `path` of the node,
field or line. Members, exports and matches take an audience out of Visage: they need the `export` scope (which
`write` does not imply), answer only to the organization's API keys, name only members whose partner-sharing
consent is live, carry no feature value, and each call writes a ledger entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.models import ApiKey
from accounts.permissions import HasOrganization, IsApiKey
from config.api.errors import DomainAPIError
from config.api.negotiation import FirstRendererNegotiation
from config.api.parsers import StrictJSONParser
from config.api.schema import error_response
from consent.models import LedgerEntry
from segments import dispatch, selectors, services
from segments.api.parsers import CsvTextParser, PlainTextParser
from segments.api.serializers import (
    ExportSerializer,
    HistorySerializer,
    MatchRequest,
    MatchSerializer,
    MemberSerializer,
    PreviewRequest,
    PreviewSerializer,
    RecomputeSerializer,
    RunSerializer,
    SegmentRequest,
    SegmentSerializer,
    UploadRequest,
)
from segments.conditions import ConditionError, condition_fields
from segments.models import Segment
from segments.services import SegmentError

HISTORY_DEFAULT_DAYS = 7
LEDGER_HEADER = "Visage-Ledger-Entry"

_INVALID = error_response("A member is invalid; `path` names it (`definition.all[1].window_seconds`, "
                          "`upload.line[3]`). Nothing was written.")
_CONFLICT = error_response("Not now: a key another segment has or names, a change of kind, or an operation of the "
                           "other kind of segment (snapshot and upload: static; recompute: dynamic).")
_EXPORT_FORBIDDEN = error_response("The caller is not an API key with the `export` scope.")


@dataclass(frozen=True)
class _Refusal:
    """A SegmentError or ConditionError as config.api.errors.DomainAPIError reads it."""

    status_code: int
    code: str
    message: str
    path: str


def _refusal(exc: SegmentError | ConditionError) -> DomainAPIError:
    conflict = getattr(exc, "code", "invalid") == "conflict"
    return DomainAPIError(_Refusal(
        status.HTTP_409_CONFLICT if conflict else status.HTTP_400_BAD_REQUEST,
        "conflict" if conflict else "invalid", exc.message, exc.path,
    ))


class SegmentAPIView(OrganizationAPIView):
    """Base of the segment views: the caller's segment by key, refusals of the definition and services rendered."""

    def get_segment(self, key: str) -> Segment:
        return found_or_404(selectors.segment_get(organization_id=self.organization.pk, key=key))

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, SegmentError | ConditionError):
            exc = _refusal(exc)
        return super().handle_exception(exc)


class ExportAPIView(SegmentAPIView):
    """An audience leaving Visage: only an API key of the organization with the `export` scope."""

    required_scope = ApiKey.Scope.EXPORT
    permission_classes = [HasOrganization, IsApiKey]

    @property
    def requested_by(self) -> str:
        return f"api_key:{self.request.auth.prefix}"


def _ledger_ref(entry: LedgerEntry) -> dict[str, Any]:
    return {"sequence": entry.sequence, "hash": entry.hash}


# --- definitions -------------------------------------------------------------------------------------------------


class SegmentListView(SegmentAPIView, ListAPIView):
    """GET: the organization's segments by key. POST: create one (a dynamic one is computed at the next beat)."""

    serializer_class = SegmentSerializer

    def get_queryset(self):
        return selectors.segment_list(organization_id=self.organization.pk)

    @extend_schema(request=SegmentRequest, responses={201: SegmentSerializer, 400: _INVALID, 409: _CONFLICT})
    def post(self, request: Request) -> Response:
        payload = SegmentRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        segment = services.segment_save(
            organization=self.organization, key=data["key"], name=data["name"],
            kind=data.get("kind", Segment.Kind.DYNAMIC), definition=data.get("definition"),
            description=data.get("description", ""),
        )
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(SegmentAPIView):
    """One segment; PATCH changes the members given (a new definition is recomputed at the next beat); DELETE
    removes it with its history (409 while another segment names it)."""

    @extend_schema(responses=SegmentSerializer)
    def get(self, request: Request, key: str) -> Response:
        return Response(SegmentSerializer(self.get_segment(key)).data)

    @extend_schema(request=SegmentRequest, responses={200: SegmentSerializer, 400: _INVALID, 409: _CONFLICT})
    def patch(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        payload = SegmentRequest(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        segment = services.segment_save(
            organization=self.organization, segment=segment, key=data.get("key", segment.key),
            name=data.get("name", segment.name), kind=data.get("kind", segment.kind),
            definition=data.get("definition", segment.definition),
            description=data.get("description", segment.description),
        )
        return Response(SegmentSerializer(segment).data)

    @extend_schema(responses={204: None, 409: _CONFLICT})
    def delete(self, request: Request, key: str) -> Response:
        services.segment_delete(segment=self.get_segment(key))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentPreviewView(SegmentAPIView):
    """POST: check a definition and count who meets it now, saving nothing (the `read` scope is enough)."""

    required_scope = ApiKey.Scope.READ

    @extend_schema(request=PreviewRequest, responses={200: PreviewSerializer, 400: _INVALID})
    def post(self, request: Request) -> Response:
        payload = PreviewRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        size = services.segment_preview(organization_id=self.organization.pk,
                                        definition=payload.validated_data["definition"])
        return Response({"size": size})


class SegmentFieldsView(SegmentAPIView):
    """GET: the vocabulary of definitions: per field its kind, values, operators and parameters with ranges."""

    @extend_schema(responses=OpenApiResponse(
        response={"type": "array", "items": {"type": "object", "additionalProperties": {}}},
        description="segments.conditions.condition_fields(): field, kind, values, operators, face, emotion, "
        "description, and for numbers minimum, maximum, integer, and parameters.",
    ))
    def get(self, request: Request) -> Response:
        return Response(condition_fields())


class SegmentHistoryView(SegmentAPIView):
    """GET: the size after each run, oldest first, with how many entered and left."""

    @extend_schema(
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME, description=f"Runs started at or after this "
                                     f"time (ISO 8601); default {HISTORY_DEFAULT_DAYS} days ago.")],
        responses={200: HistorySerializer(many=True), 400: _INVALID},
    )
    def get(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        since = _since(request.query_params.getlist("since"))
        return Response(HistorySerializer(selectors.segment_size_history(segment=segment, since=since),
                                          many=True).data)


def _since(values: list[str]) -> datetime:
    if not values:
        return timezone.now() - timedelta(days=HISTORY_DEFAULT_DAYS)
    try:
        parsed = parse_datetime(values[0]) if len(values) == 1 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise SegmentError("since", "give since once, as an ISO 8601 time such as 2025-04-01T00:00:00Z")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


# --- static and dynamic members ------------------------------------------------------------------------------------


class SegmentSnapshotView(SegmentAPIView):
    """POST: a static segment's members become who meets its definition now (409 for a dynamic one)."""

    @extend_schema(request=None, responses={200: RunSerializer, 400: _INVALID, 409: _CONFLICT})
    def post(self, request: Request, key: str) -> Response:
        return Response(RunSerializer(services.segment_snapshot(segment=self.get_segment(key))).data)


class SegmentUploadView(SegmentAPIView):
    """POST: a static segment's members become the subjects you know by the ids sent (matched by their keyed
    hash; the ids are not kept; unknown ids are counted). Nothing changes when any line is refused."""

    parser_classes = [CsvTextParser, PlainTextParser, StrictJSONParser]
    request_body_required = True

    @extend_schema(
        request={
            "text/csv": {"type": "string", "description": "One id per line (one column; a first line "
                         "`partner_user_id` is a header). A 400 names the line: `upload.line[3]`."},
            "text/plain": {"type": "string", "description": "The same as text/csv."},
            "application/json": UploadRequest,
        },
        responses={200: RunSerializer, 400: _INVALID, 409: _CONFLICT},
    )
    def post(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        if request.content_type.split(";")[0].strip().lower().startswith("text/"):
            text = request.data if isinstance(request.data, str) else ""
            return Response(RunSerializer(services.segment_upload(segment=segment, text=text)).data)
        payload = UploadRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        # The JSON list is taken as given (no header line, no trimming); a 400 names the id: `ids[2]`.
        return Response(RunSerializer(services.segment_upload(segment=segment, ids=payload.validated_data["ids"])).data)


class SegmentRecomputeView(SegmentAPIView):
    """POST: queue a full recompute of a dynamic segment now (409 for a static one)."""

    @extend_schema(request=None, responses={202: RecomputeSerializer, 409: _CONFLICT})
    def post(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        if segment.kind != Segment.Kind.DYNAMIC:
            raise SegmentError("kind", "a static segment changes by snapshot or upload", code="conflict")
        return Response({"queued": dispatch.send_recompute(segment_id=segment.pk)}, status=status.HTTP_202_ACCEPTED)


# --- the audience leaving ------------------------------------------------------------------------------------------


class SegmentMembersView(ExportAPIView, ListAPIView):
    """GET: the members whose partner-sharing consent is live, newest entry first, a page at a time: pseudonymous
    subject ids and when they entered. Each page is recorded in the ledger (its sequence in `Visage-Ledger-Entry`)."""

    serializer_class = MemberSerializer

    def get_queryset(self):
        return selectors.segment_shareable_members(segment=self.get_segment(self.kwargs["key"]))

    @extend_schema(responses={200: MemberSerializer(many=True), 403: _EXPORT_FORBIDDEN})
    def get(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        page = self.paginate_queryset(selectors.segment_shareable_members(segment=segment))
        entry = services.segment_members_listed(segment=segment, count=len(page), requested_by=self.requested_by,
                                                subject_ids=[member.subject_id for member in page])
        response = self.get_paginated_response(MemberSerializer(page, many=True).data)
        response[LEDGER_HEADER] = str(entry.sequence)
        return response


class SegmentExportView(ExportAPIView):
    """GET: the members an export may name (live partner-sharing consent) as JSON or CSV: pseudonymous subject id,
    when they entered, and whether you know them by your own id. No feature value. Each export is a ledger entry,
    its sequence in the body (JSON) and in `Visage-Ledger-Entry`."""

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="Default json.")],
        responses={
            (200, "application/json"): ExportSerializer,
            (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR,
                                               description="subject_id,entered_at,partner_linked"),
            400: _INVALID, 403: _EXPORT_FORBIDDEN,
        },
    )
    def get(self, request: Request, key: str) -> Response | HttpResponse:
        segment = self.get_segment(key)
        output = request.query_params.getlist("format") or ["json"]
        if len(output) != 1 or output[0] not in ("json", "csv"):
            raise SegmentError("format", "json or csv")
        rows, entry = services.segment_export(segment=segment, requested_by=self.requested_by, fmt=output[0])
        if output[0] == "csv":
            response = HttpResponse(services.export_csv(rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{segment.key}-{entry.sequence}.csv"'
        else:
            response = Response({"segment": segment.key, "count": len(rows), "ledger_entry": _ledger_ref(entry),
                                 "members": rows})
        response[LEDGER_HEADER] = str(entry.sequence)
        return response


class SegmentMatchView(ExportAPIView):
    """POST: which of your own user ids are members with live partner-sharing consent. The ids are hashed in
    memory with the organization's key and never kept; the answer is a ledger entry."""

    @extend_schema(request=MatchRequest, responses={200: MatchSerializer, 400: _INVALID, 403: _EXPORT_FORBIDDEN})
    def post(self, request: Request, key: str) -> Response:
        segment = self.get_segment(key)
        payload = MatchRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        matched, entry = services.segment_match(
            segment=segment, partner_user_ids=payload.validated_data["partner_user_ids"],
            requested_by=self.requested_by,
        )
        response = Response({"matched": matched, "count": len(matched), "ledger_entry": _ledger_ref(entry)})
        response[LEDGER_HEADER] = str(entry.sequence)
        return response
