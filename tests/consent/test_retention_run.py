"""Retention runs travel in time: rows of every category are written with old timestamps, a run at a chosen `now`
deletes (or cuts) exactly those past their period, and each (purger, category) writes one receipt."""

from __future__ import annotations

import itertools
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaigns.models import Decision, Event, Exposure
from campaigns.results import phase_glance
from consent import purging
from consent.models import Grant, LedgerEntry, PurgePart, RetentionPolicy
from consent.retention import Jurisdiction
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from segments.models import AudienceExportRecipient, Segment, SegmentMembership
from tests.campaigns.experiment_factories import make_conversion, make_visitor, seed_experiment
from tests.factories import make_grant, make_subject, make_variant
from tests.segments.factories import World

pytestmark = pytest.mark.django_db

PERIODS = {
    "feature_retention_days": 10, "aggregate_retention_days": 20, "face_context_retention_days": 5,
    "membership_retention_days": 30, "decision_retention_days": 40, "event_retention_days": 35,
    "exposure_retention_days": 15, "consent_record_retention_days": 400,
}
_keys = itertools.count(1)


@pytest.fixture
def run(eager, django_capture_on_commit_callbacks):
    """A retention run at `now`, its parts done in this process after its commit, as on the embedded default."""

    def run_at(now):
        with django_capture_on_commit_callbacks(execute=True):
            return purging.retention_run(now=now)

    return run_at


def _policy(organization, **periods) -> None:
    RetentionPolicy.objects.update_or_create(organization=organization, defaults=periods)


def _ago(now, days: float):
    return now - timedelta(days=days)


def _features(world: World, now, days: float) -> FrameFeatures:
    return world.frame(world.session(world.subject()), at=_ago(now, days))


def _receipts(organization) -> dict[str, dict]:
    entries = LedgerEntry.objects.filter(organization=organization, event=LedgerEntry.Event.PURGED)
    return {entry.payload["category"]: entry.payload for entry in entries}


def _membership(world: World, segment: Segment, subject, *, entered, exited) -> SegmentMembership:
    return SegmentMembership.objects.create(organization=world.organization, segment=segment, subject=subject,
                                            entered_at=entered, exited_at=exited)


def test_an_ended_session_with_no_frame_left_goes_and_releases_its_grant(org_a, run) -> None:
    # Aggregates (20 d) past their period: an ended session whose frames are gone is deleted; one with a frame
    # still inside the (longer) features period stays, its aggregates cut. The deleted session's grant, ended past
    # the consent records' period, goes at the next run; the kept one still backs its session.
    now = timezone.now()
    _policy(org_a, **{**PERIODS, "feature_retention_days": 60})
    world = World(org_a)
    empty = world.session(world.subject(), started_at=_ago(now, 21))
    kept = world.session(world.subject(), started_at=_ago(now, 21))
    world.frame(kept, at=_ago(now, 21))
    open_session = world.session(world.subject(), started_at=_ago(now, 21))
    CaptureSession.objects.filter(pk__in=[empty.pk, kept.pk]).update(ended_at=_ago(now, 21))
    CaptureSession.objects.filter(pk__in=[empty.pk, kept.pk, open_session.pk]).update(
        aggregates={"frames": 1}, aggregates_updated_at=_ago(now, 21))
    Grant.objects.filter(pk__in=[empty.grant_id, kept.grant_id]).update(ended_at=_ago(now, 401),
                                                                       end_reason="withdrawn")

    run(now)

    assert not CaptureSession.objects.filter(pk=empty.pk).exists()
    assert CaptureSession.objects.filter(pk=kept.pk).values_list("aggregates", flat=True).get() == {}
    assert CaptureSession.objects.filter(pk=open_session.pk).values_list("aggregates", flat=True).get() == {}
    receipts = _receipts(org_a)
    assert receipts["aggregates"]["capturesession_deleted"] == 1 and receipts["aggregates"]["capturesession_cut"] == 2
    run(now + timedelta(hours=1))
    assert not Grant.objects.filter(pk=empty.grant_id).exists()
    assert Grant.objects.filter(pk=kept.grant_id).exists()


