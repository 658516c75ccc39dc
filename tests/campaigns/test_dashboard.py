"""The admin's home (campaigns.dashboard and templates/admin/index.html): running campaigns with their visitors,
conversion rate and the arm ahead, live capture sessions, the consent rate per day, and each "needs attention"
item exactly when its condition holds; scoped to the member's organization, every organization for an operator,
nothing for a staff user without one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from campaigns.dashboard import FRAME_FAILURE_MIN_FRAMES, dashboard_for
from campaigns.models import Allocation, Decision
from consent.ledger import ledger_append
from faceanalysis.models import Frame
from faceanalysis.services.capture import capture_session_end
from tests.campaigns.experiment_factories import make_arm_visitors, make_conversion, make_visitor, seed_experiment
from tests.faceanalysis.factories import make_capture_session
from tests.factories import (
    make_campaign,
    make_member,
    make_notice,
    make_organization,
    make_retention_policy,
    make_variant,
)

pytestmark = pytest.mark.django_db


def _kinds(user) -> list[str]:
    return [item.kind for item in dashboard_for(user=user).attention]


def _operator():
    return get_user_model().objects.create_superuser("operator", "ops@example.test", "pw-123456!")


def _ab_test(organization, *, control: int, treatment: int, conversions: tuple[int, int] = (0, 0)):
    campaign = make_campaign(organization)
    variants = [make_variant(campaign, key="control", default=True), make_variant(campaign, key="bold")]
    seeded = seed_experiment(campaign, variants, weights=[0.5, 0.5], name="Headline test")
    make_arm_visitors(seeded, seeded.arms[0], visitors=control, conversions=conversions[0])
    make_arm_visitors(seeded, seeded.arms[1], visitors=treatment, conversions=conversions[1])
    return seeded


# --- running campaigns --------------------------------------------------------------------------------------------


def test_a_running_experiment_shows_its_phase_visitors_conversions_and_the_arm_ahead(org_a, marketer_a) -> None:
    seeded = _ab_test(org_a, control=40, treatment=40, conversions=(4, 10))
    make_campaign(org_a, status="draft")  # not running: not listed
    (row,) = dashboard_for(user=marketer_a).running
    assert row.campaign == seeded.experiment.campaign and row.experiment == seeded.experiment
    assert (row.visitors, row.conversions) == (80, 14) and row.rate == pytest.approx(14 / 80)
    assert row.leader == "Bold"


def test_a_running_campaign_without_experiment_counts_its_distinct_decision_visitors(org_a, marketer_a) -> None:
    campaign = make_campaign(org_a)
    variant = make_variant(campaign, key="standard", default=True)
    decisions = [
        Decision.objects.create(organization=org_a, campaign=campaign, visitor_id=visitor, variant=variant,
                                reason="default")
        for visitor in ("v1", "v1", "v2", "v3")
    ]
    make_conversion(decisions[0], at=timezone.now())
    make_conversion(decisions[1], at=timezone.now())  # the same visitor again
    (row,) = dashboard_for(user=marketer_a).running
    assert (row.experiment, row.visitors, row.conversions, row.leader) == (None, 3, 1, None)


# --- scoping -----------------------------------------------------------------------------------------------------


def test_members_see_their_organization_and_operators_every_one(org_a, org_b, marketer_a) -> None:
    ours, theirs = make_campaign(org_a), make_campaign(org_b)
    member_b = make_member(org_b)
    assert [r.campaign for r in dashboard_for(user=marketer_a).running] == [ours]
    assert [r.campaign for r in dashboard_for(user=member_b).running] == [theirs]
    assert {r.campaign for r in dashboard_for(user=_operator()).running} == {ours, theirs}


def test_a_staff_user_without_organization_sees_nothing(org_a) -> None:
    make_campaign(org_a)
    _ab_test(org_a, control=300, treatment=100)
    loner = get_user_model().objects.create_user("loner", password="pw-123456!", is_staff=True)
    dashboard = dashboard_for(user=loner)
    assert dashboard.running == [] and dashboard.attention == [] and dashboard.live_session_count == 0


def test_attention_items_of_another_organization_stay_there(org_a, org_b, marketer_a) -> None:
    make_notice(org_a)  # org A is in order
    _ab_test(org_b, control=300, treatment=100)  # org B: a mismatch, and no notice for its running campaign
    assert _kinds(marketer_a) == []
    assert {"srm", "not_ready"} <= set(_kinds(make_member(org_b)))


def test_the_index_page_shows_the_dashboard_above_the_app_list_for_the_members_organization(org_a, org_b) -> None:
    ours, theirs = make_campaign(org_a), make_campaign(org_b)
    ours.name, theirs.name = "Our spring sale", "Their winter sale"
    ours.save(update_fields=["name"])
    theirs.save(update_fields=["name"])
    client = Client()
    client.force_login(make_member(org_a))
    html = client.get("/admin/").content.decode()
    assert html.index('id="visage-dashboard"') < html.index('id="visage-app-list"')
    assert "Our spring sale" in html and "Their winter sale" not in html
    assert f'/admin/campaigns/campaign/{ours.pk}/report/' in html
    assert 'class="app-campaigns module' in html  # the stock app list is still there


# --- needs attention ---------------------------------------------------------------------------------------------


def test_a_sample_ratio_mismatch_needs_attention(org_a, marketer_a) -> None:
    make_notice(org_a)
    _ab_test(org_a, control=300, treatment=150)
    (item,) = dashboard_for(user=marketer_a).attention
    assert item.kind == "srm" and "Headline test" in item.message


def test_a_balanced_split_needs_no_attention(org_a, marketer_a) -> None:
    make_notice(org_a)
    _ab_test(org_a, control=150, treatment=160)
    assert _kinds(marketer_a) == []


def _bandit(org, *, later: tuple[int, int]):
    """A bandit: 100/100 under 50/50, then `later` visitors under 80/20 (allocation 1)."""
    make_notice(org)
    campaign = make_campaign(org)
    variants = [make_variant(campaign, key="a", default=True), make_variant(campaign, key="b")]
    seeded = seed_experiment(campaign, variants, weights=[0.5, 0.5], kind="bandit")
    Allocation.objects.create(organization=org, phase=seeded.phase, number=1, weights=[0.8, 0.2],
                              starts_at=timezone.now() - timedelta(days=1))
    make_arm_visitors(seeded, seeded.arms[0], visitors=100, conversions=0)
    make_arm_visitors(seeded, seeded.arms[1], visitors=100, conversions=0)
    for arm, count in zip(seeded.arms, later, strict=True):
        for _ in range(count):
            exposure = make_visitor(seeded, arm, converted=False, at=timezone.now())
            exposure.allocation_number = 1
            exposure.save(update_fields=["allocation_number"])
    return seeded


def test_a_bandit_is_checked_against_each_periods_weights(org_a, marketer_a) -> None:
    _bandit(org_a, later=(160, 40))  # 260 / 140 overall: a mismatch for 50/50, as promised for the periods
    assert _kinds(marketer_a) == []


def test_a_bandit_whose_later_period_ignores_its_weights_needs_attention(org_a, marketer_a) -> None:
    _bandit(org_a, later=(100, 100))  # 200 / 200 overall looks even, but 100 / 100 under 80 / 20 is not
    assert _kinds(marketer_a) == ["srm"]


def test_a_running_campaign_without_a_published_notice_needs_attention(org_a, marketer_a) -> None:
    make_retention_policy(org_a)
    campaign = make_campaign(org_a)
    (item,) = dashboard_for(user=marketer_a).attention
    assert item.kind == "not_ready" and item.campaign == campaign and "No published notice" in item.message
    make_notice(org_a)
    assert _kinds(marketer_a) == []


def test_a_draft_campaign_without_notice_needs_no_attention(org_a, marketer_a) -> None:
    make_retention_policy(org_a)
    make_campaign(org_a, status="draft")
    assert _kinds(marketer_a) == []


def test_an_organization_without_retention_policy_needs_attention(org_a, org_b, marketer_a) -> None:
    assert _kinds(marketer_a) == ["no_retention_policy"]
    make_retention_policy(org_a)
    assert _kinds(marketer_a) == []
    operator_kinds = [(i.kind, i.organization) for i in dashboard_for(user=_operator()).attention]
    assert operator_kinds == [("no_retention_policy", org_b)]


def _frames(org, *, total: int, failed: int, hours_ago: float = 1) -> None:
    session, _ = make_capture_session(org)
    at = timezone.now() - timedelta(hours=hours_ago)
    for index in range(total):
        Frame.objects.create(
            organization=org, session=session, subject=session.subject, grant=session.grant,
            status=Frame.Status.FAILED if index < failed else Frame.Status.ANALYZED, content_type="image/jpeg",
            byte_size=1000, width=640, height=480, queue="default", received_at=at,
        )


def _frame_items(user) -> list[str]:
    return [item.message for item in dashboard_for(user=user).attention if item.kind == "frames_failing"]


def test_frames_failing_above_the_threshold_need_attention(org_a, marketer_a) -> None:
    _frames(org_a, total=FRAME_FAILURE_MIN_FRAMES, failed=3)
    (message,) = _frame_items(marketer_a)
    assert f"3 of {FRAME_FAILURE_MIN_FRAMES} frames" in message


@pytest.mark.parametrize(
    ("total", "failed", "hours_ago"),
    [(40, 2, 1), (FRAME_FAILURE_MIN_FRAMES - 1, FRAME_FAILURE_MIN_FRAMES - 1, 1), (40, 20, 30)],
    ids=["at-the-threshold", "too-few-frames", "older-than-a-day"],
)
def test_frames_failing_need_no_attention_otherwise(org_a, marketer_a, total, failed, hours_ago) -> None:
    _frames(org_a, total=total, failed=failed, hours_ago=hours_ago)
    assert _frame_items(marketer_a) == []


# --- live sessions and consent rate ------------------------------------------------------------------------------


def test_live_sessions_are_open_ones_started_within_the_hour(org_a, marketer_a) -> None:
    live, _ = make_capture_session(org_a)
    old, _ = make_capture_session(org_a)
    type(old).objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(hours=2))
    ended, _ = make_capture_session(org_a)
    capture_session_end(session=ended)
    make_capture_session(make_organization(name="Elsewhere"))  # another organization's live session
    dashboard = dashboard_for(user=marketer_a)
    assert dashboard.live_sessions == [live] and dashboard.live_session_count == 1


def test_consent_rate_counts_granted_and_refused_per_day_of_the_last_week(org_a, org_b, marketer_a) -> None:
    now = timezone.now()
    for organization, event, days_ago in [
        (org_a, "granted", 0), (org_a, "granted", 0), (org_a, "granted", 0), (org_a, "refused", 0),
        (org_a, "granted", 2), (org_a, "refused", 2), (org_a, "withdrawn", 2),
        (org_a, "granted", 9),  # before the week
        (org_b, "refused", 0),  # another organization
    ]:
        ledger_append(organization=organization, event=event, occurred_at=now - timedelta(days=days_ago))
    dashboard = dashboard_for(user=marketer_a, now=now)
    assert len(dashboard.consent_days) == 7
    by_day = {day.day: (day.granted, day.refused) for day in dashboard.consent_days}
    today = timezone.localdate(now)
    assert by_day[today] == (3, 1) and by_day[today - timedelta(days=2)] == (1, 1)
    assert sum(g + r for g, r in by_day.values()) == 6
    assert dashboard.consent_days[-1].rate == pytest.approx(0.75)
    assert dashboard.consent_rate == pytest.approx(4 / 6)
