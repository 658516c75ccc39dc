"""The partner consent API: find or create a subject by the partner's user id, record a grant given on the
partner's own UI, withdraw, read state and history. Every query goes through a selector scoped to the caller."""

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.models import ApiKey
from accounts.permissions import HasOrganization, IsApiKey
from config.api.negotiation import FirstRendererNegotiation
from config.api.schema import error_response
from consent import receipts
from consent.api.parsing import MAX_SEQUENCE, event_feed_query
from consent.api.serializers import (
    DataRequestCreateSerializer,
    DataRequestSerializer,
    EventFeedSerializer,
    GrantCreateSerializer,
    GrantSerializer,
    LedgerEntrySerializer,
    NoticeSerializer,
    RetentionScheduleSerializer,
    SubjectConsentSerializer,
    SubjectFindOrCreateSerializer,
    SubjectSerializer,
    WithdrawResultSerializer,
    WithdrawSerializer,
)
from consent.data_export import export_response, subject_data_summary
from consent.data_requests import data_request_create
from consent.evidence import truncate_ip, user_agent_class
from consent.models import Channel, DataRequest, OutboxEvent, Subject
from consent.schedule import jurisdiction_label, schedule_rows
from consent.selectors import (
    EVENT_FEED_DEFAULT_LIMIT,
    EVENT_FEED_MAX_LIMIT,
    consent_state,
    data_request_get,
    data_request_list,
    event_feed_page,
    ledger_list,
    notice_get_by_hash,
    notice_list_published,
    retention_policy_in_force,
    retention_snapshot_in_force,
    subject_get,
    subject_list,
)
from consent.services import ConsentError, consent_grant, consent_withdraw, subject_get_or_create_for_partner


class ConsentRejected(APIException):
    """A consent request the service refused; nothing was written."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "consent_invalid"

    def __init__(self, error: ConsentError) -> None:
        super().__init__(detail=str(error), code=error.code)


class SubjectErased(APIException):
    """Access to or export of an erased subject: nothing is kept to show."""

    status_code = status.HTTP_410_GONE
    default_code = "subject_erased"
    default_detail = "The subject is erased: nothing is kept to show or export."


class NotAnExport(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "not_an_export"
    default_detail = "Only an export request has a document; request one with kind `export`."


_EXPORT_FORBIDDEN = error_response("An export leaves Visage: only an API key with the `export` scope.")
_GONE = error_response("The subject is erased; nothing is kept to show or export.")


def _consent_payload(subject: Subject) -> dict:
    states = consent_state(organization=subject.organization, subject=subject)
    return {
        "subject": SubjectSerializer(subject).data,
        "consent": [
            {"purpose": s.purpose, "state": s.state, "grant": s.grant and GrantSerializer(s.grant).data}
            for s in states
        ],
    }


class NoticeListView(OrganizationAPIView, ListAPIView):
    """Notice versions offered now: show one of these texts on your UI and send its hash with the grant."""

    serializer_class = NoticeSerializer

    def get_queryset(self):
        return notice_list_published(organization=self.organization).order_by("language", "purposes")


class SubjectListView(OrganizationAPIView, ListAPIView):
    """GET lists your subjects; POST finds the subject for your user id, creating it on first sight."""

    serializer_class = SubjectSerializer

    def get_queryset(self):
        return subject_list(organization=self.organization)

    @extend_schema(
        request=SubjectFindOrCreateSerializer,
        responses={200: SubjectSerializer, 201: SubjectSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = SubjectFindOrCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            subject, created = subject_get_or_create_for_partner(
                organization=self.organization, partner_user_id=payload.validated_data["partner_user_id"]
            )
        except ConsentError as error:
            raise ConsentRejected(error) from error
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(SubjectSerializer(subject).data, status=code)


class SubjectView(OrganizationAPIView):
    """Base for one subject of the caller's organization; another organization's is simply not found."""

    def get_subject(self, subject_id: str) -> Subject:
        return found_or_404(subject_get(organization=self.organization, public_id=subject_id))


class SubjectConsentView(SubjectView):
    """The subject's consent state per purpose. Only `active` allows processing."""

    @extend_schema(responses=SubjectConsentSerializer)
    def get(self, request: Request, subject_id: str) -> Response:
        return Response(_consent_payload(self.get_subject(subject_id)))