def test_each_category_disappears_exactly_past_its_period(org_a, org_b, run) -> None:
    now = timezone.now()
    _policy(org_a, **PERIODS)
    world = World(org_a)
    # features (10 d): the frame goes with its features
    old_features, young_features = _features(world, now, 11), _features(world, now, 9)
    # aggregates (20 d): cut, the session stays
    aggregated = {}
    for days in (21, 19):
        session = world.session(world.subject(), started_at=_ago(now, days))
        CaptureSession.objects.filter(pk=session.pk).update(aggregates={"frames": 3}, aggregates_updated_at=now)
        aggregated[days] = session.pk
    # face context (5 d)
    contexts = {}
    for days in (6, 4):
        session = world.session(world.subject())
        contexts[days] = FaceContext.objects.create(
            organization=org_a, subject_id=session.subject_id, campaign=world.campaign, session=session,
            grant=session.grant, features={"latest": {}}, updated_at=_ago(now, days)).pk
    # memberships (30 d): ended ones by their exit; an open one is current, however old
    segment = Segment.objects.create(organization=org_a, key=f"seg-{next(_keys)}", name="Segment")
    member = world.subject()
    _membership(world, segment, member, entered=_ago(now, 90), exited=_ago(now, 31))
    ended_lately = _membership(world, segment, member, entered=_ago(now, 80), exited=_ago(now, 29))
    still_open = _membership(world, segment, member, entered=_ago(now, 500), exited=None)
    # ... and the record that an export named a subject, by the export's time
    named = {days: AudienceExportRecipient.objects.create(
        organization=org_a, subject=member, segment=segment, segment_key=segment.key,
        what=AudienceExportRecipient.What.MEMBERS, ledger_sequence=days, requested_by="api_key:test",
        exported_at=_ago(now, days)).pk for days in (31, 29)}
    # decisions (40 d) take their events with them; events (35 d) go by their own period otherwise
    old_decision = world.event(None, "click", at=_ago(now, 10)).decision
    Decision.objects.filter(pk=old_decision.pk).update(created_at=_ago(now, 41))
    young_decision = world.event(None, "click", at=_ago(now, 36)).decision
    Decision.objects.filter(pk=young_decision.pk).update(created_at=_ago(now, 39))
    young_event = make_conversion(young_decision, at=_ago(now, 34))
    # exposures (15 d): cut loose from the visitor
    seeded = seed_experiment(world.campaign, [world.variant, make_variant(world.campaign, key="bold")],
                             started_at=_ago(now, 30))
    old_exposure = make_visitor(seeded, seeded.arms[0], converted=False, at=_ago(now, 16), subject=member)
    young_exposure = make_visitor(seeded, seeded.arms[1], converted=False, at=_ago(now, 14))
    # consent records (400 d): ended grants, unless a derived row still points at one
    notice = world.notice
    ended_grants = {}
    for name, days in (("old", 401), ("young", 399), ("backing", 401)):
        subject = make_subject(org_a)
        grant = make_grant(subject, notice, purposes=("face_analysis",))
        if name == "backing":
            world.session(subject)
        Grant.objects.filter(pk=grant.pk).update(ended_at=_ago(now, days), end_reason="withdrawn")
        ended_grants[name] = grant.pk
    # Org B keeps the defaults (365 d and more): the same old rows of its own stay.
    other = World(org_b)
    other_features = _features(other, now, 11)

    (request,) = run(now)

    assert request.organization_id == org_a.pk
    assert not FrameFeatures.objects.filter(pk=old_features.pk).exists()
    assert not Frame.objects.filter(pk=old_features.frame_id).exists()
    assert FrameFeatures.objects.filter(pk=young_features.pk).exists()
    assert Frame.objects.filter(pk=young_features.frame_id).exists()
    sessions = {pk: (aggregates, at) for pk, aggregates, at in
                CaptureSession.objects.filter(pk__in=aggregated.values()).values_list("pk", "aggregates",
                                                                                    "aggregates_updated_at")}
    assert sessions[aggregated[21]] == ({}, None)
    assert sessions[aggregated[19]] == ({"frames": 3}, now)
    assert set(FaceContext.objects.filter(pk__in=contexts.values()).values_list("pk", flat=True)) == {contexts[4]}
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("pk", flat=True)) == {
        ended_lately.pk, still_open.pk}
    assert set(AudienceExportRecipient.objects.filter(pk__in=named.values()).values_list("pk", flat=True)) == {
        named[29]}
    assert not Decision.objects.filter(pk=old_decision.pk).exists()
    assert not Event.objects.filter(decision_id=old_decision.pk).exists()  # a 10-day-old event, with its decision
    assert set(Event.objects.filter(decision=young_decision).values_list("pk", flat=True)) == {young_event.pk}
    old_exposure.refresh_from_db()
    young_exposure.refresh_from_db()
    assert (old_exposure.visitor_id, old_exposure.subject_id) == (f"~{old_exposure.pk}", None)
    assert old_exposure.visitor_id.startswith("~") and young_exposure.visitor_id.startswith("visitor-")
    assert set(Grant.objects.filter(pk__in=ended_grants.values()).values_list("pk", flat=True)) == {
        ended_grants["young"], ended_grants["backing"]}
    assert FrameFeatures.objects.filter(pk=other_features.pk).exists()

    receipts = _receipts(org_a)
    assert set(receipts) == {"features", "aggregates", "face_context", "memberships", "decisions", "events",
                             "exposures", "consent_records"}
    assert receipts["features"]["framefeatures_deleted"] == 1 and receipts["features"]["frame_deleted"] == 1
    assert receipts["aggregates"]["capturesession_cut"] == 1
    assert receipts["decisions"]["decision_deleted"] == 1 and receipts["decisions"]["event_deleted"] == 1
    assert receipts["exposures"]["exposure_cut"] == 1
    assert receipts["consent_records"]["grant_deleted"] == 1
    assert receipts["features"]["oldest_remaining"] == young_features.analyzed_at.isoformat()
    assert receipts["features"]["cutoff"] == (now - timedelta(days=10)).isoformat()
    assert not _receipts(org_b)
    # The ledger stays whole, and nothing in a receipt is content: counts, the category, its cutoff and ages.
    assert all(set(payload) <= {"reason", "request", "purger", "category", "cutoff", "oldest_remaining"}
               | {key for key in payload if key.endswith(("_deleted", "_cut"))} for payload in receipts.values())

    # The same run again finds nothing due; two days on, the rows that were just inside their period go.
    assert run(now) == []
    run(now + timedelta(days=2))
    assert not FrameFeatures.objects.filter(pk=young_features.pk).exists()
    assert not FaceContext.objects.filter(pk=contexts[4]).exists()
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("pk", flat=True)) == {still_open.pk}
    assert not Grant.objects.filter(pk=ended_grants["young"]).exists()
    assert Grant.objects.filter(pk=ended_grants["backing"]).exists()


