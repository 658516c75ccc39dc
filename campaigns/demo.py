"""The demo's experiment: an A/B test of the spring headline on the demo campaign, running for two weeks, with
simulated visitors so that its report shows something on the first run: decisions and exposures assigned by the
experiment's own hash, conversions (the bold headline converts better), a consent funnel written through the
consent services, and a few consenting visitors' face features (derived values only, as a worker writes them)
for the reaction metrics. Every simulated row is marked by its visitor id (`demo-sim-...`). Three segments over
those visitors (attentive viewers, clicked but did not convert, 25-34 and attentive) are recomputed once a day
over the two weeks, so their size-over-time charts have a history."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from campaigns.assignment import assign, bucket_ranges
from campaigns.content import variant_save
from campaigns.experiments import experiment_create, experiment_start
from campaigns.models import Allocation, Campaign, Decision, Event, Experiment, ExperimentPhase, Exposure
from campaigns.services import capture_session_open
from consent.models import Channel, NoticeVersion, Purpose
from consent.services import consent_grant, consent_refuse, consent_shown, consent_withdraw, subject_create
from faceanalysis.models import Frame, FrameFeatures
from faceanalysis.services.capture import capture_session_end

DEMO_EXPERIMENT_KEY = "spring-headline"
DEMO_CHALLENGER = {
    "key": "spring-bold", "name": "Bold headline", "headline": "Spring sale: up to 40 % off, today only",
    "body": "The whole spring collection, marked down.", "cta_text": "Grab the deal",
}
DAYS = 14
VISITORS = 3000
RATES = {"standard": 0.05, "spring-bold": 0.085}
CONSENTING = 60  # simulated visitors who consent and are seen by the camera
DEVICES = (("desktop", 0.55), ("mobile", 0.38), ("tablet", 0.07))
LANGUAGES = (("en", 0.5), ("de", 0.4), ("fr", 0.1))


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


def seed_demo_experiment(campaign: Campaign, *, now: datetime | None = None) -> Experiment:
    """Idempotent: the demo campaign's running A/B test with two weeks of simulated visitors."""
    existing = Experiment.objects.filter(campaign=campaign, key=DEMO_EXPERIMENT_KEY).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    start = now - timedelta(days=DAYS)
    rng = random.Random(14)
    with transaction.atomic():
        if not campaign.variants.filter(key=DEMO_CHALLENGER["key"]).exists():
            variant_save(campaign=campaign, variant=None, data=dict(DEMO_CHALLENGER))
        experiment = experiment_create(campaign=campaign, data={
            "key": DEMO_EXPERIMENT_KEY, "name": "Spring headline", "kind": "ab", "seed": "demo-spring",
            "hypothesis": "A bolder discount headline converts more visitors than the standard one.",
            "custom_events": ["signup"],
            "arms": [{"variant": "standard", "weight": 0.5}, {"variant": "spring-bold", "weight": 0.5}],
        })
        experiment = experiment_start(experiment=experiment)
        phase = ExperimentPhase.objects.get(experiment=experiment)
        # The test began two weeks ago.
        ExperimentPhase.objects.filter(pk=phase.pk).update(started_at=start)
        Allocation.objects.filter(phase=phase).update(starts_at=start)
        Experiment.objects.filter(pk=experiment.pk).update(started_at=start)
        phase.refresh_from_db()
        _simulate_visitors(campaign, experiment, phase, start=start, now=now, rng=rng)
    experiment.refresh_from_db()
    return experiment


