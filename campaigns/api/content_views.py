"""The partner API for campaigns, their variants and their rules. Every lookup goes through a selector scoped to
the caller's organization (missing and foreign are the same 404); every write is one service call; a refusal is
a 400 (or 409) in the one error shape with the `path` of the offending member."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrganizationAPIView, found_or_404
from campaigns import content, selectors, services
from campaigns.api.serializers import (
    CampaignDetailSerializer,
    CampaignRequest,
    CampaignSerializer,
    RuleRequest,
    RuleSerializer,
    VariantRequest,
    VariantSerializer,
)
from campaigns.models import Campaign, Rule, Variant
from config.api.errors import DomainErrorsMixin
from config.api.schema import error_response

_CONFLICT = error_response("The campaign's state does not allow this: a status it cannot move to "
                           "(`status_transition_not_allowed`) or is not ready for (`campaign_not_ready`).")
_INVALID = error_response("A member is invalid; `path` names it (`rules[2].condition.all[1].value`). Nothing was "
                          "written.")


class CampaignAPIView(DomainErrorsMixin, OrganizationAPIView):
    """Base of the campaign views: the caller's campaign by public id, content refusals rendered."""

    domain_errors = (content.ContentError,)

    def get_campaign(self, public_id: str) -> Campaign:
        return found_or_404(selectors.campaign_get(organization=self.organization, public_id=public_id))



def _detail(campaign: Campaign) -> dict[str, Any]:
    return CampaignDetailSerializer(selectors.campaign_with_content(campaign=campaign)).data


class CampaignListView(CampaignAPIView, ListAPIView):
    """GET: the organization's campaigns, newest first. POST: create one, its variants and rules with it."""

    serializer_class = CampaignSerializer

    def get_queryset(self):
        return selectors.campaign_list(organization=self.organization)

    @extend_schema(request=CampaignRequest, responses={201: CampaignDetailSerializer, 400: _INVALID, 409: _CONFLICT})
    def post(self, request: Request) -> Response:
        campaign = services.campaign_create(organization=self.organization, data=request.data)
        return Response(_detail(campaign), status=status.HTTP_201_CREATED)


class CampaignDetailView(CampaignAPIView):
    """One campaign with its variants and rules; PATCH changes the members given (variants and rules, when
    given, replace the whole content)."""

    @extend_schema(responses=CampaignDetailSerializer)
    def get(self, request: Request, public_id: str) -> Response:
        return Response(_detail(self.get_campaign(public_id)))

    @extend_schema(request=CampaignRequest, responses={200: CampaignDetailSerializer, 400: _INVALID, 409: _CONFLICT})
    def patch(self, request: Request, public_id: str) -> Response:
        campaign = services.campaign_update(campaign=self.get_campaign(public_id), data=request.data)
        return Response(_detail(campaign))


class VariantListView(CampaignAPIView):
    """GET: a campaign's variants, the default first. POST: add one."""

    @extend_schema(responses=VariantSerializer(many=True))
    def get(self, request: Request, public_id: str) -> Response:
        campaign = self.get_campaign(public_id)
        return Response(VariantSerializer(selectors.variant_list(campaign=campaign), many=True).data)

    @extend_schema(request=VariantRequest, responses={201: VariantSerializer, 400: _INVALID})
    def post(self, request: Request, public_id: str) -> Response:
        variant = content.variant_save(campaign=self.get_campaign(public_id), variant=None, data=request.data)
        return Response(VariantSerializer(variant).data, status=status.HTTP_201_CREATED)


class VariantDetailView(CampaignAPIView):
    """One variant of a campaign, by key."""

    def get_variant(self, public_id: str, key: str) -> tuple[Campaign, Variant]:
        campaign = self.get_campaign(public_id)
        return campaign, found_or_404(selectors.variant_get(campaign=campaign, key=key))

    @extend_schema(responses=VariantSerializer)
    def get(self, request: Request, public_id: str, key: str) -> Response:
        return Response(VariantSerializer(self.get_variant(public_id, key)[1]).data)

    @extend_schema(request=VariantRequest, responses={200: VariantSerializer, 400: _INVALID})
    def patch(self, request: Request, public_id: str, key: str) -> Response:
        campaign, variant = self.get_variant(public_id, key)
        variant = content.variant_save(campaign=campaign, variant=variant, data=request.data)
        return Response(VariantSerializer(variant).data)

    @extend_schema(
        responses={204: None, 409: error_response("The default variant, one that rules point at, or one with "
                                                  "decisions in the log cannot be deleted.")},
    )
    def delete(self, request: Request, public_id: str, key: str) -> Response:
        content.variant_delete(variant=self.get_variant(public_id, key)[1])
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleListView(CampaignAPIView):
    """GET: a campaign's rules in the order they are tried. POST: add one."""

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request: Request, public_id: str) -> Response:
        campaign = self.get_campaign(public_id)
        return Response(RuleSerializer(selectors.rule_list(campaign=campaign), many=True).data)

    @extend_schema(request=RuleRequest, responses={201: RuleSerializer, 400: _INVALID})
    def post(self, request: Request, public_id: str) -> Response:
        rule = content.rule_save(campaign=self.get_campaign(public_id), rule=None, data=request.data)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(CampaignAPIView):
    """One rule of a campaign, by id."""

    def get_rule(self, public_id: str, rule_id: int) -> tuple[Campaign, Rule]:
        campaign = self.get_campaign(public_id)
        return campaign, found_or_404(selectors.rule_get(campaign=campaign, rule_id=rule_id))

    @extend_schema(responses=RuleSerializer)
    def get(self, request: Request, public_id: str, rule_id: int) -> Response:
        return Response(RuleSerializer(self.get_rule(public_id, rule_id)[1]).data)

    @extend_schema(request=RuleRequest, responses={200: RuleSerializer, 400: _INVALID})
    def patch(self, request: Request, public_id: str, rule_id: int) -> Response:
        campaign, rule = self.get_rule(public_id, rule_id)
        return Response(RuleSerializer(content.rule_save(campaign=campaign, rule=rule, data=request.data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, public_id: str, rule_id: int) -> Response:
        content.rule_delete(rule=self.get_rule(public_id, rule_id)[1])
        return Response(status=status.HTTP_204_NO_CONTENT)
