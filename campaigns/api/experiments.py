"""The partner API for a campaign's experiments (create, change, start, stop) and its results (JSON or CSV).
Lookups go through selectors scoped to the caller's organization: a foreign campaign is a 404 like a missing one."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import found_or_404
from campaigns import experiments, selectors
from campaigns.api.content_views import CampaignAPIView
from campaigns.api.experiment_serializers import ExperimentRequest, ExperimentSerializer
from campaigns.content import ContentError
from campaigns.models import Campaign, Experiment
from campaigns.results import experiment_results
from campaigns.results_export import results_csv
from config.api.schema import error_response

_INVALID = error_response("A member is invalid; `path` names it (`arms[1].weight`). Nothing was written.")
_CONFLICT = error_response("Not now: `new_phase_required`, `seed_locked`, `experiment_running`, "
                           "`experiment_not_running` or `experiment_not_ready`.")


class ExperimentAPIView(CampaignAPIView):
    def get_experiment(self, public_id: str, key: str) -> Experiment:
        campaign = self.get_campaign(public_id)
        return found_or_404(selectors.experiment_get(campaign=campaign, key=key))


class ExperimentListView(ExperimentAPIView):
    """GET: a campaign's experiments, newest first. POST: create a draft one."""

    @extend_schema(responses=ExperimentSerializer(many=True))
    def get(self, request: Request, public_id: str) -> Response:
        campaign = self.get_campaign(public_id)
        return Response(ExperimentSerializer(selectors.experiment_list(campaign=campaign), many=True).data)

    @extend_schema(request=ExperimentRequest, responses={201: ExperimentSerializer, 400: _INVALID, 409: _CONFLICT})
    def post(self, request: Request, public_id: str) -> Response:
        experiment = experiments.experiment_create(campaign=self.get_campaign(public_id), data=request.data)
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(ExperimentAPIView):
    """One experiment; PATCH changes the members given (a running one's arms, weights, coverage or holdout only
    with `start_new_phase`)."""

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request: Request, public_id: str, key: str) -> Response:
        return Response(ExperimentSerializer(self.get_experiment(public_id, key)).data)

    @extend_schema(request=ExperimentRequest, responses={200: ExperimentSerializer, 400: _INVALID, 409: _CONFLICT})
    def patch(self, request: Request, public_id: str, key: str) -> Response:
        experiment = experiments.experiment_update(experiment=self.get_experiment(public_id, key), data=request.data)
        return Response(ExperimentSerializer(experiment).data)


class ExperimentStartView(ExperimentAPIView):
    """Run the experiment: a new phase opens (409 while another experiment of the campaign runs)."""

    @extend_schema(request=None, responses={200: ExperimentSerializer, 409: _CONFLICT})
    def post(self, request: Request, public_id: str, key: str) -> Response:
        experiment = experiments.experiment_start(experiment=self.get_experiment(public_id, key))
        return Response(ExperimentSerializer(experiment).data)


class ExperimentStopView(ExperimentAPIView):
    """Stop the experiment: its phase ends."""

    @extend_schema(request=None, responses={200: ExperimentSerializer, 409: _CONFLICT})
    def post(self, request: Request, public_id: str, key: str) -> Response:
        experiment = experiments.experiment_stop(experiment=self.get_experiment(public_id, key))
        return Response(ExperimentSerializer(experiment).data)


def _phase_number(raw: str | None) -> int | None:
    try:
        return selectors.phase_number_parse(raw)
    except ValueError:
        raise ContentError("phase", "Give a phase number.") from None


def results_for(campaign: Campaign, *, experiment_key: str | None, phase: str | None) -> dict:
    """The results of the campaign's experiment (`experiment_key`, else selectors.experiment_current) and phase
    (else the latest); 404 when there is no such experiment or phase."""
    experiment = (
        selectors.experiment_get(campaign=campaign, key=experiment_key) if experiment_key
        else selectors.experiment_current(campaign=campaign)
    )
    experiment = found_or_404(experiment)
    return found_or_404(experiment_results(experiment, phase_number=_phase_number(phase)))


class ResultsNegotiation(BaseContentNegotiation):
    """`format` is this endpoint's own parameter (json or csv), not DRF's renderer override: answers are JSON,
    and the CSV is a plain HttpResponse."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CampaignResultsView(CampaignAPIView):
    """The results of a campaign's experiment for one phase: per arm and metric the statistics of the report page,
    the sample-ratio check, days, bandit weights, breakdowns and the consent funnel (docs/experiments.md).
    `format=csv` answers the same as CSV, one row per metric and arm."""

    content_negotiation_class = ResultsNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("experiment", OpenApiTypes.STR, description="An experiment key; default: the running "
                             "one, else the latest."),
            OpenApiParameter("phase", OpenApiTypes.INT, description="A phase number; default: the latest."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="Default json."),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: _INVALID, 404: error_response("No such campaign, experiment or "
                                                                                 "phase.")},
    )
    def get(self, request: Request, public_id: str) -> Response | HttpResponse:
        campaign = self.get_campaign(public_id)
        output = request.query_params.get("format", "json")
        if output not in ("json", "csv"):
            raise ContentError("format", "json or csv.")
        results = results_for(campaign, experiment_key=request.query_params.get("experiment"),
                              phase=request.query_params.get("phase"))
        if output == "csv":
            response = HttpResponse(results_csv(results), content_type="text/csv; charset=utf-8")
            filename = f"{campaign.public_id}-{results['experiment']['key']}-phase{results['phase']['number']}.csv"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        return Response(results)
