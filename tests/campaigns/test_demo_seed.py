"""The demo seed gives a working consent page: published EN and DE notices, a retention policy, a campaign."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns.models import Campaign
from consent.models import NoticeVersion, RetentionPolicy

pytestmark = pytest.mark.django_db


def test_seed_demo_prints_a_working_consent_page_and_is_idempotent(capsys) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    path = re.search(r"Consent page: http://127\.0\.0\.1:8000(/c/[^/\s]+/)", out).group(1)
    html = Client().get(path + "?lang=de").content.decode()
    assert "Demo Shop möchte" in html and "Ich willige ein" in html
    assert Client().get(path + "?lang=en").status_code == 200
    call_command("seed_demo")
    assert Campaign.objects.count() == 1 and RetentionPolicy.objects.count() == 1
    assert NoticeVersion.objects.filter(status="published").count() == 2


def test_seed_demo_gives_the_campaign_variants_rules_and_a_partner_page_that_decides(capsys) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    page = re.search(r"Demo partner page: http://127\.0\.0\.1:8000(/static/\S+)\?campaign=(\S+)", out)
    campaign = Campaign.objects.get(public_id=page.group(2))
    assert campaign.status == "running" and "http://127.0.0.1:8000" in campaign.allowed_origin_list
    assert [v.key for v in campaign.variants.filter(is_default=True)] == ["standard"]
    assert list(campaign.rules.values_list("name", flat=True)) == ["Smilers", "Returning visitors"]
    body = {"campaign": campaign.public_id, "visitor_id": "demo-visitor-0000000001", "context": {"language": "en"}}
    first = Client().post("/api/v1/public/decisions/", body, content_type="application/json").json()
    again = Client().post("/api/v1/public/decisions/", body, content_type="application/json").json()
    # a new visitor enters the demo's A/B test; on their next page view the returning-visitor rule claims them
    assert first["reason"]["kind"] == "experiment" and first["variant"]["key"] in ("standard", "spring-bold")
    assert again["variant"]["key"] == "welcome-back"
    assert first["skipped"] == again["skipped"] == [{"rule": campaign.rules.first().pk, "reason": "no_subject"}]
    call_command("seed_demo")
    assert campaign.variants.count() == 4 and campaign.rules.count() == 2


def test_seed_demo_runs_an_ab_test_whose_report_shows_something_at_once(capsys) -> None:
    from campaigns.models import Experiment
    from campaigns.results import experiment_results

    call_command("seed_demo")
    experiment = Experiment.objects.get(key="spring-headline")
    assert experiment.status == "running"
    results = experiment_results(experiment)
    metrics = {m["key"]: m for m in results["metrics"]}
    assert results["visitors"] >= 1000 and len(results["timeseries"]["days"]) >= 14
    assert all(arm["count"] > 0 for arm in metrics["conversion"]["arms"])
    assert all(arm["n"] > 0 for arm in metrics["attention_share"]["arms"])
    funnel = results["funnel"]
    assert funnel["shown"] > funnel["granted"] > funnel["withdrawn"] > 0 and funnel["refused"] > 0
    call_command("seed_demo")
    assert experiment_results(Experiment.objects.get(key="spring-headline"))["visitors"] == results["visitors"]


def test_seed_demo_gives_segments_with_members_and_two_weeks_of_size_history(capsys) -> None:
    from segments.models import Segment
    from segments.selectors import segment_members, segment_size_history

    call_command("seed_demo")
    segments = {segment.key: segment for segment in Segment.objects.all()}
    assert set(segments) == {"attentive-viewers", "clicked-not-converted", "young-attentive"}
    for key in ("attentive-viewers", "clicked-not-converted"):
        assert segment_members(segment=segments[key]).count() > 0, key
        sizes = [point["size"] for point in segment_size_history(segment=segments[key])]
        assert len(sizes) == 15 and len(set(sizes)) > 3, (key, sizes)  # it grows over the two weeks
    assert segments["attentive-viewers"].face_based and segments["young-attentive"].face_based
    young = {m.subject_id for m in segment_members(segment=segments["young-attentive"])}
    assert young <= {m.subject_id for m in segment_members(segment=segments["attentive-viewers"])}
    call_command("seed_demo")
    assert Segment.objects.count() == 3
