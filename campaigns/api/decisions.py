"""Decision and event endpoints: the partner's server with a key (`decide` scope, which `write` implies), and the
snippet on a partner page with none.

The snippet's endpoints answer CORS only for the campaign's allowed origins, with credentials, so that the signed,
HttpOnly cookie the campaign's consent page set on Visage's origin comes along: it is the only way a consenting
visitor is recognised there, never anything in the body or a URL. A request whose Origin is present and not
allowed is refused (403) before anything is decided or recorded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.models import ApiKey
from campaigns.api.cors import CorsPublicMixin, cors_origin_allowed, is_same_origin, request_origin
from campaigns.api.decision_serializers import (
    DecisionSerializer,
    EventRequestSerializer,
    EventSerializer,
    PartnerDecisionRequestSerializer,
    PublicDecisionRequestSerializer,
    PublicEventRequestSerializer,
    decision_body,
)
from campaigns.api.public import cookie_subject
from campaigns.decisions import DecisionError, decision_make, event_record
from campaigns.models import Campaign
from campaigns.request_context import RequestAttributes, request_attributes
from campaigns.selectors import (
    campaign_get,
    campaign_get_by_public_id,
    decision_get_public,
)
from config.api.errors import DomainErrorsMixin
from config.api.schema import error_response
from consent.api.views import EventFeedView
from consent.models import Subject
from consent.selectors import subject_get

NO_CAMPAIGN = "No such campaign."
NO_DECISION = "No such decision."


def _attributes(context: dict[str, Any], **request_side: str) -> RequestAttributes:
    return request_attributes(
        language=context.get("language", ""), timezone=context.get("timezone", ""), url=context.get("url", ""),
        referrer=context.get("referrer", ""), now=timezone.now(), **request_side,
    )


def _event_body(event: Any) -> dict[str, Any]:
    return EventSerializer(event).data


# --- The partner's server -----------------------------------------------------------------------------------------


class DecisionCreateView(DomainErrorsMixin, OrganizationAPIView):
    """POST: decide which variant a visitor gets in one of your running campaigns, and log it."""

    required_scope = ApiKey.Scope.DECIDE
    domain_errors = (DecisionError,)
    throttle_family = "decisions"  # page-view traffic: its own rate limits (config.api.throttling)

    @extend_schema(
        operation_id="decision_create",
        request=PartnerDecisionRequestSerializer,
        responses={
            200: DecisionSerializer,
            403: error_response("The key lacks the decide (or write) scope."),
            404: error_response("No such campaign or subject in the organization."),
            409: error_response("The campaign is not running (`campaign_not_running`), has ended (`campaign_ended`) "
                                "or has no default variant."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = PartnerDecisionRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organization = self.organization
        campaign = found_or_404(campaign_get(organization=organization, public_id=data["campaign"]),
                                message=NO_CAMPAIGN)
        campaign.organization = organization  # the same row, already loaded
        subject: Subject | None = None
        if data.get("subject"):
            subject = found_or_404(subject_get(organization=organization, public_id=data["subject"]),
                                   message=NO_CAMPAIGN)
        context = data.get("context") or {}
        attributes = _attributes(context, user_agent=context.get("user_agent", ""),
                                 country=context.get("country", ""))
        decision = decision_make(campaign=campaign, visitor_id=data["visitor_id"], subject=subject,
                                 attributes=attributes, channel="api")
        return Response(decision_body(decision))


class EventView(DomainErrorsMixin, OrganizationAPIView):
    """POST: record an impression, click, conversion or custom event on one of your decisions. GET: the partner
    event feed (consent's data-rights events after a cursor, `consent.api.views.EventFeedView`)."""

    domain_errors = (DecisionError,)
    throttle_family = "decisions"  # page-view traffic: its own rate limits (config.api.throttling)
    get = EventFeedView.get  # the feed, with its schema; a read, so the key needs the read scope

    @property
    def required_scope(self) -> str | None:
        # Recording needs `decide` (or write); reading the feed, the default for a GET: `read`.
        return ApiKey.Scope.DECIDE if self.request.method == "POST" else None

    @extend_schema(
        operation_id="event_create",
        request=EventRequestSerializer,
        responses={
            201: EventSerializer,
            200: EventSerializer,
            403: error_response("The key lacks the decide (or write) scope."),
            404: error_response("No such decision in the organization."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = EventRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        event, created = event_record(
            organization=self.organization, decision_public_id=data["decision"], visitor_id=None, kind=data["kind"],
            name=data["name"], value=data["value"], currency=data["currency"],
            client_event_id=data["client_event_id"], occurred_at=data["occurred_at"],
        )
        return Response(_event_body(event), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- The snippet ----------------------------------------------------------------------------------------------------


class OriginNotAllowed(exceptions.PermissionDenied):
    default_code = "origin_not_allowed"
    default_detail = "This origin may not call this campaign's endpoints."


class PublicCampaignAPIView(CorsPublicMixin, DomainErrorsMixin, APIView):
    """Base of the snippet's endpoints: no key, CORS with credentials for the campaign's allowed origins only
    (campaigns.api.cors); a request without an Origin, or from Visage's own, needs none."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    domain_errors = (DecisionError,)
    throttle_family = "decisions"  # page-view traffic: its own rate limits (config.api.throttling)

    def origin_check(self, campaign: Campaign) -> None:
        """403 when the request names an Origin that is neither Visage's own nor one the campaign allows; an
        allowed one gets the CORS headers on the answer, errors included."""
        origin = request_origin(self.request)
        if not origin or is_same_origin(self.request, origin):
            return
        self.cors_origin = cors_origin_allowed(self.request, campaign)
        if self.cors_origin is None:
            raise OriginNotAllowed()


class PublicDecisionCreateView(PublicCampaignAPIView):
    """POST: the snippet asks which variant this visitor gets (no key). A visitor who consented on the campaign's
    consent page is recognised by that page's cookie, sent with credentials."""

    @extend_schema(
        operation_id="public_decision_create",
        request=PublicDecisionRequestSerializer,
        responses={
            200: DecisionSerializer,
            403: error_response("The request's Origin is not one the campaign allows."),
            404: error_response("No such campaign."),
            409: error_response("The campaign is not running (`campaign_not_running`), has ended (`campaign_ended`) "
                                "or has no default variant."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = PublicDecisionRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        campaign = found_or_404(campaign_get_by_public_id(public_id=data["campaign"]), message=NO_CAMPAIGN)
        self.origin_check(campaign)
        header = settings.VISAGE_COUNTRY_HEADER
        attributes = _attributes(
            data.get("context") or {}, user_agent=request.headers.get("User-Agent", "")[:500],
            accept_language=request.headers.get("Accept-Language", "")[:200],
            country=request.headers.get(header, "")[:8] if header else "",
        )
        decision = decision_make(campaign=campaign, visitor_id=data["visitor_id"],
                                 subject=cookie_subject(request, campaign), attributes=attributes, channel="snippet")
        return Response(decision_body(decision))


class PublicEventCreateView(PublicCampaignAPIView):
    """POST: the snippet records an impression, click, conversion or custom event on a decision it was given; the
    visitor id must be the decision's."""

    @extend_schema(
        operation_id="public_event_create",
        request=PublicEventRequestSerializer,
        responses={
            201: EventSerializer,
            200: EventSerializer,
            403: error_response("The request's Origin is not one the decision's campaign allows."),
            404: error_response("No such decision for this visitor."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = PublicEventRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        decision = found_or_404(decision_get_public(public_id=data["decision"]), message=NO_DECISION)
        self.origin_check(decision.campaign)
        event, created = event_record(
            organization=decision.campaign.organization, decision_public_id=decision.public_id,
            visitor_id=data["visitor_id"], kind=data["kind"], name=data["name"], value=data["value"],
            currency=data["currency"], client_event_id=data["client_event_id"], occurred_at=data["occurred_at"],
        )
        return Response(_event_body(event), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
