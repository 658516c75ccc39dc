"""Experiments: the API and services that create, change, start and stop them (bad input refused with its path and
nothing changed; a change that moves visitors needs a new phase), and how decisions assign visitors: rules first,
then GrowthBook's hash v2 over the phase's weights and coverage, sticky across a bandit's reweighting, with a
holdout that sees the default."""

from __future__ import annotations

import pytest

from campaigns.assignment import assign, bucket_ranges
from campaigns.decisions import decision_make
from campaigns.experiments import bandit_reweight, experiment_update
from campaigns.models import Allocation, Campaign, Decision, Experiment, ExperimentPhase, Exposure
from campaigns.request_context import RequestAttributes
from tests.conftest import api_client
from tests.error_shape import is_error_body
from tests.factories import make_api_key, make_campaign, make_experiment, make_notice, make_rule, make_variant

pytestmark = pytest.mark.django_db

ATTRIBUTES = RequestAttributes(device="desktop", language="en", country="")


@pytest.fixture
def campaign(org_a) -> Campaign:
    make_notice(org_a)
    campaign = make_campaign(org_a)
    make_variant(campaign, key="control", default=True)
    make_variant(campaign, key="bold")
    make_variant(campaign, key="calm")
    return campaign


def visitor(i: int) -> str:
    return f"visitor-{i:012d}"


def decide(campaign: Campaign, i: int, attributes: RequestAttributes = ATTRIBUTES) -> Decision:
    return decision_make(campaign=campaign, visitor_id=visitor(i), subject=None, attributes=attributes,
                         channel="api")


# --- The API ------------------------------------------------------------------------------------------------------


def _url(campaign: Campaign, suffix: str = "") -> str:
    return f"/api/v1/campaigns/{campaign.public_id}/experiments/{suffix}"


AB = {"key": "headline", "name": "Headline", "arms": [{"variant": "control", "weight": 0.5},
                                                      {"variant": "bold", "weight": 0.5}]}


