"""Analysis in the worker: the REAL engine on a real face writes features, model versions, aggregates and
the face context; a frame is analysed at most once; consent is checked again right before inference."""

from __future__ import annotations

import pytest
from django.utils import timezone

from consent.models import PurgeRequest
from faceanalysis import dispatch
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.services import worker
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frames_expire
from faceanalysis.store import frame_store
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session, withdraw

pytestmark = pytest.mark.django_db


def queue_frames(session: CaptureSession, count: int = 1, *, step_ms: int = 200) -> list[Frame]:
    """Frames through real intake; the tasks it would queue are not run (no commit inside the test)."""
    return frame_intake(
        session=session,
        frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg", media_time_ms=i * step_ms) for i in range(count)],
    )


@pytest.mark.slow
def test_real_engine_analyses_the_astronaut_and_writes_features(analyze, org_a, real_engine) -> None:
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    assert analyze(frame_id=frame.pk) == {"analyzed": 1}

    frame.refresh_from_db()
    assert frame.status == Frame.Status.ANALYZED
    features = FrameFeatures.objects.get(frame=frame)
    assert features.face_count == 1 and features.quality_ok
    assert features.expression == "happy"  # the astronaut smiles
    assert features.smile is not None and features.smile > 0.5
    assert features.looking_at_screen is True and features.eyes_open is True
    assert features.grant_id == session.grant_id
    assert {m["key"] for m in features.model_versions} >= {"detector", "landmarker", "expression"}
    assert all(m["version"] for m in features.model_versions)
    assert "landmarks" not in features.faces[0] and "embedding" not in features.faces[0]
    assert features.latency_ms >= 0

    session.refresh_from_db()
    assert session.aggregates["frames_analyzed"] == 1
    assert session.aggregates["attention_share"] == 1.0
    assert session.aggregates["smile_share"] == 1.0
    assert session.aggregates["expression_distribution"]["happy"] == 1.0
    assert session.aggregates["quality_rejection_share"] == 0.0
    context = FaceContext.objects.get(subject=session.subject, campaign=session.campaign)
    assert context.grant_id == session.grant_id
    assert context.features["latest"]["expression"] == "happy"
    # The pixels are gone from the store once the features are written.
    assert not frame_store().exists(frame.pk)


@pytest.mark.slow
def test_gpu_queue_analyses_frames_of_several_sessions_with_the_real_engine(analyze, org_a, real_engine, settings):
    """The GPU worker's service path with the real engine (on CUDA where onnxruntime offers it). On
    PostgreSQL the first task claims every queued frame into one engine batch; SQLite has no SKIP LOCKED,
    so there each task takes its own frame."""
    from django.db import connection

    settings.VISAGE_ANALYSIS_QUEUE = dispatch.GPU_QUEUE
    frames = [frame for _ in range(3) for frame in queue_frames(make_capture_session(org_a)[0], 2)]
    outcomes = [analyze(frame_id=frame.pk, claim_more=15) for frame in frames]
    if connection.features.has_select_for_update_skip_locked:
        assert outcomes == [{"analyzed": 6}] + [{"already_finished": 1}] * 5
    else:
        assert outcomes == [{"analyzed": 1}] * 6
    features = FrameFeatures.objects.filter(frame__in=frames)
    assert features.count() == 6
    assert {(f.face_count, f.expression, f.looking_at_screen) for f in features} == {(1, "happy", True)}
    assert all(f.grant_id == Frame.objects.get(pk=f.frame_id).grant_id for f in features)
    assert not any(frame_store().exists(frame.pk) for frame in frames)


@pytest.mark.slow
def test_real_engine_finds_no_face_in_a_blank_frame_and_counts_a_quality_rejection(
    analyze, org_a, real_engine
) -> None:
    import numpy as np

    from tests.faceanalysis.factories import encode

    session, _ = make_capture_session(org_a)
    (frame,) = frame_intake(
        session=session,
        frames=[IncomingFrame(encode(np.full((480, 640, 3), 128, dtype=np.uint8), "JPEG"), "image/jpeg")],
    )
    analyze(frame_id=frame.pk)
    features = FrameFeatures.objects.get(frame=frame)
    assert features.face_count == 0 and not features.quality_ok and features.quality_reasons == ["no_face"]
    session.refresh_from_db()
    assert session.aggregates["quality_rejection_share"] == 1.0