class SubjectGrantView(SubjectView):
    """Record consent the end user gave on your own UI, under the published notice version it showed."""

    @extend_schema(
        request=GrantCreateSerializer,
        responses={201: GrantSerializer(many=True), 400: OpenApiResponse(description="Nothing was written.")},
    )
    def post(self, request: Request, subject_id: str) -> Response:
        subject = self.get_subject(subject_id)
        payload = GrantCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        notice = notice_get_by_hash(organization=self.organization, text_hash=data["notice_hash"])
        if notice is None:
            raise ConsentRejected(ConsentError("No published notice has this hash.", code="unknown_notice"))
        if notice.language != data["language"]:
            raise ConsentRejected(ConsentError("The notice is not in this language.", code="language_mismatch"))
        evidence = {
            "ip_prefix": truncate_ip(data.get("ip_address")),
            "user_agent_class": user_agent_class(data.get("user_agent")),
        }
        try:
            grants = consent_grant(
                organization=self.organization,
                subject=subject,
                notice=notice,
                purposes=data["purposes"],
                channel=Channel.PARTNER_API,
                evidence=evidence,
                context_ref=f"api-key:{request.auth.prefix}" if hasattr(request.auth, "prefix") else "",
            )
        except ConsentError as error:
            raise ConsentRejected(error) from error
        return Response(GrantSerializer(grants, many=True).data, status=status.HTTP_201_CREATED)


class SubjectWithdrawView(SubjectView):
    """Withdraw some purposes (or all). Idempotent: withdrawing what is not granted changes nothing."""

    @extend_schema(request=WithdrawSerializer, responses=WithdrawResultSerializer)
    def post(self, request: Request, subject_id: str) -> Response:
        subject = self.get_subject(subject_id)
        payload = WithdrawSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            withdrawn = consent_withdraw(
                organization=self.organization,
                subject=subject,
                purposes=payload.validated_data.get("purposes"),
                channel=Channel.PARTNER_API,
            )
        except ConsentError as error:
            raise ConsentRejected(error) from error
        body = _consent_payload(subject)
        return Response({"withdrawn": GrantSerializer(withdrawn, many=True).data, "consent": body["consent"]})


class SubjectHistoryView(SubjectView, ListAPIView):
    """The subject's consent events from the ledger, oldest first, with their chain hashes."""

    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return ledger_list(organization=self.organization, subject=self.get_subject(self.kwargs["subject_id"]))


class SubjectGrantReceiptView(SubjectView):
    """One grant of the subject as a signed Kantara consent receipt v1.1: a compact JWS (alg EdDSA), verifiable
    with the keys at /consent/o/<your slug>/receipts/jwks.json."""

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        responses={
            (200, receipts.MEDIA_TYPE): OpenApiResponse(
                response=OpenApiTypes.STR, description="The receipt as a compact JWS (header.payload.signature)."
            ),
        },
    )
    def get(self, request: Request, subject_id: str, grant_id: int) -> HttpResponse:
        subject = self.get_subject(subject_id)
        grant = found_or_404(
            receipts.receipt_grant_get(organization=self.organization, subject=subject, grant_id=grant_id)
        )
        response = HttpResponse(receipts.receipt_sign(grant, request), content_type=receipts.MEDIA_TYPE)
        response["Content-Disposition"] = f'attachment; filename="consent-receipt-{grant.pk}.jws"'
        return response


_EVENT_TYPES = "|".join(t.replace(".", "\\.") for t in OutboxEvent.Type.values)


class EventFeedView(OrganizationAPIView):
    """Served as the GET of /api/v1/events/ (campaigns' event recording is its POST: one path for partners' events).
    GET: your organization's data-rights events (consent granted and withdrawn, erasure requested and done,
    export ready, purge done), oldest first, after a cursor. Store `next` and pass it back as `after`: every
    event comes exactly once, in commit order (an outbox; webhooks will deliver from it)."""

    @extend_schema(
        operation_id="consent_event_list",
        parameters=[
            OpenApiParameter("after", {"type": "integer", "minimum": 0, "maximum": MAX_SEQUENCE, "default": 0},
                             description="Events after this sequence (exclusive); 0, the default, is the start of "
                             "the feed. Pass the previous page's `next`."),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": EVENT_FEED_MAX_LIMIT,
                                       "default": EVENT_FEED_DEFAULT_LIMIT}, description="Events per page."),
            OpenApiParameter("type", OpenApiTypes.STR, description="Only these types, comma-separated: "
                             f"{', '.join(OutboxEvent.Type.values)}.",
                             pattern=f"^({_EVENT_TYPES})(,({_EVENT_TYPES}))*$"),
        ],
        responses={200: EventFeedSerializer, 400: error_response("A bad cursor, limit or type (the known types are "
                                                                 "listed in the error's details).")},
    )
    def get(self, request: Request) -> Response:
        query = event_feed_query(request.query_params)
        page = event_feed_page(organization=self.organization, after=query.after, types=query.types, limit=query.limit)
        return Response(EventFeedSerializer(
            {"results": page.events, "next": str(page.next_after), "has_more": page.has_more}
        ).data)