def _simulate_visitors(campaign: Campaign, experiment: Experiment, phase: ExperimentPhase, *, start: datetime,
                       now: datetime, rng: random.Random) -> None:
    arms = list(experiment.arms.select_related("variant").order_by("position"))
    ranges = bucket_ranges(phase.weights, phase.coverage)
    notice = NoticeVersion.objects.filter(organization=campaign.organization, language="en",
                                          status=NoticeVersion.Status.PUBLISHED).order_by("-version").first()
    decisions, exposures, events = [], [], []
    span = (now - start).total_seconds() - 3600
    for i in range(VISITORS):
        visitor = f"demo-sim-{i:08d}"
        arm = arms[assign(seed=phase.seed, visitor_id=visitor, ranges=ranges, holdout=0).arm]
        at = start + timedelta(seconds=span * (i / VISITORS) ** 0.9)  # traffic grows a little over the weeks
        device, language = _pick(rng, DEVICES), _pick(rng, LANGUAGES)
        decision = Decision(
            organization_id=campaign.organization_id, campaign=campaign, visitor_id=visitor, variant=arm.variant,
            experiment_arm=arm, reason=Decision.Reason.EXPERIMENT, channel="snippet", trace=[],
            attributes={"device": device, "language": language, "country": ""}, created_at=at,
        )
        decisions.append(decision)
        exposures.append(Exposure(
            organization_id=campaign.organization_id, experiment=experiment, phase=phase, campaign=campaign,
            arm=arm, visitor_id=visitor, device=device, language=language, exposed_at=at,
        ))
    Decision.objects.bulk_create(decisions)
    Exposure.objects.bulk_create(exposures)
    entered = {exposure.visitor_id: exposure for exposure in exposures}
    clicks = random.Random(15)  # apart from `rng`, so the experiment's simulated results stay as they were
    for decision in decisions:
        decision.exposure = entered[decision.visitor_id]
        rate = RATES.get(decision.variant.key, 0.06) * (1.25 if decision.attributes["device"] == "desktop" else 0.8)
        events.append(_event(decision, Event.Kind.IMPRESSION, "", None))
        converts = rng.random() < rate
        if converts or clicks.random() < 0.2:  # a converter clicked first; a fifth of the others click too
            events.append(_event(decision, Event.Kind.CLICK, "cta", None))
        if converts:
            value = Decimal(rng.choice(["19.90", "34.50", "49.00", "79.00"]))
            events.append(_event(decision, Event.Kind.CONVERSION, "purchase", value, minutes=rng.randint(1, 40)))
        if rng.random() < 0.04:
            events.append(_event(decision, Event.Kind.CUSTOM, "signup", None, minutes=rng.randint(1, 20)))
    Event.objects.bulk_create(events)
    if notice is not None:
        # Visitors from across the two weeks are asked, so the segments over them grow day by day.
        step = max(1, len(decisions) // (CONSENTING * 3))
        _simulate_consent(campaign, notice, decisions[::step][-CONSENTING * 3:], rng)


def _event(decision: Decision, kind: str, name: str, value: Decimal | None, *, minutes: int = 0) -> Event:
    at = decision.created_at + timedelta(minutes=minutes)
    return Event(
        organization_id=decision.organization_id, decision=decision, campaign_id=decision.campaign_id,
        variant_id=decision.variant_id, exposure=decision.exposure, kind=kind, name=name, value=value,
        currency="EUR" if value else "",
        client_event_id=f"sim-{kind}", occurred_at=at, received_at=at,
    )


def _simulate_consent(campaign: Campaign, notice: NoticeVersion, decisions: list[Decision],
                      rng: random.Random) -> None:
    """The consent funnel of the last visitors (shown, granted, refused, withdrawn) through the consent services,
    and for those who consented, frames' derived features after their exposure in a capture session of the
    campaign: the bold headline draws a little more attention and more smiles."""
    organization = campaign.organization
    purposes = [Purpose.FACE_ANALYSIS.value, Purpose.PERSONALIZATION.value]
    granted = 0
    for decision in decisions:
        consent_shown(organization=organization, notice=notice, channel=Channel.CONSENT_PAGE,
                      context_ref=campaign.context_ref, visitor_id=decision.visitor_id)
        if granted >= CONSENTING or rng.random() < 0.35:
            consent_refuse(organization=organization, notice=notice, purposes=purposes, channel=Channel.CONSENT_PAGE,
                           context_ref=campaign.context_ref)
            continue
        subject = subject_create(organization=organization)
        consent_grant(organization=organization, subject=subject, notice=notice, purposes=purposes,
                      channel=Channel.CONSENT_PAGE, context_ref=campaign.context_ref)
        granted += 1
        Decision.objects.filter(pk=decision.pk).update(subject=subject)
        Event.objects.filter(decision=decision).update(subject=subject)
        Exposure.objects.filter(campaign=campaign, visitor_id=decision.visitor_id).update(subject=subject)
        session, _ = capture_session_open(organization=organization, subject=subject, campaign=campaign,
                                          source="browser_stream")
        bold = decision.variant.key == DEMO_CHALLENGER["key"]
        _frames(session, at=decision.created_at, count=rng.randint(6, 14), rng=rng,
                looking=0.78 if bold else 0.7, smiling=0.35 if bold else 0.22)
        capture_session_end(session=session)  # the simulated visitor left long ago
        if rng.random() < 0.1:
            consent_withdraw(organization=organization, subject=subject, purposes=[Purpose.PERSONALIZATION.value],
                             channel=Channel.CONSENT_PAGE)


def _frames(session, *, at: datetime, count: int, rng: random.Random, looking: float, smiling: float) -> None:
    """Derived features of `count` analysed frames a second apart from `at` (no pixel: there never was one)."""
    common = {"organization_id": session.organization_id, "session": session, "subject_id": session.subject_id,
              "grant": session.grant}
    age, gender = rng.uniform(19.0, 62.0), rng.choice(("female", "male"))
    for second in range(count):
        when = at + timedelta(seconds=5 + second)
        frame = Frame.objects.create(**common, status=Frame.Status.ANALYZED, content_type="image/jpeg",
                                     byte_size=0, width=640, height=480, queue="analysis", received_at=when,
                                     finished_at=when)
        FrameFeatures.objects.create(
            **common, frame=frame, face_count=1, quality_ok=True, quality_reasons=[],
            attention_score=rng.uniform(0.4, 1.0), looking_at_screen=rng.random() < looking,
            smile=rng.uniform(0.55, 0.95) if rng.random() < smiling else rng.uniform(0.0, 0.3),
            age_years=age, gender=gender, gender_confidence=0.9,
            received_at=when, analyzed_at=when, latency_ms=14.0,
        )


DEMO_SEGMENTS = (
    {"key": "attentive-viewers", "name": "Attentive viewers",
     "description": "Looked at the screen at least 70 % of the time in the last 14 days.",
     "definition": {"field": "face.attention_share", "op": "gte", "value": 0.7, "window_seconds": 14 * 86400,
                    "min_frames": 5}},
    {"key": "clicked-not-converted", "name": "Clicked but did not convert",
     "description": "Clicked in the last 14 days without converting: a retargeting audience.",
     "definition": {"all": [
         {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 14 * 86400},
         {"field": "behaviour.conversions", "op": "eq", "value": 0, "window_seconds": 14 * 86400},
     ]}},
    {"key": "young-attentive", "name": "25-34 and attentive",
     "description": "Apparent age 25-34, in the attentive viewers.",
     "definition": {"all": [
         {"field": "face.age_band", "op": "eq", "value": "25_34", "window_seconds": 14 * 86400},
         {"field": "segment", "op": "in", "value": ["attentive-viewers"]},
     ]}},
)


def seed_demo_segments(organization, *, now: datetime | None = None) -> None:
    """Idempotent: three dynamic segments over the simulated visitors, recomputed once a day over the two weeks
    of the experiment, so their size-over-time charts show a history on the first run."""
    from segments.models import Segment
    from segments.services import segment_recompute, segment_save

    if Segment.objects.filter(organization=organization, key=DEMO_SEGMENTS[0]["key"]).exists():
        return
    now = now or timezone.now()
    segments = [segment_save(organization=organization, **spec) for spec in DEMO_SEGMENTS]
    for day in range(DAYS, -1, -1):
        for segment in segments:
            segment_recompute(segment_id=segment.pk, now=now - timedelta(days=day))