def test_texas_caps_biometric_categories_at_a_year_whatever_the_stored_period(org_a, run) -> None:
    now = timezone.now()
    _policy(org_a, feature_retention_days=1000, jurisdiction=Jurisdiction.US_TX)  # stored before the move
    world = World(org_a)
    past_cap, within_cap = _features(world, now, 366), _features(world, now, 364)

    run(now)

    assert not FrameFeatures.objects.filter(pk=past_cap.pk).exists()
    assert FrameFeatures.objects.filter(pk=within_cap.pk).exists()
    receipt = _receipts(org_a)["features"]
    assert receipt["cutoff"] == (now - timedelta(days=365)).isoformat()


def test_a_receipt_counts_the_run_and_names_the_oldest_row_left(org_a, run, settings) -> None:
    settings.VISAGE_RETENTION_BATCH = 2  # several batches, one receipt
    now = timezone.now()
    _policy(org_a, feature_retention_days=10)
    world = World(org_a)
    for days in (11, 12, 13, 14, 15):
        _features(world, now, days)
    kept = _features(world, now, 3)

    (request,) = run(now)

    part = request.parts.get(category="features")
    assert (part.status, part.counts) == ("done", {"framefeatures_deleted": 5, "frame_deleted": 5})
    receipt = LedgerEntry.objects.get(organization=org_a, event=LedgerEntry.Event.PURGED,
                                      sequence=part.receipt_sequence)
    assert receipt.payload["framefeatures_deleted"] == 5
    assert receipt.payload["oldest_remaining"] == kept.analyzed_at.isoformat()
    assert receipt.payload["cutoff"] == (now - timedelta(days=10)).isoformat()
    assert FrameFeatures.objects.filter(organization=org_a).count() == 1


def test_an_interrupted_part_stays_owed_with_its_counts_and_the_redispatch_finishes_it(
    org_a, run, settings, monkeypatch
) -> None:
    settings.VISAGE_RETENTION_BATCH = 2
    now = timezone.now()
    _policy(org_a, feature_retention_days=10)
    world = World(org_a)
    for days in range(11, 18):  # 7 rows: four batches of features, then the frames
        _features(world, now, days)
    real_batch = purging.rows_batch_purge
    calls = itertools.count(1)

    def dies_on_the_third(queryset, **kwargs):
        if next(calls) == 3:
            raise RuntimeError("worker killed")
        return real_batch(queryset, **kwargs)

    monkeypatch.setattr(purging, "rows_batch_purge", dies_on_the_third)
    (request,) = run(now)

    part = request.parts.get(category="features")
    assert (part.status, part.counts, part.last_error) == ("owed", {"framefeatures_deleted": 4}, "RuntimeError")
    assert FrameFeatures.objects.filter(organization=org_a).count() == 3  # the two committed batches stay done
    assert not _receipts(org_a)

    monkeypatch.setattr(purging, "rows_batch_purge", real_batch)
    assert purging.purge_parts_redispatch(now=timezone.now() + timedelta(minutes=5)) == 1
    part.refresh_from_db()
    assert (part.status, part.counts) == ("done", {"framefeatures_deleted": 7, "frame_deleted": 7})
    assert FrameFeatures.objects.filter(organization=org_a).count() == 0
    assert Frame.objects.filter(organization=org_a).count() == 0
    assert list(_receipts(org_a)) == ["features"]
    assert purging.purge_part_run(part_id=part.pk) == "already_done"
    assert LedgerEntry.objects.filter(organization=org_a, event=LedgerEntry.Event.PURGED).count() == 1