class RetentionScheduleView(OrganizationAPIView):
    """GET: the retention policy in force (what the purge applies): every category's period, whether it is biometric
    and the legal cap under your jurisdiction; the defaults when no policy is saved. The same as the public page."""

    @extend_schema(operation_id="consent_retention_schedule", responses=RetentionScheduleSerializer)
    def get(self, request: Request) -> Response:
        policy = retention_policy_in_force(organization=self.organization)
        return Response(RetentionScheduleSerializer({
            "jurisdiction": policy.jurisdiction, "jurisdiction_name": jurisdiction_label(policy.jurisdiction),
            "defaults": policy.pk is None, "updated_at": policy.updated_at if policy.pk else None,
            "grant_validity_days": policy.grant_validity_days,
            "categories": schedule_rows(retention_snapshot_in_force(policy)),
        }).data)
# --- data subject requests ---------------------------------------------------------------------------------------


def _requested_by(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"api_key:{request.auth.prefix}"
    return f"user:{request.user.pk}"


def _may_export(request: Request) -> bool:
    return isinstance(request.auth, ApiKey) and request.auth.has_scope(ApiKey.Scope.EXPORT)


class SubjectRequestListView(SubjectView, ListAPIView):
    """GET: the subject's data requests, newest first. POST: a request on the subject's behalf (GDPR Art. 15, 17,
    20): `access` and `export` are answered at once (an export needs the `export` scope and streams from its
    `links.export`); `erasure` runs through a purge, its `parts` say which are done. A second erasure of an erased
    subject answers 200 with the first."""

    serializer_class = DataRequestSerializer

    def get_queryset(self):
        return data_request_list(organization=self.organization, subject=self.get_subject(self.kwargs["subject_id"]))

    @extend_schema(
        request=DataRequestCreateSerializer,
        responses={201: DataRequestSerializer, 200: DataRequestSerializer, 403: _EXPORT_FORBIDDEN, 410: _GONE},
    )
    def post(self, request: Request, subject_id: str) -> Response:
        subject = self.get_subject(subject_id)
        payload = DataRequestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        kind = payload.validated_data["kind"]
        if kind == DataRequest.Kind.EXPORT and not _may_export(request):
            raise PermissionDenied("An export needs an API key with the 'export' scope.")
        try:
            outcome = data_request_create(
                organization=self.organization, subject=subject, kind=kind, channel=Channel.PARTNER_API,
                requested_by=_requested_by(request),
            )
        except ConsentError as error:
            if error.code == "subject_erased":
                raise SubjectErased() from error
            raise ConsentRejected(error) from error
        answer = data_request_get(organization=self.organization, public_id=outcome.request.public_id)
        body = dict(DataRequestSerializer(answer).data)
        if kind == DataRequest.Kind.ACCESS:
            body["kept"] = [
                {"category": c.label, "count": c.count, "first": c.first, "last": c.last}
                for c in subject_data_summary(organization=self.organization, subject=subject)
            ]
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)


class DataRequestDetailView(OrganizationAPIView):
    """One data request of the organization: its state, due date and, for an erasure, its parts."""

    @extend_schema(responses=DataRequestSerializer)
    def get(self, request: Request, request_id: str) -> Response:
        found = found_or_404(data_request_get(organization=self.organization, public_id=request_id))
        return Response(DataRequestSerializer(found).data)


class DataRequestExportView(OrganizationAPIView):
    """The export request's document, streamed as JSON (format `visage-subject-export/1`, see docs/data-rights.md):
    live data, so it works while the subject is not erased. Only an API key with the `export` scope."""

    required_scope = ApiKey.Scope.EXPORT
    permission_classes = [HasOrganization, IsApiKey]

    @extend_schema(responses={
        (200, "application/json"): OpenApiResponse(response=OpenApiTypes.OBJECT,
                                                   description="The subject's export document."),
        403: _EXPORT_FORBIDDEN, 409: error_response("The request is not an export."), 410: _GONE,
    })
    def get(self, request: Request, request_id: str) -> StreamingHttpResponse:
        found = found_or_404(data_request_get(organization=self.organization, public_id=request_id))
        if found.kind != DataRequest.Kind.EXPORT:
            raise NotAnExport()
        subject = found_or_404(subject_get(organization=self.organization, public_id=found.subject_ref))
        if subject.is_erased:
            raise SubjectErased()
        return export_response(organization=self.organization, subject=subject,
                               filename=f"subject-export-{found.public_id}.json")
