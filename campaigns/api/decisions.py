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
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.models import ApiKey
from campaigns.api.decision_serializers import (
    DecisionSerializer,
    EventRequestSerializer,
    EventSerializer,
    PartnerDecisionRequestSerializer,
    PublicDecisionRequestSerializer,
    PublicEventRequestSerializer,
    decision_body,
)
from campaigns.decisions import DecisionError, decision_make, event_record
from campaigns.models import Campaign
from campaigns.request_context import RequestAttributes, request_attributes
from campaigns.selectors import (
    campaign_get,
    campaign_get_by_public_id,
    campaign_origin_allowed_anywhere,
    decision_get_public,
)
from config.api.schema import error_response
from consent.models import Subject
from consent.pages import access_cookie_get
from consent.selectors import subject_get, subject_get_by_access_token

NO_CAMPAIGN = "No such campaign."
NO_DECISION = "No such decision."
CORS_ALLOWED_HEADERS = "Content-Type"
CORS_MAX_AGE_SECONDS = 600


class DecisionAPIError(exceptions.APIException):
    """A DecisionError in the one error shape, with its own status and code."""

    def __init__(self, error: DecisionError) -> None:
        self.status_code = error.status_code
        super().__init__(detail=error.message, code=error.code)
        self.details = error.details


class DecisionErrorsMixin:
    """Renders DecisionError as the API's error (its details included)."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DecisionError):
            exc = DecisionAPIError(exc)
        response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, DecisionAPIError) and exc.details:
            response.data["error"]["details"] = exc.details
        return response


def _attributes(context: dict[str, Any], **request_side: str) -> RequestAttributes:
    return request_attributes(
        language=context.get("language", ""), timezone=context.get("timezone", ""), url=context.get("url", ""),
        referrer=context.get("referrer", ""), now=timezone.now(), **request_side,
    )


def _event_body(event: Any) -> dict[str, Any]:
    return EventSerializer(event).data


# --- The partner's server -----------------------------------------------------------------------------------------


class DecisionCreateView(DecisionErrorsMixin, OrganizationAPIView):
    """POST: decide which variant a visitor gets in one of your running campaigns, and log it."""

    required_scope = ApiKey.Scope.DECIDE

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


class EventCreateView(DecisionErrorsMixin, OrganizationAPIView):
    """POST: record an impression, click, conversion or custom event on one of your decisions."""

    required_scope = ApiKey.Scope.DECIDE

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


class PublicCampaignAPIView(DecisionErrorsMixin, APIView):
    """Base of the snippet's endpoints: no key, CORS with credentials for the campaign's allowed origins only."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    cors_origin: str = ""

    def _origin(self) -> str:
        return self.request.headers.get("Origin", "")

    def _same_origin(self, origin: str) -> bool:
        return origin == f"{self.request.scheme}://{self.request.get_host()}"

    def origin_check(self, campaign: Campaign) -> None:
        """403 when the request names an Origin that is neither Visage's own nor one the campaign allows; an
        allowed one gets the CORS headers on the answer, errors included."""
        origin = self._origin()
        if not origin or self._same_origin(origin):
            return
        if origin not in campaign.allowed_origin_list:
            raise OriginNotAllowed()
        self.cors_origin = origin

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A CORS preflight: answered for an origin some campaign allows (the request itself names its campaign
        and is held to that campaign's list), refused otherwise."""
        origin = self._origin()
        if origin and not self._same_origin(origin):
            if not campaign_origin_allowed_anywhere(origin=origin):
                raise OriginNotAllowed()
            self.cors_origin = origin
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
        return response

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cors_origin:
            response["Access-Control-Allow-Origin"] = self.cors_origin
            response["Access-Control-Allow-Credentials"] = "true"
        patch_vary_headers(response, ["Origin"])
        return response


def _cookie_subject(request: Request, campaign: Campaign) -> Subject | None:
    """The subject the campaign's consent page recognised in this browser (its signed, HttpOnly cookie), when of
    the campaign's organization; None for anyone else."""
    subject = subject_get_by_access_token(token=access_cookie_get(request, key=campaign.public_id))
    if subject is None or subject.organization_id != campaign.organization_id:
        return None
    return subject


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
                                 subject=_cookie_subject(request, campaign), attributes=attributes, channel="snippet")
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