def test_redelivered_frame_is_analysed_once(analyze, org_a, fake_engine) -> None:
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    assert analyze(frame_id=frame.pk) == {"analyzed": 1}
    assert analyze(frame_id=frame.pk) == {"already_finished": 1}
    assert FrameFeatures.objects.filter(frame=frame).count() == 1
    assert fake_engine.images == 1


def test_a_finished_frame_whose_bytes_arrived_late_leaves_none_behind(analyze, org_a, fake_engine) -> None:
    """A withdrawal can drop a frame between its row and its bytes reaching the store (intake writes the row
    first); the message that follows finds it finished and deletes the bytes, not only the TTL."""
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    worker._mark([frame.pk], Frame.Status.DROPPED, "consent_withdrawn")
    assert frame_store().exists(frame.pk)
    assert analyze(frame_id=frame.pk) == {"already_finished": 1}
    assert not frame_store().exists(frame.pk)
    assert fake_engine.images == 0


def test_worker_that_died_after_taking_the_bytes_leaves_them_for_the_redelivery(analyze, org_a, fake_engine) -> None:
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    store = frame_store()
    assert store.take(frame.pk) is not None  # a worker took the frame, then died before committing
    assert analyze(frame_id=frame.pk) == {"analyzed": 1}  # the redelivered message
    assert not store.exists(frame.pk)


def test_frame_whose_consent_was_withdrawn_while_queued_is_dropped_unanalysed(analyze, org_a, fake_engine) -> None:
    from consent.models import Grant

    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    # Withdrawn without the cascade having run yet (its signal fires on commit): the worker's own check counts.
    Grant.objects.filter(subject=session.subject, purpose="face_analysis").update(
        ended_at="2026-01-01T00:00:00Z", end_reason="withdrawn"
    )
    assert analyze(frame_id=frame.pk) == {"dropped": 1}
    frame.refresh_from_db()
    assert (frame.status, frame.reason) == (Frame.Status.DROPPED, "consent_withdrawn")
    assert fake_engine.images == 0
    assert not frame_store().exists(frame.pk)
    assert not FrameFeatures.objects.exists()


def test_guarded_task_drops_a_frame_without_consent(org_a, fake_engine) -> None:
    from consent.models import Grant
    from faceanalysis.tasks import analyze_frame

    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    Grant.objects.filter(subject=session.subject, purpose="face_analysis").update(expires_at="2000-01-01T00:00:00Z")
    result = analyze_frame.apply(
        kwargs={"organization_id": org_a.pk, "subject_id": session.subject_id, "frame_id": frame.pk}
    ).get()
    assert result == {"dropped": 1, "reason": "expired"}
    assert Frame.objects.get(pk=frame.pk).reason == "consent_expired"
    assert fake_engine.images == 0


def test_frame_whose_bytes_expired_is_counted_as_expired(analyze, org_a, fake_engine) -> None:
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    frame_store().discard([frame.pk])  # the TTL ran out before any worker took it
    assert analyze(frame_id=frame.pk) == {"expired": 1}
    assert Frame.objects.get(pk=frame.pk).status == Frame.Status.EXPIRED
    assert fake_engine.images == 0


def test_sweep_counts_unclaimed_frames_past_their_ttl_as_expired(org_a, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    session, _ = make_capture_session(org_a)
    old, fresh = queue_frames(session, 2)
    Frame.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=1))
    frame_store().discard([old.pk])
    assert frames_expire() == 1
    assert Frame.objects.get(pk=old.pk).status == Frame.Status.EXPIRED
    assert Frame.objects.get(pk=fresh.pk).status == Frame.Status.QUEUED


def test_undecodable_bytes_fail_the_frame_with_a_reason(analyze, org_a, fake_engine) -> None:
    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    store = frame_store()
    store.discard([frame.pk])
    store.put_many({frame.pk: b"\xff\xd8\xff" + b"\x00" * 100 + b"\xff\xd9"}, 60)
    assert analyze(frame_id=frame.pk) == {"failed": 1}
    assert Frame.objects.get(pk=frame.pk).reason == "decode_error"
    assert not store.exists(frame.pk)


