"""Experiments in the admin: created with their arms through the service (refusals shown, nothing written), a
running experiment's new weights refused until "Start a new phase" is ticked, started and stopped by actions,
and another organization's experiments and variants out of sight."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import Campaign, Experiment, ExperimentPhase
from tests.factories import make_campaign, make_experiment, make_member, make_notice, make_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(org_a) -> Campaign:
    make_notice(org_a)
    campaign = make_campaign(org_a)
    for key in ("control", "bold"):
        make_variant(campaign, key=key, default=key == "control")
    return campaign


def _client(org) -> Client:
    client = Client()
    client.force_login(make_member(org))
    return client


def _form(target: Campaign, arms: list[tuple[int, float]], *, initial: int = 0, ids: list[int] | None = None,
          **fields) -> dict:
    data = {
        "campaign": target.pk, "key": "headline", "name": "Headline", "hypothesis": "", "kind": "ab",
        "coverage": 1.0, "holdout": 0.0, "seed": "abc", "custom_events_text": "signup", "sequential": "on",
        "bandit_cadence_seconds": 3600, "bandit_burn_in_per_arm": 100,
        "arms-TOTAL_FORMS": len(arms), "arms-INITIAL_FORMS": initial, "arms-MIN_NUM_FORMS": 0,
        "arms-MAX_NUM_FORMS": 1000,
    }
    for i, (variant_id, weight) in enumerate(arms):
        data[f"arms-{i}-variant"] = variant_id
        data[f"arms-{i}-weight"] = weight
        if ids:
            data[f"arms-{i}-id"] = ids[i]
            data[f"arms-{i}-experiment"] = data.get("_experiment", "")
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_a_marketer_creates_an_experiment_with_its_arms(campaign, org_a) -> None:
    client = _client(org_a)
    control, bold = campaign.variants.get(key="control"), campaign.variants.get(key="bold")
    response = client.post("/admin/campaigns/experiment/add/", _form(campaign, [(control.pk, 0.4), (bold.pk, 0.6)]))
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert experiment.organization == org_a and experiment.custom_events == ["signup"]
    assert [(a.variant.key, a.weight) for a in experiment.arms.order_by("position")] == [("control", 0.4),
                                                                                        ("bold", 0.6)]


def test_weights_that_do_not_sum_to_one_are_shown_and_nothing_is_written(campaign, org_a) -> None:
    client = _client(org_a)
    control, bold = campaign.variants.get(key="control"), campaign.variants.get(key="bold")
    response = client.post("/admin/campaigns/experiment/add/", _form(campaign, [(control.pk, 0.4), (bold.pk, 0.4)]))
    assert response.status_code == 200 and "must sum to 1" in response.content.decode()
    assert not Experiment.objects.exists()


def test_a_variant_of_another_campaign_is_refused(campaign, org_a) -> None:
    other = make_campaign(org_a)
    stranger = make_variant(other, key="stranger", default=True)
    control = campaign.variants.get(key="control")
    response = _client(org_a).post("/admin/campaigns/experiment/add/",
                                   _form(campaign, [(control.pk, 0.5), (stranger.pk, 0.5)]))
    assert response.status_code == 200 and "No such variant in this campaign" in response.content.decode()
    assert not Experiment.objects.exists()


def test_a_running_experiments_new_weights_need_a_new_phase_ticked(campaign, org_a) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="headline", seed="abc",
                                 custom_events=["signup"])
    arms = list(experiment.arms.order_by("position"))
    url = f"/admin/campaigns/experiment/{experiment.pk}/change/"
    client = _client(org_a)
    form = _form(campaign, [(arms[0].variant_id, 0.2), (arms[1].variant_id, 0.8)], initial=2,
                 ids=[a.pk for a in arms], campaign=None, seed=None, kind=None)
    for i in range(2):
        form[f"arms-{i}-experiment"] = experiment.pk
    warned = client.post(url, form)
    assert warned.status_code == 200 and "starts a new phase" in warned.content.decode()
    assert ExperimentPhase.objects.filter(experiment=experiment).count() == 1
    confirmed = client.post(url, {**form, "start_new_phase": "on"})
    assert confirmed.status_code == 302, confirmed.content.decode()[:3000]
    phases = list(ExperimentPhase.objects.filter(experiment=experiment).order_by("number"))
    assert len(phases) == 2 and phases[1].weights == [0.2, 0.8] and phases[0].ended_at is not None


def test_start_and_stop_actions_go_through_the_service(campaign, org_a) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], start=False)
    client = _client(org_a)
    changelist = "/admin/campaigns/experiment/"
    client.post(changelist, {"action": "start", "_selected_action": [experiment.pk]})
    experiment.refresh_from_db()
    assert experiment.status == "running" and experiment.phases.count() == 1
    client.post(changelist, {"action": "stop", "_selected_action": [experiment.pk]})
    experiment.refresh_from_db()
    assert experiment.status == "stopped"


def test_another_organizations_experiments_are_out_of_sight(campaign, org_a, org_b) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="secret-test")
    client = _client(org_b)
    assert "secret-test" not in client.get("/admin/campaigns/experiment/").content.decode()
    assert client.get(f"/admin/campaigns/experiment/{experiment.pk}/change/").status_code in (302, 404)
    add = client.get("/admin/campaigns/experiment/add/").content.decode()
    assert campaign.name not in add and "control" not in add.split("arms")[-1]


def test_a_bandit_needs_no_weights_and_an_ab_test_missing_one_is_told(campaign, org_a) -> None:
    client = _client(org_a)
    control, bold = campaign.variants.get(key="control"), campaign.variants.get(key="bold")
    missing = client.post("/admin/campaigns/experiment/add/", _form(campaign, [(control.pk, 1.0), (bold.pk, "")]))
    assert missing.status_code == 200 and "arms[1].weight" in missing.content.decode()
    assert not Experiment.objects.exists()
    bandit = client.post("/admin/campaigns/experiment/add/",
                         _form(campaign, [(control.pk, ""), (bold.pk, "")], kind="bandit"))
    assert bandit.status_code == 302, bandit.content.decode()[:3000]
    assert [a.weight for a in Experiment.objects.get().arms.order_by("position")] == [0.5, 0.5]


def test_a_member_who_may_only_view_cannot_start_an_experiment(campaign, org_a) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], start=False)
    client = Client()
    client.force_login(make_member(org_a, role="analyst"))
    client.post("/admin/campaigns/experiment/", {"action": "start", "_selected_action": [experiment.pk]})
    experiment.refresh_from_db()
    assert experiment.status == "draft"
