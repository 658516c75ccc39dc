"""Decisions: rules by priority, skipped with their reasons when consent or fresh features are missing, sticky
from default and sticky decisions only, the campaign's lifecycle, the decision log and its purge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns import conditions
from campaigns.decisions import DecisionError, campaign_plan_changed, decision_make
from campaigns.models import Campaign, Decision, Event, Rule
from campaigns.request_context import RequestAttributes, request_attributes
from consent.models import Subject
from consent.services import consent_withdraw, subject_erase
from faceanalysis import selectors as face_selectors
from faceanalysis.face_cache import face_signals_key
from faceanalysis.models import CaptureSession, FrameFeatures
from tests.faceanalysis.factories import make_capture_session
from tests.factories import make_campaign, make_notice, make_rule, make_variant
from tests.purges import make_face_data, run_owed_purges

pytestmark = pytest.mark.django_db

SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}
MOBILE = {"field": "request.device", "op": "eq", "value": "mobile"}
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"
VISITOR = "visitor-0123456789abcdef"


@dataclass
class Shop:
    campaign: Campaign
    default: object
    calm: object
    smile: object
    smile_rule: Rule
    mobile_rule: Rule


@pytest.fixture
def shop(org_a) -> Shop:
    make_notice(org_a, purposes=("face_analysis", "personalization"))
    campaign = make_campaign(org_a, purposes=("face_analysis",), optional=("personalization",))
    default = make_variant(campaign, key="standard", default=True, headline="Hello")
    calm = make_variant(campaign, key="calm", headline="Relax")
    smile = make_variant(campaign, key="smile", headline="Smile!")
    smile_rule = make_rule(campaign, smile, SMILE, priority=10, name="smilers")
    mobile_rule = make_rule(campaign, calm, MOBILE, priority=20, name="phones")
    return Shop(campaign, default, calm, smile, smile_rule, mobile_rule)


def smiling_subject(campaign: Campaign, *, purposes=("face_analysis", "personalization"), smile: float = 0.9):
    """A consented subject whose capture session in `campaign` has three analysed frames with `smile`."""
    session, _ = make_capture_session(campaign.organization, purposes=purposes, campaign=campaign)
    make_face_data(session, frames=3, smile=smile)
    return session.subject


def attrs(user_agent: str = DESKTOP, **kwargs) -> RequestAttributes:
    return request_attributes(user_agent=user_agent, now=timezone.now(), **kwargs)


def decide(campaign: Campaign, subject: Subject | None = None, *, visitor: str = VISITOR, **kwargs) -> Decision:
    return decision_make(campaign=campaign, visitor_id=visitor, subject=subject, attributes=attrs(**kwargs),
                         channel="api")


def skipped(decision: Decision) -> dict[int, str]:
    return {step["rule"]: step["reason"] for step in decision.trace if step["status"] == "skipped"}


def test_the_first_matching_rule_by_priority_wins(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign)
    decision = decide(shop.campaign, subject, user_agent=IPHONE)
    assert (decision.variant, decision.rule, decision.reason) == (shop.smile, shop.smile_rule, "rule")
    assert [step["status"] for step in decision.trace] == ["matched"]  # the phone rule was never tried
    Rule.objects.filter(pk=shop.mobile_rule.pk).update(priority=5)
    campaign_plan_changed(campaign_id=shop.campaign.pk)  # an update() bypasses the receivers
    decision = decide(shop.campaign, subject, user_agent=IPHONE, visitor="visitor-second-0123456")
    assert (decision.variant, decision.rule) == (shop.calm, shop.mobile_rule)


def test_a_saved_rule_change_reaches_the_next_decision(shop: Shop) -> None:
    assert decide(shop.campaign, user_agent=IPHONE).variant == shop.calm
    shop.mobile_rule.condition = {"field": "request.device", "op": "eq", "value": "tablet"}
    shop.mobile_rule.save()
    assert decide(shop.campaign, user_agent=IPHONE, visitor="visitor-other-01234567").variant == shop.default


def test_an_anonymous_visitor_gets_only_non_biometric_rules_and_the_trace_says_why(shop: Shop) -> None:
    decision = decide(shop.campaign, None, user_agent=IPHONE)
    assert (decision.variant, decision.reason) == (shop.calm, "rule")
    assert decision.trace[0] == {"rule": shop.smile_rule.pk, "status": "skipped", "node": "condition",
                                 "reason": "no_subject"}
    assert decision.subject is None


def test_without_personalization_consent_the_face_rule_is_skipped(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign, purposes=("face_analysis",))
    decision = decide(shop.campaign, subject)
    assert decision.variant == shop.default and decision.reason == "default"
    assert skipped(decision) == {shop.smile_rule.pk: "no_personalization_consent"}
    assert [step["status"] for step in decision.trace] == ["skipped", "not_matched"]


def test_a_consenting_subject_without_recent_frames_has_no_fresh_features(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign)
    FrameFeatures.objects.filter(subject=subject).update(analyzed_at=timezone.now() - timedelta(hours=2))
    decision = decide(shop.campaign, subject)
    assert skipped(decision) == {shop.smile_rule.pk: "no_fresh_features"} and decision.variant == shop.default


def test_withdrawal_makes_the_next_decision_fall_back_and_the_face_rule_does_not_stick(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign)
    assert decide(shop.campaign, subject).variant == shop.smile
    consent_withdraw(organization=subject.organization, subject=subject, purposes=["personalization"],
                     channel="partner_api")
    after = decide(shop.campaign, subject)
    assert skipped(after) == {shop.smile_rule.pk: "no_personalization_consent"}
    # Not the smile variant as "sticky": a rule's choice never outlives the consent it rested on.
    assert (after.variant, after.reason) == (shop.default, "default")
    after_phone = decide(shop.campaign, subject, user_agent=IPHONE)
    assert after_phone.variant == shop.calm  # the non-biometric rule still fires


def test_withdrawal_of_face_analysis_is_seen_at_once_despite_the_cached_signals(
    shop: Shop, django_capture_on_commit_callbacks
) -> None:
    subject = smiling_subject(shop.campaign)
    assert decide(shop.campaign, subject).variant == shop.smile
    key = face_signals_key(organization_id=subject.organization_id, subject_id=subject.pk)
    assert cache.get(key) is not None
    with django_capture_on_commit_callbacks(execute=True):
        consent_withdraw(organization=subject.organization, subject=subject, purposes=["face_analysis"],
                         channel="partner_api")
    assert cache.get(key) is None  # the purge's immediate step forgot them
    assert skipped(decide(shop.campaign, subject)) == {shop.smile_rule.pk: "no_face_analysis_consent"}


def test_a_visitor_keeps_their_default_variant_when_the_default_changes(shop: Shop) -> None:
    first = decide(shop.campaign)
    assert (first.variant, first.reason) == (shop.default, "default")
    shop.default.is_default = False
    shop.default.save()
    shop.calm.is_default = True
    shop.calm.save()
    again = decide(shop.campaign)
    assert (again.variant, again.reason) == (shop.default, "sticky")
    assert decide(shop.campaign, visitor="a-new-visitor-12345678").variant == shop.calm
    # A rule still wins over stickiness, and the sticky variant stays the one of the last non-rule decision.
    assert decide(shop.campaign, user_agent=IPHONE).variant == shop.calm
    assert (decide(shop.campaign).variant, decide(shop.campaign).reason) == (shop.default, "sticky")


def test_a_visitor_is_returning_from_their_second_decision(shop: Shop) -> None:
    rule = make_rule(shop.campaign, shop.calm, {"field": "request.returning", "op": "eq", "value": True}, priority=1)
    assert decide(shop.campaign).rule is None
    assert decide(shop.campaign).rule == rule
    assert decide(shop.campaign, visitor="somebody-else-12345678").rule is None


@pytest.mark.parametrize(
    ("status", "code"),
    [("draft", "campaign_not_running"), ("scheduled", "campaign_not_running"), ("paused", "campaign_not_running"),
     ("ended", "campaign_ended")],
)
def test_only_a_running_campaign_decides(shop: Shop, status: str, code: str) -> None:
    Campaign.objects.filter(pk=shop.campaign.pk).update(status=status)
    shop.campaign.refresh_from_db()
    with pytest.raises(DecisionError) as raised:
        decide(shop.campaign)
    assert (raised.value.status_code, raised.value.code) == (409, code)
    assert not Decision.objects.exists()


def test_a_running_campaign_past_its_end_is_ended_before_beat_moves_it(shop: Shop) -> None:
    shop.campaign.ends_at = timezone.now() - timedelta(seconds=1)
    with pytest.raises(DecisionError) as raised:
        decide(shop.campaign)
    assert raised.value.code == "campaign_ended"


def test_in_a_workplace_expression_rules_are_skipped_never_evaluated(shop: Shop) -> None:
    shop.campaign.setting_of_use = Campaign.SettingOfUse.WORKPLACE
    shop.campaign.save()
    subject = smiling_subject(shop.campaign)
    decision = decide(shop.campaign, subject)
    assert skipped(decision) == {shop.smile_rule.pk: "emotion_recognition_forbidden"}
    assert decision.variant == shop.default


def test_a_stored_tree_the_validator_refuses_is_skipped_as_invalid(shop: Shop) -> None:
    broken = make_rule(shop.campaign, shop.calm, {"field": "no.such.field", "op": "eq", "value": 1}, priority=1)
    decision = decide(shop.campaign)
    assert skipped(decision)[broken.pk] == "invalid_rule" and decision.variant == shop.default


def test_a_campaign_without_a_default_variant_answers_409(org_a) -> None:
    campaign = make_campaign(org_a)
    with pytest.raises(DecisionError) as raised:
        decide(campaign)
    assert (raised.value.status_code, raised.value.code) == (409, "no_default_variant")


def test_a_bad_visitor_id_or_a_foreign_subject_is_refused(shop: Shop, org_b) -> None:
    with pytest.raises(DecisionError) as raised:
        decide(shop.campaign, visitor="short")
    assert raised.value.status_code == 400
    foreign = smiling_subject(make_campaign(org_b))
    with pytest.raises(DecisionError) as raised:
        decide(shop.campaign, foreign)
    assert raised.value.status_code == 404


def test_the_log_keeps_codes_and_coarse_attributes_never_a_face_value(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign, smile=0.97)
    decision = decide(shop.campaign, subject, user_agent=IPHONE, language="de-DE", country="de")
    decision.refresh_from_db()
    assert decision.attributes == {"device": "mobile", "language": "de", "country": "DE"}
    assert all(set(step) == {"rule", "status", "node", "reason"} for step in decision.trace)
    assert "0.97" not in str(decision.trace) and "smile_share" not in str(decision.trace)


def test_a_decision_costs_few_queries_once_the_plan_and_signals_are_cached(
    shop: Shop, django_assert_max_num_queries
) -> None:
    subject = smiling_subject(shop.campaign)
    decide(shop.campaign, subject)
    # The visitor's history, the consent state, and the log's one INSERT (plan and face signals are cached).
    with django_assert_max_num_queries(3):
        assert decide(shop.campaign, subject).variant == shop.smile
    with django_assert_max_num_queries(2):
        decide(shop.campaign, None, visitor="anonymous-visitor-123456")


def test_a_session_recount_forgets_the_cached_face_signals(shop: Shop) -> None:
    from faceanalysis.services.context import session_aggregates_refresh

    subject = smiling_subject(shop.campaign)
    decide(shop.campaign, subject)
    key = face_signals_key(organization_id=subject.organization_id, subject_id=subject.pk)
    assert cache.get(key) is not None
    session = CaptureSession.objects.get(subject=subject)
    assert session_aggregates_refresh(session_id=session.pk, grant=session.grant)
    assert cache.get(key) is None


# --- The face signals a decision reads --------------------------------------------------------------------------


def test_face_signals_read_the_largest_faces_engine_values_of_the_last_seven_days(shop: Shop, org_b) -> None:
    session, _ = make_capture_session(shop.campaign.organization, campaign=shop.campaign)
    face = {"expression": {"probabilities": {"happy": 0.8, "neutral": 0.2}, "top": "happy", "confidence": 0.8},
            "age": {"years": 29.5}, "gender": {"label": "female", "confidence": 0.93}}
    make_face_data(session, frames=3, smile=0.7, faces=[face])
    FrameFeatures.objects.filter(subject=session.subject).update(expression="happy", expression_confidence=0.8)
    old = FrameFeatures.objects.filter(subject=session.subject).first()
    FrameFeatures.objects.filter(pk=old.pk).update(analyzed_at=timezone.now() - timedelta(days=8))
    now = timezone.now()
    signals = face_selectors.face_signals_for_decision(
        organization=shop.campaign.organization, subject=session.subject, now=now
    )
    assert len(signals) == 2  # the one of eight days ago is out of every window
    read = {"window_seconds": 900, "min_confidence": 0.5, "min_frames": 2}
    assert signals.read("face.expression.happy", **read) == 0.8
    assert signals.read("face.gender", **{**read, "min_confidence": 0.9}) == "female"
    assert signals.read("face.gender", **{**read, "min_confidence": 0.95}) is None
    assert signals.read("face.age_band", window_seconds=900, min_confidence=0.5, min_frames=2) == "25_34"
    assert face_selectors.face_signals_for_decision(organization=org_b, subject=session.subject, now=now) is None
    assert face_selectors.face_signals_for_decision(organization=None, subject=session.subject, now=now) is None


def test_the_face_signals_window_is_the_longest_a_leaf_may_ask_for() -> None:
    assert face_selectors.FACE_SIGNALS_WINDOW.total_seconds() == conditions.MAX_WINDOW_SECONDS


# --- The decision log's purge -----------------------------------------------------------------------------------


def _log_of(subject: Subject, shop: Shop) -> Decision:
    decision = decide(shop.campaign, subject)
    Event.objects.create(
        organization=decision.organization, decision=decision, campaign=decision.campaign, variant=decision.variant,
        rule=decision.rule, subject=subject, kind="click", client_event_id="c1",
    )
    return decision


@pytest.mark.parametrize("how", ["erasure", "personalization"])
def test_erasure_and_withdrawal_cut_the_subject_out_of_the_log_and_keep_the_rows(shop: Shop, how: str) -> None:
    subject, bystander = smiling_subject(shop.campaign), smiling_subject(shop.campaign)
    decision, kept = _log_of(subject, shop), _log_of(bystander, shop)
    if how == "erasure":
        subject_erase(organization=subject.organization, subject=subject, channel="partner_api")
    else:
        consent_withdraw(organization=subject.organization, subject=subject, purposes=[how], channel="partner_api")
    run_owed_purges()
    decision.refresh_from_db()
    assert decision.subject is None and decision.variant == shop.smile  # the counts stay
    assert Event.objects.get(decision=decision).subject is None
    assert Decision.objects.get(pk=kept.pk).subject == bystander
    assert Event.objects.get(decision=kept).subject == bystander


def test_withdrawing_face_analysis_alone_leaves_the_log_to_the_personalization_consent(shop: Shop) -> None:
    subject = smiling_subject(shop.campaign)
    decision = _log_of(subject, shop)
    consent_withdraw(organization=subject.organization, subject=subject, purposes=["face_analysis"],
                     channel="partner_api")
    run_owed_purges()
    assert Decision.objects.get(pk=decision.pk).subject == subject
    assert not FrameFeatures.objects.filter(subject=subject).exists()  # face analysis's purger did its part


def test_an_edit_made_by_another_process_reaches_decisions_within_the_recheck_interval(shop: Shop, monkeypatch) -> None:
    from campaigns import decisions

    clock = [1000.0]
    monkeypatch.setattr(decisions.time, "monotonic", lambda: clock[0])
    assert decide(shop.campaign).variant == shop.default
    # Another process changes the rules: the rows change and it bumps the shared version, not this process's plan.
    Rule.objects.filter(pk=shop.mobile_rule.pk).update(condition={"field": "request.device", "op": "eq",
                                                                   "value": "desktop"})
    cache.set(decisions._version_key(shop.campaign.pk), "bumped-elsewhere", timeout=None)
    clock[0] += decisions.PLAN_VERSION_RECHECK_SECONDS / 2
    assert decide(shop.campaign, visitor="visitor-within-interval-1").variant == shop.default
    clock[0] += decisions.PLAN_VERSION_RECHECK_SECONDS
    assert decide(shop.campaign, visitor="visitor-after-interval-01").variant == shop.calm