def test_withdrawal_cascade_drops_pending_frames_purges_features_and_ends_sessions(
    analyze, org_a, fake_engine, django_capture_on_commit_callbacks, eager
) -> None:
    session, _ = make_capture_session(org_a)
    done, *pending = queue_frames(session, 5)
    analyze(frame_id=done.pk)
    assert FrameFeatures.objects.filter(subject=session.subject).exists()
    assert FaceContext.objects.filter(subject=session.subject).exists()

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(session.subject)

    assert not FrameFeatures.objects.filter(subject=session.subject).exists()
    assert not FaceContext.objects.filter(subject=session.subject).exists()
    statuses = set(Frame.objects.filter(pk__in=[f.pk for f in pending]).values_list("status", "reason"))
    assert statuses == {(Frame.Status.DROPPED, "consent_withdrawn")}
    assert not any(frame_store().exists(f.pk) for f in pending)
    session.refresh_from_db()
    assert session.end_reason == CaptureSession.EndReason.CONSENT_WITHDRAWN and session.aggregates == {}
    # Their messages arrive later and change nothing.
    for frame in pending:
        assert analyze(frame_id=frame.pk) == {"already_finished": 1}
    assert fake_engine.images == 1
    # The ledger holds the deletion receipt: why and how much, under the subject's pseudonym.
    from consent.models import LedgerEntry

    receipt = LedgerEntry.objects.filter(organization=org_a, event=LedgerEntry.Event.PURGED,
                                         payload__purger="faceanalysis.face_data").get()
    assert receipt.subject_ref == str(session.subject.public_id)
    request = PurgeRequest.objects.get(subject_ref=str(session.subject.public_id))
    assert receipt.payload == {"reason": "consent_withdrawn", "frames_dropped": 4, "features_purged": 1,
                               "contexts_purged": 1, "sessions_ended": 1, "request": str(request.public_id),
                               "purger": "faceanalysis.face_data"}
    assert request.completed_at is not None
    assert list(request.parts.filter(purger="faceanalysis.face_data").values_list(
        "purger", "status", "receipt_sequence")) == [("faceanalysis.face_data", "done", receipt.sequence)]
    assert set(request.parts.values_list("purger", "status")) == {
        ("faceanalysis.face_data", "done"), ("segments.membership", "done")}


def test_withdrawing_only_personalization_keeps_features_but_hides_them_from_decisions(
    analyze, org_a, fake_engine, django_capture_on_commit_callbacks
) -> None:
    from campaigns.decisions import decision_context
    from campaigns.request_context import request_attributes
    from faceanalysis.selectors import face_signals_for_decision

    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    analyze(frame_id=frame.pk)
    attributes = request_attributes(now=timezone.now())
    assert len(face_signals_for_decision(organization=org_a, subject=session.subject, now=timezone.now())) == 1
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(session.subject, ("personalization",))
    assert FrameFeatures.objects.filter(frame=frame).exists()
    # Rules that need biometric features are skipped: the decision gets no face signals, and says why.
    context = decision_context(campaign=session.campaign, subject=session.subject, attributes=attributes)
    assert context.face is None and context.face_unavailable == "no_personalization_consent"


def test_face_signals_are_scoped_to_the_organization(analyze, org_a, org_b, fake_engine) -> None:
    from faceanalysis.selectors import face_signals_for_decision

    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    analyze(frame_id=frame.pk)
    now = timezone.now()
    assert len(face_signals_for_decision(organization=org_a, subject=session.subject, now=now)) == 1
    assert face_signals_for_decision(organization=org_b, subject=session.subject, now=now) is None
    assert face_signals_for_decision(organization=None, subject=session.subject, now=now) is None


def test_session_api_reads_aggregates_frames_and_timeline(analyze, org_a, fake_engine) -> None:
    from django.urls import reverse
    from rest_framework.test import APIClient

    session, token = make_capture_session(org_a)
    for frame in queue_frames(session, 6, step_ms=500):
        analyze(frame_id=frame.pk)
    client = APIClient()
    client.credentials(HTTP_X_CAPTURE_TOKEN=token)
    detail = client.get(reverse("api:capture-session-detail", kwargs={"session_id": session.public_id})).json()
    assert detail["aggregates"]["frames_analyzed"] == 6 and detail["frames"]["analyzed"] == 6
    frames = client.get(reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})).json()
    assert frames["count"] == 6 and frames["results"][0]["features"]["expression"] == "happy"
    timeline = client.get(
        reverse("api:capture-session-timeline", kwargs={"session_id": session.public_id}), {"bucket": "1"}
    ).json()
    assert timeline["media_ref"] == "video-42"
    assert [(b["start_s"], b["frames_analyzed"]) for b in timeline["buckets"]] == [(0.0, 2), (1.0, 2), (2.0, 2)]