def test_create_start_and_read_an_experiment_through_the_api(campaign) -> None:
    client = api_client(make_api_key(campaign.organization)[1])
    created = client.post(_url(campaign), AB, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "draft" and [a["variant"] for a in body["arms"]] == ["control", "bold"]
    assert body["arms"][0]["control"] is True and body["phases"] == []
    started = client.post(_url(campaign, "headline/start/"))
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert started.json()["phases"][0]["weights"] == [0.5, 0.5]
    assert client.get(_url(campaign)).json()[0]["key"] == "headline"
    stopped = client.post(_url(campaign, "headline/stop/"))
    assert stopped.json()["status"] == "stopped" and stopped.json()["phases"][0]["ended_at"]


BAD_BODIES = [
    ({"arms": [{"variant": "control", "weight": -0.5}, {"variant": "bold", "weight": 1.5}]}, "arms[0].weight"),
    ({"arms": [{"variant": "control", "weight": 0.6}, {"variant": "bold", "weight": 0.6}]}, "arms"),
    ({"arms": [{"variant": "control", "weight": 0.3}, {"variant": "bold", "weight": 0.3}]}, "arms"),
    ({"arms": [{"variant": "control", "weight": 0.5}, {"weight": 0.5}]}, "arms[1].variant"),
    ({"arms": [{"variant": "control", "weight": 0.5}, {"variant": None, "weight": 0.5}]}, "arms[1].variant"),
    ({"arms": [{"variant": "control", "weight": 0.5}, {"variant": "nope", "weight": 0.5}]}, "arms[1].variant"),
    ({"arms": [{"variant": "control", "weight": 0.5}, {"variant": "control", "weight": 0.5}]}, "arms[1].variant"),
    ({"arms": [{"variant": "control", "weight": 1.0}]}, "arms"),
    ({"arms": [{"variant": "control", "weight": "half"}, {"variant": "bold", "weight": 0.5}]}, "arms[0].weight"),
    ({"arms": [{"variant": "control"}, {"variant": "bold", "weight": 1}]}, "arms[0].weight"),
    ({"coverage": 0}, "coverage"),
    ({"coverage": 1.01}, "coverage"),
    ({"coverage": -0.2}, "coverage"),
    ({"holdout": 0.9}, "holdout"),
    ({"kind": "casino"}, "kind"),
    ({"custom_events": ["ok", "bad name!"]}, "custom_events[1]"),
    ({"arms": "control,bold"}, "arms"),
    ({"surprise": 1}, "surprise"),
    ({"key": "Not A Slug"}, "key"),
]


@pytest.mark.parametrize(("change", "path"), BAD_BODIES)
def test_bad_experiment_bodies_are_400_at_their_path_and_write_nothing(campaign, change, path) -> None:
    client = api_client(make_api_key(campaign.organization)[1])
    response = client.post(_url(campaign), {**AB, **change}, format="json")
    assert response.status_code == 400, response.content
    assert is_error_body(response.json()) and response.json()["error"]["path"] == path
    assert not Experiment.objects.exists()


def test_non_json_and_non_object_bodies_are_400(campaign) -> None:
    client = api_client(make_api_key(campaign.organization)[1])
    assert client.post(_url(campaign), [1, 2], format="json").status_code == 400
    assert client.post(_url(campaign), "x", content_type="application/json").status_code == 400
    nan = '{"key": "k", "name": "K", "arms": [{"variant": "control", "weight": NaN}, {"variant": "bold", "weight": 1}]}'
    assert client.post(_url(campaign), nan, content_type="application/json").status_code == 400
    assert not Experiment.objects.exists()


def test_an_arm_with_a_variant_of_another_campaign_is_refused(campaign, org_a) -> None:
    other = make_campaign(org_a)
    make_variant(other, key="elsewhere", default=True)
    client = api_client(make_api_key(org_a)[1])
    body = {**AB, "arms": [{"variant": "control", "weight": 0.5}, {"variant": "elsewhere", "weight": 0.5}]}
    response = client.post(_url(campaign), body, format="json")
    assert response.status_code == 400 and response.json()["error"]["path"] == "arms[1].variant"


def test_a_running_experiment_keeps_its_seed_and_needs_a_new_phase_for_new_weights(campaign) -> None:
    client = api_client(make_api_key(campaign.organization)[1])
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="headline", seed="fixed")
    seed = client.patch(_url(campaign, "headline/"), {"seed": "another"}, format="json")
    assert seed.status_code == 409 and seed.json()["error"]["code"] == "seed_locked"
    assert seed.json()["error"]["path"] == "seed"
    weights = {"arms": [{"variant": "control", "weight": 0.2}, {"variant": "bold", "weight": 0.8}]}
    refused = client.patch(_url(campaign, "headline/"), weights, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "new_phase_required"
    experiment = Experiment.objects.get()
    assert experiment.seed == "fixed" and list(experiment.arms.values_list("weight", flat=True)) == [0.5, 0.5]
    assert ExperimentPhase.objects.count() == 1
    accepted = client.patch(_url(campaign, "headline/"), {**weights, "start_new_phase": True}, format="json")
    assert accepted.status_code == 200, accepted.content
    phases = accepted.json()["phases"]
    assert [p["number"] for p in phases] == [1, 2] and phases[0]["ended_at"] and phases[1]["weights"] == [0.2, 0.8]
    # a name change is not a new phase
    assert client.patch(_url(campaign, "headline/"), {"name": "Renamed"}, format="json").status_code == 200
    assert ExperimentPhase.objects.count() == 2


def test_only_one_experiment_of_a_campaign_runs_at_a_time(campaign) -> None:
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="first")
    client = api_client(make_api_key(campaign.organization)[1])
    assert client.post(_url(campaign), {**AB, "key": "second"}, format="json").status_code == 201
    response = client.post(_url(campaign, "second/start/"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "experiment_running"
    assert Experiment.objects.get(key="second").status == "draft"


def test_another_organizations_campaign_and_its_experiments_are_404(campaign, org_b) -> None:
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="headline")
    foreign = api_client(make_api_key(org_b)[1])
    for url in (_url(campaign), _url(campaign, "headline/"), f"/api/v1/campaigns/{campaign.public_id}/results/"):
        response = foreign.get(url)
        assert response.status_code == 404 and is_error_body(response.json())
    assert foreign.post(_url(campaign, "headline/stop/")).status_code == 404
    assert foreign.patch(_url(campaign, "headline/"), {"name": "x"}, format="json").status_code == 404
    assert Experiment.objects.get().status == "running"


def test_a_read_only_key_cannot_change_experiments(campaign) -> None:
    reader = api_client(make_api_key(campaign.organization, scopes=("read",))[1])
    assert reader.post(_url(campaign), AB, format="json").status_code == 403
    assert reader.get(_url(campaign)).status_code == 200


# --- Assignment in decisions ------------------------------------------------------------------------------------


def test_visitors_get_the_arm_growthbook_hashing_gives_and_keep_it(campaign) -> None:
    experiment = make_experiment(campaign, [("control", 0.3), ("bold", 0.7)], key="headline", seed="s33d")
    ranges = bucket_ranges([0.3, 0.7], 1.0)
    keys = ["control", "bold"]
    for i in range(60):
        decision = decide(campaign, i)
        expected = assign(seed="s33d", visitor_id=visitor(i), ranges=ranges, holdout=0.0).arm
        assert decision.reason == "experiment" and decision.variant.key == keys[expected]
        assert decide(campaign, i).variant.key == keys[expected]  # sticky on the next page view
    assert Exposure.objects.filter(experiment=experiment).count() == 60  # one per visitor and phase
    counts = {k: Decision.objects.filter(reason="experiment", variant__key=k).count() for k in keys}
    assert counts["bold"] > counts["control"]


def test_a_rule_that_matches_comes_before_the_experiment(campaign) -> None:
    calm = campaign.variants.get(key="calm")
    make_rule(campaign, calm, {"field": "request.device", "op": "eq", "value": "mobile"}, priority=1)
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)])
    mobile = decide(campaign, 1, RequestAttributes(device="mobile", language="en", country=""))
    assert mobile.reason == "rule" and mobile.variant.key == "calm" and mobile.experiment_arm_id is None
    assert not Exposure.objects.filter(visitor_id=visitor(1)).exists()
    desktop = decide(campaign, 2)
    assert desktop.reason == "experiment" and desktop.experiment_arm_id is not None


