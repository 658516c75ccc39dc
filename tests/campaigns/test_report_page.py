"""A campaign's report in the admin: scoped to the member's organization (another's is a 404, as a missing one is;
the anonymous are sent to log in), showing what `campaigns.results` computes from rows written through the ORM
(exposures, decisions, conversions, consent ledger), with CSV and JSON exports of the same data, and a campaign
without experiment showing its funnel and rules."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.utils import timezone

from campaigns.models import Decision
from campaigns.results import campaign_overview, experiment_results
from consent.services import consent_grant, consent_refuse, consent_shown, consent_withdraw
from tests.campaigns.experiment_factories import (
    make_arm_visitors,
    make_conversion,
    make_phase,
    make_visitor,
    seed_experiment,
)
from tests.factories import make_campaign, make_member, make_notice, make_rule, make_subject, make_variant

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _report(campaign, suffix: str = "") -> str:
    return f"/admin/campaigns/campaign/{campaign.pk}/report/{suffix}"


@pytest.fixture
def seeded(org_a):
    """A running A/B test, 50/50: control 120 visitors and 12 conversions, treatment 120 and 24, holdout 10 and 1."""
    campaign = make_campaign(org_a)
    control = make_variant(campaign, key="control", default=True)
    treatment = make_variant(campaign, key="bold-offer")
    seeded = seed_experiment(campaign, [control, treatment], weights=[0.5, 0.5], holdout=0.05, key="spring-test",
                             name="Spring test")
    make_arm_visitors(seeded, seeded.arms[0], visitors=120, conversions=12)
    make_arm_visitors(seeded, seeded.arms[1], visitors=120, conversions=24, device="mobile")
    make_arm_visitors(seeded, None, visitors=10, conversions=1)
    return seeded


def _row(html: str, arm_key: str, metric: str = "conversion") -> str:
    block = re.search(rf'data-metric="{re.escape(metric)}".*?</table>', html, re.S)
    assert block, f"no table for {metric}"
    row = re.search(rf'<tr data-arm="{re.escape(arm_key)}".*?</tr>', block.group(0), re.S)
    assert row, f"no row for {arm_key}"
    return re.sub(r"<[^>]+>", " ", row.group(0))


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def test_anonymous_visitors_are_sent_to_log_in(seeded) -> None:
    campaign = seeded.experiment.campaign
    for suffix in ("", "csv/", "json/"):
        response = Client().get(_report(campaign, suffix))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_member_of_another_organization_gets_the_404_of_a_missing_campaign(seeded, org_b) -> None:
    campaign = seeded.experiment.campaign
    stranger = _client(make_member(org_b, role="owner"))
    for suffix in ("", "csv/", "json/"):
        assert stranger.get(_report(campaign, suffix)).status_code == 404
    missing = f"/admin/campaigns/campaign/{campaign.pk + 1000}/report/"
    assert stranger.get(missing).status_code == 404


def test_an_operator_sees_every_organizations_report(seeded) -> None:
    operator = get_user_model().objects.create_superuser("operator", "ops@example.test", "pw-123456!")
    response = _client(operator).get(_report(seeded.experiment.campaign))
    assert response.status_code == 200 and "Spring test" in response.content.decode()


@pytest.mark.parametrize("role", ["owner", "marketer", "analyst"])
def test_report_shows_each_arms_visitors_and_conversions(seeded, org_a, role) -> None:
    response = _client(make_member(org_a, role=role)).get(_report(seeded.experiment.campaign))
    assert response.status_code == 200
    html = response.content.decode()
    control, treatment = _row(html, "control"), _row(html, "bold-offer")
    assert "Control" in control and "120" in _numbers(control) and "12" in _numbers(control)
    assert "Bold-Offer" in treatment and "120" in _numbers(treatment) and "24" in _numbers(treatment)
    holdout = re.sub(r"<[^>]+>", " ", re.search(r'id="report-holdout".*?</tr>', html, re.S).group(0))
    assert "10" in _numbers(holdout) and "1" in _numbers(holdout)
    assert 'id="report-srm"' in html and 'id="report-phases"' in html
    for canvas in ("chart-cumulative", "chart-visitors", "chart-funnel"):
        assert f'id="{canvas}"' in html


def test_report_shows_every_metric_the_results_have_and_says_who_counts_for_reactions(seeded, marketer_a) -> None:
    results = experiment_results(seeded.experiment)
    html = _client(marketer_a).get(_report(seeded.experiment.campaign)).content.decode()
    for metric in results["metrics"]:
        assert f'data-metric="{metric["key"]}"' in html and metric["label"] in html
        for arm in metric["arms"]:
            assert str(arm["n"]) in _numbers(_row(html, arm["key"], metric["key"]))
    reaction = any(metric["reaction"] for metric in results["metrics"])
    assert ("Only visitors who consented to face analysis count" in html) == reaction


def test_report_flags_a_sample_ratio_mismatch(org_a, marketer_a) -> None:
    campaign = make_campaign(org_a)
    control, treatment = make_variant(campaign, key="control", default=True), make_variant(campaign, key="other")
    seeded = seed_experiment(campaign, [control, treatment], weights=[0.5, 0.5])
    make_arm_visitors(seeded, seeded.arms[0], visitors=300, conversions=10)
    make_arm_visitors(seeded, seeded.arms[1], visitors=150, conversions=10)
    html = _client(marketer_a).get(_report(campaign)).content.decode()
    assert "Sample ratio mismatch" in html and "visage-srm-flagged" in html


def test_report_of_a_balanced_test_raises_no_sample_ratio_flag(seeded, marketer_a) -> None:
    html = _client(marketer_a).get(_report(seeded.experiment.campaign)).content.decode()
    assert "Sample ratio mismatch" not in html and "visage-srm-ok" in html


def test_report_shows_the_phase_asked_for_and_lists_the_phases(seeded, marketer_a) -> None:
    experiment = seeded.experiment
    seeded.phase.ended_at = timezone.now() - timedelta(minutes=90)  # after phase 1's last visitor
    seeded.phase.save(update_fields=["ended_at"])
    second = make_phase(experiment, seeded.arms, weights=[0.5, 0.5], number=2,
                        started_at=seeded.phase.ended_at, reason="Weights changed")
    for _ in range(7):
        make_visitor(seeded, seeded.arms[0], converted=False, at=timezone.now() - timedelta(minutes=30), phase=second)
    client = _client(marketer_a)
    latest = client.get(_report(experiment.campaign)).content.decode()
    assert "7" in _numbers(_row(latest, "control")) and "Weights changed" in latest
    first = client.get(_report(experiment.campaign), {"experiment": experiment.key, "phase": 1}).content.decode()
    assert "120" in _numbers(_row(first, "control"))


@pytest.mark.parametrize("query", [{"experiment": "nope"}, {"phase": "9"}, {"phase": "x"}, {"phase": "²"}])
def test_unknown_experiment_or_phase_is_a_404(seeded, marketer_a, query) -> None:
    assert _client(marketer_a).get(_report(seeded.experiment.campaign), query).status_code == 404


def test_report_takes_no_posts(seeded, marketer_a) -> None:
    assert _client(marketer_a).post(_report(seeded.experiment.campaign)).status_code == 405


def test_the_change_page_links_to_the_report(seeded, marketer_a) -> None:
    campaign = seeded.experiment.campaign
    html = _client(marketer_a).get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert f'href="{_report(campaign)}"' in html


def test_csv_export_has_a_row_per_metric_and_arm_and_the_breakdowns(seeded, marketer_a) -> None:
    response = _client(marketer_a).get(_report(seeded.experiment.campaign, "csv/"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    results = experiment_results(seeded.experiment)
    metric_rows = [(r["metric"], r["arm"]) for r in rows if r["section"] == "metric"]
    assert metric_rows == [(m["key"], arm["key"]) for m in results["metrics"] for arm in m["arms"]]
    conversion = {r["arm"]: r for r in rows if r["section"] == "metric" and r["metric"] == "conversion"}
    assert (conversion["control"]["n"], conversion["control"]["count"]) == ("120", "12")
    assert (conversion["bold-offer"]["n"], conversion["bold-offer"]["count"]) == ("120", "24")
    devices = {(r["group"], r["arm"]): r["n"] for r in rows if r["section"] == "device"}
    assert devices[("mobile", "bold-offer")] == "120" and devices[("desktop", "control")] == "120"
    assert any(r["section"] == "holdout" and r["n"] == "10" for r in rows)


def test_json_export_is_the_results_dict(seeded, marketer_a) -> None:
    response = _client(marketer_a).get(_report(seeded.experiment.campaign, "json/"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    exported = json.loads(response.content)
    expected = json.loads(json.dumps(experiment_results(seeded.experiment), cls=DjangoJSONEncoder))
    exported.pop("computed_at"), expected.pop("computed_at")
    assert exported == expected


@pytest.fixture
def campaign_without_experiment(org_a):
    """A campaign without experiment: 3 decisions by its rule, 1 by its default, one conversion on a rule's; its
    consent page shown to 4 visitors, 2 of whom granted (one withdrew later) and 1 refused."""
    campaign = make_campaign(org_a)
    default = make_variant(campaign, key="standard", default=True)
    calm = make_variant(campaign, key="calm")
    rule = make_rule(campaign, calm, {"field": "request.device", "op": "eq", "value": "mobile"}, name="Mobile calm")
    decisions = [
        Decision.objects.create(organization=org_a, campaign=campaign, visitor_id=f"v{i}", variant=calm, rule=rule,
                                reason="rule")
        for i in range(3)
    ]
    Decision.objects.create(organization=org_a, campaign=campaign, visitor_id="v9", variant=default, reason="default")
    make_conversion(decisions[0], at=timezone.now())
    notice = make_notice(org_a)
    for i in range(4):
        consent_shown(organization=org_a, notice=notice, channel="consent_page", context_ref=campaign.context_ref,
                      visitor_id=f"browser-{i}")
    subjects = [make_subject(org_a) for _ in range(2)]
    for subject in subjects:
        consent_grant(organization=org_a, subject=subject, notice=notice, purposes=["face_analysis"],
                      channel="consent_page", context_ref=campaign.context_ref)
    consent_refuse(organization=org_a, notice=notice, purposes=["face_analysis"], channel="consent_page",
                   context_ref=campaign.context_ref)
    consent_withdraw(organization=org_a, subject=subjects[0], channel="consent_page")
    return campaign


def _table_text(html: str, element_id: str) -> str:
    block = re.search(rf'id="{element_id}".*?</table>', html, re.S)
    assert block, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block.group(0)))


def test_a_campaign_without_experiment_shows_its_funnel_and_rules(campaign_without_experiment, marketer_a) -> None:
    response = _client(marketer_a).get(_report(campaign_without_experiment))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="report-no-experiment"' in html and "no experiment" in html
    funnel = _table_text(html, "report-funnel")
    for stage, count in (("shown", 4), ("Granted", 2), ("Refused", 1), ("Withdrawn", 1)):
        assert re.search(rf"{stage} {count}\b", funnel, re.I), (stage, funnel)
    rules = _table_text(html, "breakdown-rule")
    assert re.search(r"Mobile calm calm 3 1\b", rules), rules
    assert 'id="chart-funnel"' in html and 'id="chart-cumulative"' not in html


def test_exports_of_a_campaign_without_experiment_are_its_overview(campaign_without_experiment, marketer_a) -> None:
    client = _client(marketer_a)
    exported = json.loads(client.get(_report(campaign_without_experiment, "json/")).content)
    assert exported == json.loads(json.dumps(campaign_overview(campaign_without_experiment), cls=DjangoJSONEncoder))
    rows = list(csv.DictReader(io.StringIO(client.get(_report(campaign_without_experiment, "csv/")).content.decode())))
    assert {(r["group"], r["count"]) for r in rows if r["section"] == "funnel"} >= {("shown", "4"), ("granted", "2")}
    assert any(r["section"] == "rule" and r["group"] == "Mobile calm" and r["decisions"] == "3" for r in rows)


def test_an_experiment_not_started_says_so_and_shows_the_funnel(org_a, marketer_a) -> None:
    from campaigns.models import Experiment

    campaign = make_campaign(org_a)
    make_variant(campaign, key="control", default=True)
    Experiment.objects.create(organization=org_a, campaign=campaign, key="later", name="Later")
    html = _client(marketer_a).get(_report(campaign)).content.decode()
    assert 'id="report-not-started"' in html and "Later" in html and 'id="chart-funnel"' in html


def test_names_from_marketers_are_escaped(org_a, marketer_a) -> None:
    campaign = make_campaign(org_a)
    control = make_variant(campaign, key="control", default=True)
    control.name = "<script>alert(1)</script>"
    control.save(update_fields=["name"])
    seeded = seed_experiment(campaign, [control, make_variant(campaign, key="b")], name="<b>bold</b>")
    make_arm_visitors(seeded, seeded.arms[0], visitors=3, conversions=1)
    html = _client(marketer_a).get(_report(campaign)).content.decode()
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