def test_database_counted_aggregates_match_the_pure_definitions(org_a, settings) -> None:
    """The worker counts in SQL; `aggregates.summarize` is the definition. Mixed rows must agree."""
    from django.utils import timezone

    from faceanalysis.aggregates import summarize
    from faceanalysis.selectors import session_feature_rows, session_summary

    settings.VISAGE_CAPTURE_MAX_FPS = 1000
    session, _ = make_capture_session(org_a)
    frames = [f for _ in range(4) for f in queue_frames(session, 10, step_ms=250)]
    for i, frame in enumerate(frames):
        frame.media_time_ms = i * 250
    now = timezone.now()
    expressions = ["happy", "neutral", "", "surprise"]
    FrameFeatures.objects.bulk_create([
        FrameFeatures(
            organization=org_a, frame=frame, session=session, subject=session.subject, grant=session.grant,
            media_time_ms=frame.media_time_ms, face_count=0 if i % 7 == 0 else 1, quality_ok=i % 5 != 0,
            looking_at_screen=i % 3 != 0, attention_score=(i % 10) / 10, eyes_open=i % 4 != 1,
            smile=(i % 6) / 5, expression=expressions[i % 4], received_at=now, latency_ms=1.0,
        )
        for i, frame in enumerate(frames)
    ])
    expected = summarize(session_feature_rows(session))
    actual = session_summary(session)
    assert actual == expected
    assert expected["blinks"] > 0 and 0 < expected["attention_share"] < 1


@pytest.fixture
def trailing(analyze, monkeypatch):
    """The refreshes frames schedule, recorded instead of run (a broker's countdown is not the subject here);
    `run_all()` runs them through the real guarded task."""
    from faceanalysis import tasks

    sent: list[dict] = []
    def record(kwargs, countdown):
        sent.append({**kwargs, "in": countdown})

    monkeypatch.setattr(tasks.refresh_session_aggregates, "apply_async", record)

    def run_all() -> list[bool]:
        pending = [dict(call) for call in sent]
        sent.clear()
        task = tasks.refresh_session_aggregates
        return [task.run(**{k: v for k, v in call.items() if k != "in"}) for call in pending]

    return sent, run_all