def test_coverage_lets_only_its_share_in_and_the_rest_get_the_default(campaign) -> None:
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], coverage=0.2, seed="cov")
    decisions = [decide(campaign, i) for i in range(400)]
    entered = [d for d in decisions if d.reason == "experiment"]
    assert 40 <= len(entered) <= 120  # 20 % of 400 = 80, sd 8
    outside = [d for d in decisions if d.reason != "experiment"]
    assert all(d.variant.key == "control" and d.reason == "default" for d in outside)
    ranges = bucket_ranges([0.5, 0.5], 0.2)
    for d in decisions:
        assert (d.reason == "experiment") == assign(seed="cov", visitor_id=d.visitor_id, ranges=ranges,
                                                    holdout=0).entered


def test_the_holdout_sees_the_default_and_is_recorded_without_an_arm(campaign) -> None:
    make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], holdout=0.3, seed="hold")
    decisions = [decide(campaign, i) for i in range(300)]
    held = [d for d in decisions if d.reason == "holdout"]
    assert 50 <= len(held) <= 130  # 30 % of 300 = 90, sd 8
    assert all(d.variant.key == "control" and d.experiment_arm_id is None for d in held)
    assert Exposure.objects.filter(arm__isnull=True).count() == len(held)
    again = decide(campaign, int(held[0].visitor_id.split("-")[1]))
    assert again.reason == "holdout"


def test_a_bandits_new_weights_keep_earlier_visitors_in_their_arm(campaign) -> None:
    experiment = make_experiment(campaign, [("control", None), ("bold", None), ("calm", None)], kind="bandit",
                                 bandit_burn_in_per_arm=1)
    first = {i: decide(campaign, i).variant.key for i in range(30)}
    phase = ExperimentPhase.objects.get(experiment=experiment)
    Allocation.objects.create(organization=campaign.organization, phase=phase, number=1,
                              weights=[0.98, 0.01, 0.01], note="test")
    from campaigns.decisions import campaign_plan_changed

    campaign_plan_changed(campaign_id=campaign.pk)
    assert {i: decide(campaign, i).variant.key for i in range(30)} == first
    newcomers = [decide(campaign, 1000 + i) for i in range(60)]
    assert sum(d.variant.key == "control" for d in newcomers) >= 50
    assert set(Exposure.objects.filter(visitor_id__startswith="visitor-0000000010").values_list(
        "allocation_number", flat=True)) == {1}


def test_bandit_reweighting_writes_the_history_of_weights(campaign) -> None:
    experiment = make_experiment(campaign, [("control", None), ("bold", None)], kind="bandit",
                                 bandit_burn_in_per_arm=100)
    for i in range(20):
        decide(campaign, i)
    allocation = bandit_reweight(experiment=experiment, now=experiment.started_at)
    assert allocation.number == 1 and allocation.note == "burn_in" and allocation.weights == [0.5, 0.5]
    assert allocation.visitors == 20


def test_a_stopped_experiment_no_longer_assigns(campaign) -> None:
    experiment = make_experiment(campaign, [("control", 0.0), ("bold", 1.0)])
    assert decide(campaign, 1).variant.key == "bold"
    from campaigns.experiments import experiment_stop

    experiment_stop(experiment=experiment)
    assert decide(campaign, 1).reason == "default"
    experiment_update(experiment=experiment, data={"name": "After"})
    assert decide(campaign, 2).reason == "default"


def test_the_decision_answer_names_the_experiment_and_arm(campaign) -> None:
    key = make_api_key(campaign.organization, scopes=("decide",))[1]
    make_experiment(campaign, [("control", 0.0), ("bold", 1.0)], key="headline")
    response = api_client(key).post("/api/v1/decisions/", {"campaign": campaign.public_id,
                                                            "visitor_id": visitor(5)}, format="json")
    assert response.status_code == 200, response.content
    reason = response.json()["reason"]
    assert reason == {"kind": "experiment", "rule": None, "experiment": "headline", "experiment_arm": "bold"}


def test_beat_reweights_a_bandit_once_its_cadence_has_passed(campaign) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from config.celery import app as visage_app

    entry = settings.CELERY_BEAT_SCHEDULE["campaigns-reweight-bandits"]
    visage_app.loader.import_default_modules()
    task = visage_app.tasks[entry["task"]]
    experiment = make_experiment(campaign, [("control", None), ("bold", None)], kind="bandit",
                                 bandit_cadence_seconds=3600)
    assert task.apply().get() == {"reweighted": 0}  # its allocation 0 is brand new
    Allocation.objects.filter(phase__experiment=experiment).update(starts_at=timezone.now() - timedelta(hours=2))
    assert task.apply().get() == {"reweighted": 1}
    assert list(Allocation.objects.filter(phase__experiment=experiment).values_list("number", flat=True)) == [0, 1]
    assert task.apply().get() == {"reweighted": 0}  # the new one is within the cadence
