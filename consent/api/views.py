"""The partner consent API: find or create a subject by the partner's user id, record a grant given on the
partner's own UI, withdraw, read state and history. Every query goes through a selector scoped to the caller."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrganizationAPIView, found_or_404
from config.api.schema import error_response
from consent import receipts
from consent.api.parsing import MAX_SEQUENCE, event_feed_query
from consent.api.serializers import (
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
from consent.evidence import truncate_ip, user_agent_class
from consent.models import Channel, OutboxEvent, Subject
from consent.schedule import jurisdiction_label, schedule_rows
from consent.selectors import (
    EVENT_FEED_DEFAULT_LIMIT,
    EVENT_FEED_MAX_LIMIT,
    consent_state,
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


class ReceiptNegotiation(BaseContentNegotiation):
    """A receipt is a compact JWS whatever the Accept header says; errors stay in the one JSON shape."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class SubjectGrantReceiptView(SubjectView):
    """One grant of the subject as a signed Kantara consent receipt v1.1: a compact JWS (alg EdDSA), verifiable
    with the keys at /consent/o/<your slug>/receipts/jwks.json."""

    content_negotiation_class = ReceiptNegotiation

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