def test_aggregates_are_recounted_an_interval_after_a_frame_asks_one_at_a_time_and_exactly(
    analyze, org_a, fake_engine, settings, trailing, django_capture_on_commit_callbacks
) -> None:
    sent, run_all = trailing
    settings.VISAGE_AGGREGATES_REFRESH_MS = 60_000
    session, _ = make_capture_session(org_a)
    frames = queue_frames(session, 4)
    for frame in frames[:3]:
        analyze(frame_id=frame.pk)
    # One refresh for the session, an interval after the first frame, however many frames asked.
    assert sent == [{"organization_id": org_a.pk, "subject_id": session.subject_id, "session_id": session.pk,
                     "in": 60.0}]
    session.refresh_from_db()
    assert session.aggregates == {}  # nothing recounted on the frames' own path

    with django_capture_on_commit_callbacks(execute=True):
        assert run_all() == [True]
    session.refresh_from_db()
    assert session.aggregates["frames_analyzed"] == 3
    context = FaceContext.objects.get(subject=session.subject, campaign=session.campaign)
    assert context.features["aggregates"]["frames_analyzed"] == 3

    analyze(frame_id=frames[3].pk)  # finished after that refresh started: it schedules the next one
    assert [call["session_id"] for call in sent] == [session.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert run_all() == [True]
    session.refresh_from_db()
    assert session.aggregates["frames_analyzed"] == 4  # exact once the frames stopped
    assert sent == []


def test_trailing_refresh_of_a_withdrawn_subject_does_nothing(analyze, org_a, fake_engine, settings, trailing) -> None:
    sent, run_all = trailing
    settings.VISAGE_AGGREGATES_REFRESH_MS = 60_000
    session, _ = make_capture_session(org_a)
    frames = queue_frames(session, 2)
    analyze(frame_id=frames[0].pk)
    analyze(frame_id=frames[1].pk)
    assert len(sent) == 1
    withdraw(session.subject)
    assert run_all() == [{"status": "dropped", "reason": "withdrawn"}]  # the guard answers, the body never runs
    session.refresh_from_db()
    assert session.aggregates == {}


def test_a_steady_frame_costs_few_queries(analyze, org_a, fake_engine, settings, trailing,
                                          django_capture_on_commit_callbacks) -> None:
    """The worker's hot path through the real task, pinned: the transaction's begin and commit, consent once
    (the subject locked for share), claim the frame, features, status. Each is a round trip that ten streams
    pay 50 times a second."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from faceanalysis import tasks

    settings.VISAGE_AGGREGATES_REFRESH_MS = 60_000
    session, _ = make_capture_session(org_a)
    frames = queue_frames(session, 2)
    analyze(frame_id=frames[0].pk)
    ids = {"organization_id": org_a.pk, "subject_id": session.subject_id, "frame_id": frames[1].pk}
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        assert tasks.analyze_frame.run(**ids) == {"analyzed": 1}
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= 6, statements
    assert sum("consent_grant" in sql for sql in statements) == 1


def test_engine_error_fails_the_frame_instead_of_leaving_it_queued(analyze, org_a) -> None:
    from faceanalysis import inference

    class BrokenEngine:
        """A FAKE engine that raises, as a model or driver fault would."""

        def analyze_batch(self, images, timestamps=None, attributes=None):
            raise RuntimeError("driver fault")

    session, _ = make_capture_session(org_a)
    (frame,) = queue_frames(session)
    inference.set_engine(BrokenEngine())
    try:
        assert analyze(frame_id=frame.pk) == {"failed": 1}
    finally:
        inference.set_engine(None)
    frame.refresh_from_db()
    assert (frame.status, frame.reason) == (Frame.Status.FAILED, "engine_error")
    assert not frame_store().exists(frame.pk)


def test_retention_purge_deletes_features_past_the_organizations_period_and_writes_a_receipt(
    analyze, org_a, org_b, fake_engine, eager, django_capture_on_commit_callbacks
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from consent.models import LedgerEntry, RetentionPolicy
    from consent.purging import retention_run
    from consent.services import retention_policy_set

    retention_policy_set(organization=org_a, feature_retention_days=30, grant_validity_days=365)
    RetentionPolicy.objects.filter(organization=org_a).update(aggregate_retention_days=30)
    old_session, _ = make_capture_session(org_a)
    new_session, _ = make_capture_session(org_a)
    other_session, _ = make_capture_session(org_b)  # org B keeps the defaults (365 days; 30 for face context)
    for session in (old_session, new_session, other_session):
        (frame,) = queue_frames(session)
        analyze(frame_id=frame.pk)
    long_ago = timezone.now() - timedelta(days=31)
    FrameFeatures.objects.filter(session__in=[old_session, other_session]).update(analyzed_at=long_ago)
    FaceContext.objects.filter(subject=old_session.subject).update(updated_at=long_ago)
    FaceContext.objects.filter(subject=other_session.subject).update(updated_at=long_ago + timedelta(days=2))
    CaptureSession.objects.filter(pk__in=[old_session.pk, other_session.pk]).update(started_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        (request,) = retention_run()
    request.refresh_from_db()

    assert (request.organization_id, request.reason) == (org_a.pk, "retention_period_ended")
    parts = {part.category: (part.status, part.counts) for part in request.parts.all()}
    assert parts == {
        "features": ("done", {"framefeatures_deleted": 1}),
        "face_context": ("done", {"facecontext_deleted": 1}),
        "aggregates": ("done", {"capturesession_cut": 1}),
    }
    assert not FrameFeatures.objects.filter(session=old_session).exists()
    assert FrameFeatures.objects.filter(session=new_session).exists()
    assert FrameFeatures.objects.filter(session=other_session).exists()
    assert FaceContext.objects.filter(subject=other_session.subject).exists()
    old_session.refresh_from_db()
    assert old_session.aggregates == {}
    receipts = LedgerEntry.objects.filter(organization=org_a, event=LedgerEntry.Event.PURGED)
    assert sorted(r.payload["category"] for r in receipts) == ["aggregates", "face_context", "features"]
    assert {r.payload["reason"] for r in receipts} == {"retention_period_ended"}
    assert not LedgerEntry.objects.filter(organization=org_b, event=LedgerEntry.Event.PURGED).exists()
    # A second run finds nothing due and records nothing.
    assert retention_run() == []
    assert LedgerEntry.objects.filter(event=LedgerEntry.Event.PURGED).count() == 3
