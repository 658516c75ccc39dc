"""Segment memberships over time: what a withdrawal, an expiry and an erasure do to them, the size history of a
simulated week, static snapshots and uploads, one subject brought up to date (and the news that asks for it),
the adaptive cadence, and the definitions that are refused before anything is saved."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import TestCase
from django.utils import timezone

from campaigns.decisions import event_record
from campaigns.models import Decision
from consent.models import Grant, LedgerEntry, PurgePart
from consent.services import consent_withdraw, grants_expire, subject_erase
from faceanalysis.services.context import session_aggregates_refresh
from segments import dispatch, tasks
from segments.conditions import ConditionError
from segments.models import Segment, SegmentMembership, SegmentRun
from segments.selectors import (
    open_members,
    segment_changes_since,
    segment_members,
    segment_size_at,
    segment_size_history,
)
from segments.services import (
    SegmentError,
    next_cadence,
    segment_preview,
    segment_recompute,
    segment_refresh_subject,
    segment_save,
    segment_snapshot,
    segment_upload,
    segments_due,
)
from tests.factories import make_campaign
from tests.purges import run_owed_purges
from tests.segments.factories import World

pytestmark = pytest.mark.django_db

ATTENTIVE = {"field": "face.attention_share", "op": "gte", "value": 0.5, "min_frames": 1}
CLICKED = {"field": "behaviour.clicks", "op": "gte", "value": 1}


def _looking(world: World, subject, at: datetime, *, looking: bool = True) -> None:
    world.frame(world.session(subject, started_at=at), at=at, looking=looking)


def _members(segment: Segment, now: datetime | None = None) -> set[int]:
    return {m.subject_id for m in segment_members(segment=segment, now=now)}


@contextlib.contextmanager
def purges_run():
    """The purge owed by what happens inside, done by the end: in-process after commit on the embedded default
    (the dispatch's own path), and as a worker would on PostgreSQL + Redis (here, with no message sent)."""
    with TestCase.captureOnCommitCallbacks(execute=django_settings.CELERY_TASK_ALWAYS_EAGER):
        yield
    run_owed_purges()
    assert not PurgePart.objects.filter(status=PurgePart.Status.OWED).exists()


# --- (a) withdrawal, expiry, erasure -------------------------------------------------------------------------------


@pytest.fixture
def two_segments(org_a):
    """A face-based and a behaviour segment, each with the subject and a bystander as members, and one past
    stretch of the subject in the face-based one."""
    world = World(org_a)
    now = timezone.now()
    subject, bystander = world.subject(), world.subject()
    for s in (subject, bystander):
        _looking(world, s, now - timedelta(hours=1))
        world.event(s, "click", at=now - timedelta(hours=1))
    face = segment_save(organization=org_a, key="attentive", name="Attentive", definition=ATTENTIVE)
    clicks = segment_save(organization=org_a, key="clickers", name="Clickers", definition=CLICKED)
    SegmentMembership.objects.create(organization=org_a, segment=face, subject=subject,
                                     entered_at=now - timedelta(days=3), exited_at=now - timedelta(days=2),
                                     exit_reason=SegmentMembership.ExitReason.LEFT)
    for segment in (face, clicks):
        segment_recompute(segment_id=segment.pk, now=now)
        assert _members(segment) == {subject.pk, bystander.pk}
    return world, subject, bystander, face, clicks


@pytest.mark.parametrize("purpose", ["face_analysis", "personalization"])
def test_a_withdrawal_ends_and_cuts_every_face_based_membership_in_its_purge(two_segments, purpose) -> None:
    world, subject, bystander, face, clicks = two_segments
    before = {m.pk: (m.subject_id, m.exited_at, m.exit_reason) for m in SegmentMembership.objects.all()}
    with purges_run():
        consent_withdraw(organization=world.organization, subject=subject, purposes=[purpose], channel="partner_api")

    face_rows = {m.pk: m for m in SegmentMembership.objects.filter(segment=face)}
    assert not SegmentMembership.objects.filter(segment=face, subject_id=subject.pk).exists()
    cut = [m for pk, m in face_rows.items() if before[pk][0] == subject.pk]
    assert len(cut) == 2 and all(m.subject_id is None and m.exited_at is not None for m in cut)
    (ended,) = [m for m in cut if before[m.pk][1] is None]
    assert ended.exit_reason == SegmentMembership.ExitReason.CONSENT_ENDED
    (past,) = [m for m in cut if before[m.pk][1] is not None]
    assert (past.exited_at, past.exit_reason) == before[past.pk][1:]  # its history stays as it was
    # The bystander and the segment without a face condition are untouched.
    for m in SegmentMembership.objects.exclude(pk__in=[m.pk for m in cut]):
        assert (m.subject_id, m.exited_at, m.exit_reason) == before[m.pk]
    assert _members(face) == {bystander.pk} and _members(clicks) == {subject.pk, bystander.pk}
    (receipt,) = [e for e in LedgerEntry.objects.filter(organization=world.organization,
                                                        event=LedgerEntry.Event.PURGED)
                  if e.payload.get("purger") == "segments.membership"]
    assert (receipt.payload["memberships_ended"], receipt.payload["memberships_unlinked"]) == (1, 2)
    assert segment_size_at(segment=face, at=timezone.now()) == 1  # the cut stretch is closed, and counted as such


def test_an_expired_grant_takes_the_subject_out_of_face_based_segments_before_any_purge(two_segments) -> None:
    world, subject, bystander, face, clicks = two_segments
    now = timezone.now()
    Grant.objects.filter(subject=subject, purpose="personalization").update(expires_at=now + timedelta(hours=1))
    later = now + timedelta(hours=2)
    assert _members(face, now) == {subject.pk, bystander.pk}
    assert _members(face, later) == {bystander.pk}  # the open row is still there; the read applies the consent
    rows = open_members(organization_id=world.organization.pk, keys=["attentive"], now=later)
    assert {row["subject_id"] for row in rows} == {bystander.pk}
    assert SegmentMembership.objects.filter(segment=face, subject=subject, exited_at__isnull=True).exists()
    assert _members(clicks, later) == {subject.pk, bystander.pk}
    # The bookkeeping's expiry owes the same purge as a withdrawal.
    with purges_run():
        assert grants_expire(now=later) >= 1
    assert not SegmentMembership.objects.filter(segment=face, subject=subject).exists()
    assert SegmentMembership.objects.filter(segment=clicks, subject=subject, exited_at__isnull=True).exists()


def test_an_erasure_ends_and_cuts_every_membership(two_segments) -> None:
    world, subject, bystander, face, clicks = two_segments
    with purges_run():
        subject_erase(organization=world.organization, subject=subject, channel="partner_api")
    assert not SegmentMembership.objects.filter(subject_id=subject.pk).exists()
    for segment in (face, clicks):
        assert _members(segment) == {bystander.pk}
        erased = SegmentMembership.objects.filter(segment=segment, subject__isnull=True, exited_at__isnull=False,
                                                  exit_reason=SegmentMembership.ExitReason.ERASED)
        assert erased.count() == 1
    # A later run does not bring the erased subject back.
    segment_recompute(segment_id=clicks.pk, now=timezone.now())
    assert _members(clicks) == {bystander.pk}


# --- (b) a week of activity ---------------------------------------------------------------------------------------

# Who clicks (and who looks) on which day; a run at 02:00 of each day counts the last 24 hours.
CLICKS = {"a": (0, 1, 2), "b": (1, 4), "c": (3, 4, 5, 6)}
LOOKS = {"d": (2, 3)}
# By hand: clickers of the day, and what each run changed.
CLICKERS_SIZE = [1, 2, 1, 1, 2, 1, 1]
CLICKERS_ENTERED = [1, 1, 0, 1, 1, 0, 0]
CLICKERS_EXITED = [0, 0, 1, 1, 0, 1, 0]
ATTENTIVE_SIZE = [0, 0, 1, 1, 0, 0, 0]


def test_a_week_of_daily_runs_gives_the_size_and_changes_of_each_day(org_a) -> None:
    world = World(org_a)
    start = (timezone.now() - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    subjects = {name: world.subject(created_at=start - timedelta(days=1)) for name in "abcd"}
    for name, days in CLICKS.items():
        for day in days:
            world.event(subjects[name], "click", at=start + timedelta(days=day, hours=1))
    for name, days in LOOKS.items():
        for day in days:
            _looking(world, subjects[name], start + timedelta(days=day, hours=1))
    _looking(world, subjects["d"], start + timedelta(days=5, hours=1), looking=False)
    window = {"window_seconds": 86400}
    clickers = segment_save(organization=org_a, key="clickers", name="Clickers", definition={**CLICKED, **window})
    attentive = segment_save(organization=org_a, key="attentive", name="Attentive",
                             definition={**ATTENTIVE, **window})

    runs = [start + timedelta(days=day, hours=2) for day in range(7)]
    for day, at in enumerate(runs):
        for segment in (clickers, attentive):
            segment_recompute(segment_id=segment.pk, now=at)
        clicked = {subjects[n].pk for n, days in CLICKS.items() if day in days}
        assert _members(clickers, at) == clicked

    for day, at in enumerate(runs):
        assert segment_size_at(segment=clickers, at=at) == CLICKERS_SIZE[day]
        assert segment_size_at(segment=attentive, at=at) == ATTENTIVE_SIZE[day]
        before = CLICKERS_SIZE[day - 1] if day else 0
        assert segment_size_at(segment=clickers, at=at - timedelta(seconds=1)) == before
    history = segment_size_history(segment=clickers, since=start)
    assert [h["at"] for h in history] == runs
    assert [(h["size"], h["entered"], h["exited"]) for h in history] == list(
        zip(CLICKERS_SIZE, CLICKERS_ENTERED, CLICKERS_EXITED, strict=True))
    assert [h["size"] for h in segment_size_history(segment=clickers, since=runs[4])] == CLICKERS_SIZE[4:]
    assert [h["size"] for h in segment_size_history(segment=attentive)] == ATTENTIVE_SIZE
    # Since each run: everything that happened in the runs after it.
    for day, at in enumerate(runs):
        assert segment_changes_since(segment=clickers, since=at) == {
            "entered": sum(CLICKERS_ENTERED[day + 1:]), "exited": sum(CLICKERS_EXITED[day + 1:])}
    assert segment_changes_since(segment=attentive, since=start) == {"entered": 1, "exited": 1}
    clickers.refresh_from_db()
    assert clickers.size == CLICKERS_SIZE[-1] and clickers.last_run_at == runs[-1]


# --- (c) static segments ------------------------------------------------------------------------------------------


def test_a_definition_no_subject_can_meet_empties_the_segment(org_a) -> None:
    # Found by the property test: a leaf that compiles to "nothing" (no band left) must recompute, not crash.
    world = World(org_a)
    now = timezone.now()
    subject = world.subject()
    world.event(subject, "click", at=now)
    segment = segment_save(organization=org_a, key="clicked", name="Clicked", definition=CLICKED)
    assert segment_recompute(segment_id=segment.pk, now=now).size == 1
    every_band = ["under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus"]
    segment = segment_save(organization=org_a, key="clicked", name="Clicked", segment=segment, definition={
        "any": [CLICKED, {"field": "face.age_band", "op": "not_in", "value": every_band}]})
    assert segment_recompute(segment_id=segment.pk, now=now).size == 1  # the any still has the click
    segment = segment_save(organization=org_a, key="clicked", name="Clicked", segment=segment, definition={
        "all": [CLICKED, {"field": "face.age_band", "op": "not_in", "value": every_band}]})
    run = segment_recompute(segment_id=segment.pk, now=now)
    assert (run.size, run.exited) == (0, 1)


def test_a_snapshot_replaces_the_members(org_a) -> None:
    world = World(org_a)
    now = timezone.now()
    a, b = world.subject(), world.subject()
    world.event(a, "click", at=now - timedelta(days=2))
    world.event(b, "click", at=now)
    seg = segment_save(organization=org_a, key="snap", name="Snap", kind=Segment.Kind.STATIC,
                       definition={**CLICKED, "window_seconds": 86400})
    assert segment_recompute(segment_id=seg.pk, now=now) is None  # a static segment does not recompute itself
    first = segment_snapshot(segment=seg, now=now - timedelta(days=1, hours=12))
    assert (first.kind, first.size, first.entered, first.exited) == ("snapshot", 1, 1, 0)
    assert _members(seg) == {a.pk}
    second = segment_snapshot(segment=seg, now=now)
    assert (second.size, second.entered, second.exited) == (1, 1, 1)
    assert _members(seg) == {b.pk}
    assert SegmentMembership.objects.get(segment=seg, subject=a).exit_reason == SegmentMembership.ExitReason.REPLACED
    dynamic = segment_save(organization=org_a, key="dyn", name="Dyn", definition=CLICKED)
    with pytest.raises(SegmentError) as refused:
        segment_snapshot(segment=dynamic)
    assert refused.value.path == "kind"


def test_an_upload_matches_partner_ids_by_their_hash_and_counts_the_unmatched(org_a, org_b) -> None:
    world = World(org_a)
    u1, u2 = world.subject(partner_user_id="u-1"), world.subject(partner_user_id="u-2")
    gone = world.subject(partner_user_id="u-gone")
    subject_erase(organization=org_a, subject=gone, channel="partner_api")
    World(org_b).subject(partner_user_id="u-3")  # another organization's subject with an uploaded id
    seg = segment_save(organization=org_a, key="list", name="List", kind=Segment.Kind.STATIC)
    run = segment_upload(segment=seg, text="partner_user_id\nu-1\r\nu-2\n\n u-3 \nu-gone\nnobody\n")
    assert run.kind == "upload" and run.details == {"ids": 5, "matched": 2, "unmatched": 3}
    assert _members(seg) == {u1.pk, u2.pk} and run.size == 2
    again = segment_upload(segment=seg, text="u-2\n")
    assert (again.entered, again.exited, _members(seg)) == (0, 1, {u2.pk})


@pytest.mark.parametrize(("text", "path"), [
    ("u-1\nu-2\nu-1\n", "upload.line[3]"),
    ("u-1\nu-2,extra\n", "upload.line[2]"),
    ("u-1\n\nbad\x07id\n", "upload.line[3]"),
    ("u-1\n" + "x" * 201 + "\n", "upload.line[2]"),
    ("\n\n", "upload"),
])
def test_a_bad_upload_names_its_line_and_writes_nothing(org_a, text, path) -> None:
    world = World(org_a)
    kept = world.subject(partner_user_id="u-9")
    seg = segment_save(organization=org_a, key="list", name="List", kind=Segment.Kind.STATIC)
    segment_upload(segment=seg, text="u-9")
    rows, runs = list(SegmentMembership.objects.values_list("pk", "exited_at")), SegmentRun.objects.count()
    world.subject(partner_user_id="u-1")
    with pytest.raises(SegmentError) as refused:
        segment_upload(segment=seg, text=text)
    assert refused.value.path == path
    assert list(SegmentMembership.objects.values_list("pk", "exited_at")) == rows
    assert SegmentRun.objects.count() == runs and _members(seg) == {kept.pk}


# --- (d) one subject at a time ------------------------------------------------------------------------------------


def test_refreshing_a_subject_follows_the_segments_it_depends_on(org_a) -> None:
    world = World(org_a)
    now = timezone.now()
    subject = world.subject()
    # Keys sort before the segment they name: the dependency order, not the key order, must decide.
    segment_save(organization=org_a, key="z-clickers", name="Clickers", definition=CLICKED)
    segment_save(organization=org_a, key="a-not-clickers", name="Not",
                 definition={"field": "segment", "op": "not_in", "value": ["z-clickers"]})
    segment_save(organization=org_a, key="b-clickers-too", name="Too",
                 definition={"all": [{"field": "segment", "op": "in", "value": ["z-clickers"]},
                                     {"field": "consent.partner_sharing", "op": "eq", "value": "active"}]})
    assert segment_refresh_subject(organization_id=org_a.pk, subject_id=subject.pk, now=now) == {
        "a-not-clickers": "entered"}
    assert segment_refresh_subject(organization_id=org_a.pk, subject_id=subject.pk, now=now) == {}
    world.event(subject, "click", at=now)
    later = now + timedelta(minutes=1)
    assert segment_refresh_subject(organization_id=org_a.pk, subject_id=subject.pk, now=later) == {
        "z-clickers": "entered", "b-clickers-too": "entered", "a-not-clickers": "exited"}
    sizes = dict(Segment.objects.values_list("key", "size"))
    assert sizes == {"z-clickers": 1, "b-clickers-too": 1, "a-not-clickers": 0}
    # A week on, the click is out of the window: out again, in order.
    assert segment_refresh_subject(organization_id=org_a.pk, subject_id=subject.pk,
                                   now=later + timedelta(days=8)) == {
        "z-clickers": "exited", "b-clickers-too": "exited", "a-not-clickers": "entered"}
    assert SegmentMembership.objects.get(segment__key="z-clickers").exit_reason == "left"


def test_new_features_of_a_subject_bring_it_into_a_face_segment(org_a, eager) -> None:
    world = World(org_a)
    subject = world.subject()
    face = segment_save(organization=org_a, key="attentive", name="Attentive", definition=ATTENTIVE)
    segment_recompute(segment_id=face.pk)
    assert _members(face) == set()
    session = world.session(subject)
    world.frame(session, at=timezone.now(), looking=True)
    grant = Grant.objects.get(subject=subject, purpose="face_analysis")
    assert session_aggregates_refresh(session_id=session.pk, grant=grant)  # its news: features changed
    assert _members(face) == {subject.pk}
    assert cache.get(dispatch.subject_refresh_key(subject.pk)) is None  # the task cleared its mark


def test_a_recorded_event_brings_the_subject_into_a_behaviour_segment_after_commit(
    org_a, eager, django_capture_on_commit_callbacks,
) -> None:
    world = World(org_a)
    subject = world.subject()
    clicks = segment_save(organization=org_a, key="clickers", name="Clickers", definition=CLICKED)
    decision = Decision.objects.create(organization=org_a, campaign=world.campaign, variant=world.variant,
                                       subject=subject, visitor_id="visitor-1", reason=Decision.Reason.DEFAULT)
    with django_capture_on_commit_callbacks(execute=True):
        event_record(organization=org_a, decision_public_id=decision.public_id, visitor_id=None, kind="click",
                     name="", value=None, currency="", client_event_id=uuid.uuid4().hex, occurred_at=None)
        assert _members(clicks) == set()  # not before the event commits
    assert _members(clicks) == {subject.pk}


def test_news_of_one_subject_is_debounced_to_one_refresh(org_a, monkeypatch, settings) -> None:
    sent = []
    task = current_app.tasks[dispatch.REFRESH_SUBJECT]
    monkeypatch.setattr(task, "apply_async", lambda **kwargs: sent.append(kwargs))
    world = World(org_a)
    subject, other = world.subject(), world.subject()
    for _ in range(3):
        dispatch.send_subject_refresh(organization_id=org_a.pk, subject_id=subject.pk)
    dispatch.send_subject_refresh(organization_id=org_a.pk, subject_id=other.pk)
    assert sent == [
        {"kwargs": {"organization_id": org_a.pk, "subject_id": subject.pk},
         "countdown": settings.VISAGE_SEGMENT_REFRESH_SECONDS},
        {"kwargs": {"organization_id": org_a.pk, "subject_id": other.pk},
         "countdown": settings.VISAGE_SEGMENT_REFRESH_SECONDS},
    ]
    assert cache.get(dispatch.subject_refresh_key(subject.pk)) is not None
    tasks.refresh_subject(organization_id=org_a.pk, subject_id=subject.pk)  # clears the mark first
    dispatch.send_subject_refresh(organization_id=org_a.pk, subject_id=subject.pk)
    assert len(sent) == 3


def test_the_cadence_adapts_to_the_run_time_and_decides_what_is_due(org_a) -> None:
    assert next_cadence(0) == 60 and next_cadence(3000) == 60  # 3 s is 5 % of a minute
    assert next_cadence(6000) == 120 and next_cadence(10**9) == 24 * 3600
    world = World(org_a)
    world.subject()
    now = timezone.now()
    first = segment_save(organization=org_a, key="first", name="First", definition=CLICKED)
    second = segment_save(organization=org_a, key="second", name="Second", definition=ATTENTIVE)
    segment_save(organization=org_a, key="static", name="Static", kind=Segment.Kind.STATIC, definition=CLICKED)
    mine = {first.pk, second.pk}
    assert mine <= set(segments_due(now=now + timedelta(seconds=1)))  # new definitions are due at once
    segment_recompute(segment_id=first.pk, now=now)
    segment_recompute(segment_id=second.pk, now=now + timedelta(seconds=10))
    first.refresh_from_db()
    assert first.cadence_seconds == next_cadence(first.last_run_ms)
    assert first.next_run_at == now + timedelta(seconds=first.cadence_seconds)
    assert not mine & set(segments_due(now=now + timedelta(seconds=first.cadence_seconds - 1)))
    due = [pk for pk in segments_due(now=now + timedelta(days=2)) if pk in mine]
    assert due == [first.pk, second.pk]  # oldest due first; the static segment never


# --- (e) definitions refused before anything is saved --------------------------------------------------------------


@pytest.mark.parametrize(("definition", "path"), [
    ({"all": []}, "definition.all"),
    ({"all": [CLICKED, {"field": "face.nose", "op": "eq", "value": 1}]}, "definition.all[1].field"),
    ({"any": [{"not": {**CLICKED, "window_seconds": 59}}]}, "definition.any[0].not.window_seconds"),
    ({**CLICKED, "window_seconds": 365 * 86400 + 1}, "definition.window_seconds"),
    ({**ATTENTIVE, "min_frames": 0}, "definition.min_frames"),
    ({**CLICKED, "op": "contains"}, "definition.op"),
    ({"all": [CLICKED], "any": [CLICKED]}, "definition"),
    ({"field": "behaviour.custom_events", "op": "gte", "value": 1}, "definition.name"),
    ({"all": [CLICKED, {"field": "segment", "op": "in", "value": ["nowhere"]}]}, "definition.all[1].value[0]"),
    ([CLICKED], "definition"),
])
def test_a_malformed_definition_is_refused_with_its_node_path(org_a, definition, path) -> None:
    with pytest.raises(ConditionError) as refused:
        segment_save(organization=org_a, key="bad", name="Bad", definition=definition)
    assert refused.value.path == path
    assert not Segment.objects.filter(organization=org_a).exists()


def test_cycles_are_refused_naming_the_leaf(org_a) -> None:
    a = segment_save(organization=org_a, key="a", name="A", definition=CLICKED)
    segment_save(organization=org_a, key="b", name="B", definition={"field": "segment", "op": "in", "value": ["a"]})
    with pytest.raises(ConditionError) as refused:
        segment_save(organization=org_a, key="a", name="A", segment=a,
                     definition={"all": [CLICKED, {"field": "segment", "op": "in", "value": ["b"]}]})
    assert refused.value.path == "definition.all[1].value[0]"
    a.refresh_from_db()
    assert a.definition["field"] == "behaviour.clicks"
    with pytest.raises(ConditionError) as itself:
        segment_save(organization=org_a, key="c", name="C",
                     definition={"any": [CLICKED, {"field": "segment", "op": "not_in", "value": ["c"]}]})
    assert itself.value.path == "definition.any[1].value[0]"
    assert set(Segment.objects.values_list("key", flat=True)) == {"a", "b"}


def test_another_organizations_segment_or_campaign_is_unknown(org_a, org_b) -> None:
    segment_save(organization=org_b, key="theirs", name="Theirs", definition=CLICKED)
    theirs = make_campaign(org_b)
    with pytest.raises(ConditionError) as segment:
        segment_save(organization=org_a, key="mine", name="Mine",
                     definition={"field": "segment", "op": "in", "value": ["theirs"]})
    assert segment.value.path == "definition.value[0]"
    with pytest.raises(ConditionError) as campaign:
        segment_save(organization=org_a, key="mine", name="Mine",
                     definition={"all": [{**CLICKED, "campaign": theirs.pk}]})
    assert campaign.value.path == "definition.all[0].campaign"
    assert not Segment.objects.filter(organization=org_a).exists()
    mine = make_campaign(org_a)
    ok = segment_save(organization=org_a, key="mine", name="Mine", definition={**CLICKED, "campaign": mine.pk})
    assert ok.definition["campaign"] == mine.pk


@pytest.mark.parametrize(("fields", "path"), [
    ({"key": "Not A Slug"}, "key"), ({"key": "-x"}, "key"), ({"name": " "}, "name"), ({"kind": "weekly"}, "kind"),
    ({"definition": None}, "definition"),
])
def test_a_bad_key_name_or_kind_is_refused(org_a, fields, path) -> None:
    data = {"key": "ok", "name": "Ok", "definition": CLICKED, **fields}
    with pytest.raises((SegmentError, ConditionError)) as refused:
        segment_save(organization=org_a, **data)
    assert refused.value.path == path
    assert not Segment.objects.exists()


def test_conversion_values_count_only_conversions(org_a) -> None:
    world = World(org_a)
    now = timezone.now()
    buyer, clicker = world.subject(), world.subject()
    world.event(buyer, "conversion", at=now, value=Decimal("20"))
    world.event(clicker, "click", at=now, value=Decimal("50"))
    seg = segment_save(organization=org_a, key="spent", name="Spent",
                       definition={"field": "behaviour.conversion_value", "op": "gte", "value": 10})
    segment_recompute(segment_id=seg.pk, now=now)
    assert _members(seg) == {buyer.pk}


def test_a_segment_naming_a_face_based_one_counts_only_subjects_with_face_consent(org_a) -> None:
    # "Not attentive" names a face-based segment, so it is face-based too: its run, its one-subject refresh and
    # its preview count only subjects whose face analysis and personalization consents are live, as its reads do.
    world = World(org_a)
    now = timezone.now()
    consenting, behaviour_only = world.subject(), world.subject(purposes=("partner_sharing",))
    attentive = segment_save(organization=org_a, key="attentive", name="Attentive", definition=ATTENTIVE)
    segment_recompute(segment_id=attentive.pk, now=now)
    definition = {"field": "segment", "op": "not_in", "value": ["attentive"]}
    inattentive = segment_save(organization=org_a, key="inattentive", name="Not attentive", definition=definition)
    assert inattentive.face_based
    run = segment_recompute(segment_id=inattentive.pk, now=now)
    assert run.size == 1 and _members(inattentive) == {consenting.pk}
    assert set(SegmentMembership.objects.filter(segment=inattentive).values_list("subject_id", flat=True)) == {
        consenting.pk}
    assert segment_refresh_subject(organization_id=org_a.pk, subject_id=behaviour_only.pk, now=now) == {}
    assert segment_preview(organization_id=org_a.pk, definition=definition, now=now) == 1