def test_a_part_past_its_time_budget_stops_and_is_continued(org_a, run, settings) -> None:
    settings.VISAGE_RETENTION_BATCH = 1
    settings.VISAGE_RETENTION_PART_SECONDS = 0  # stops before its first batch
    now = timezone.now()
    _policy(org_a, feature_retention_days=10)
    _features(World(org_a), now, 11)

    (request,) = run(now)
    part = request.parts.get()
    assert (part.status, part.dispatched_at) == ("owed", None)
    assert FrameFeatures.objects.filter(organization=org_a).count() == 1

    settings.VISAGE_RETENTION_PART_SECONDS = 60
    purging.purge_parts_redispatch()
    part.refresh_from_db()
    assert part.status == "done" and FrameFeatures.objects.filter(organization=org_a).count() == 0


def test_a_category_still_owed_from_an_earlier_run_is_not_recorded_again(org_a, settings, eager) -> None:
    now = timezone.now()
    _policy(org_a, feature_retention_days=10)
    _features(World(org_a), now, 11)
    # No on-commit here: the first run's part stays owed, as when its message is still queued.
    purging.retention_run(now=now)
    assert purging.retention_run(now=now + timedelta(hours=1)) == []
    assert PurgePart.objects.filter(organization=org_a, category="features").count() == 1


def test_cut_exposures_keep_the_experiments_counts(org_a, run) -> None:
    now = timezone.now()
    _policy(org_a, exposure_retention_days=15)
    world = World(org_a)
    seeded = seed_experiment(world.campaign, [world.variant, make_variant(world.campaign, key="bold")],
                             started_at=_ago(now, 30))
    for index in range(6):
        make_visitor(seeded, seeded.arms[index % 2], converted=index < 3, at=_ago(now, 22 - index), subject=None)
    before = phase_glance(seeded.phase).counts

    run(now)

    assert Exposure.objects.filter(phase=seeded.phase, visitor_id__startswith="~").count() == 6
    assert phase_glance(seeded.phase).counts == before
    assert run(now) == []  # a cut row is not cut again


def _audit(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("retention_audit", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_the_audit_passes_on_rows_within_their_period_and_fails_on_rows_kept_too_long(org_a, org_b) -> None:
    now = timezone.now()
    _policy(org_a, feature_retention_days=10)
    world = World(org_a)
    _features(world, now, 9)

    code, out = _audit("--organization", org_a.slug)
    assert code == 0, out
    assert "features" in out and "policy=10 d" in out and "effective=10 d" in out and "VIOLATION" not in out
    assert "frame_bytes" in out and "not a table" in out

    late = _features(world, now, 11)  # past its period and the one-hour grace: the run has not done its work
    code, out = _audit("--organization", org_a.slug)
    assert code == 1
    assert "VIOLATION" in out and late.analyzed_at.isoformat(timespec="seconds") in out
    code, _ = _audit("--organization", org_b.slug)
    assert code == 0  # the other organization is clean
    code, _ = _audit()
    assert code == 1  # all organizations: one violation


def test_the_audit_names_the_texas_cap_over_a_larger_stored_period(org_a) -> None:
    now = timezone.now()
    _policy(org_a, feature_retention_days=1000, jurisdiction=Jurisdiction.US_TX)
    _features(World(org_a), now, 400)

    code, out = _audit("--organization", org_a.slug)

    assert code == 1
    line = next(line for line in out.splitlines() if " features " in line)
    assert "policy=1000 d" in line and "cap=365 d" in line and "Texas" in line and "effective=365 d" in line
    assert "legal cap" in line


def test_the_audit_refuses_an_unknown_organization() -> None:
    code, out = _audit("--organization", "no-such-org")
    assert code == 2 and "no-such-org" in out
