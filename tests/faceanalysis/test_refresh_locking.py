"""A session's recount holds its row lock without holding up the frames of that session (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from consent.purging import PurgeOrder
from faceanalysis.models import FaceContext, Frame, FrameFeatures
from faceanalysis.purgers import face_data_purge
from faceanalysis.services import context
from tests.faceanalysis.factories import make_capture_session

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run with DATABASE_URL=postgres://... (see scripts/test).")


def _frame(session) -> Frame:
    """A frame row as intake writes it: its foreign key to the session takes KEY SHARE on the session's row."""
    return Frame.objects.create(
        organization_id=session.organization_id, session=session, subject_id=session.subject_id,
        grant=session.grant, content_type="image/jpeg", byte_size=1000, width=640, height=480, queue="analysis",
    )


def test_frames_of_a_session_are_written_while_its_recount_runs(org_a, monkeypatch) -> None:
    session, _ = make_capture_session(org_a)
    FrameFeatures.objects.create(
        organization=org_a, frame=_frame(session), session=session, subject=session.subject, grant=session.grant,
        face_count=1, quality_ok=True, expression="happy", received_at=timezone.now(), latency_ms=1.0,
    )
    counting, release = threading.Event(), threading.Event()
    recount = context.session_summary

    def held_open(locked_session):  # the recount, paused while it holds the session's row lock
        counting.set()
        release.wait(10)
        return recount(locked_session)

    monkeypatch.setattr(context, "session_summary", held_open)
    outcome: list[object] = []

    def refresh() -> None:
        try:
            outcome.append(context.session_aggregates_refresh(session_id=session.pk, grant=session.grant))
        except Exception as exc:  # the assertion below shows it
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=refresh)
    worker.start()
    try:
        assert counting.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            # Intake's frame row and a worker's features both reference the session while the recount holds it.
            frame = _frame(session)
            FrameFeatures.objects.create(
                organization=org_a, frame=frame, session=session, subject=session.subject, grant=session.grant,
                face_count=1, quality_ok=True, received_at=timezone.now(), latency_ms=1.0,
            )
        except OperationalError as error:
            pytest.fail(f"a frame of the session waited for its recount: {error}")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        release.set()
        worker.join(10)
    assert outcome == [True]
    session.refresh_from_db()
    assert session.aggregates["frames_analyzed"] >= 1


def test_a_recount_under_another_subjects_grant_touches_nothing(org_a) -> None:
    """The guard checked the grant's subject; a session of anyone else is not recounted under it."""
    session, _ = make_capture_session(org_a)
    other, _ = make_capture_session(org_a)
    FrameFeatures.objects.create(
        organization=org_a, frame=_frame(session), session=session, subject=session.subject, grant=session.grant,
        face_count=1, quality_ok=True, received_at=timezone.now(), latency_ms=1.0,
    )
    assert context.session_aggregates_refresh(session_id=session.pk, grant=other.grant) is False
    session.refresh_from_db()
    assert session.aggregates == {} and session.aggregates_updated_at is None
    assert context.session_aggregates_refresh(session_id=session.pk, grant=session.grant) is True


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_withdrawal_purge_racing_a_recount_does_not_deadlock(org_a, monkeypatch) -> None:
    """The purge takes the subject's sessions before their face contexts, in the recount's order."""
    session, _ = make_capture_session(org_a)
    FrameFeatures.objects.create(
        organization=org_a, frame=_frame(session), session=session, subject=session.subject, grant=session.grant,
        face_count=1, quality_ok=True, expression="happy", received_at=timezone.now(), latency_ms=1.0,
    )
    assert context.session_aggregates_refresh(session_id=session.pk, grant=session.grant)  # a face context now
    counting, release = threading.Event(), threading.Event()
    recount = context.session_summary

    def held_open(locked_session):  # the next recount, paused while it holds the session's row lock
        counting.set()
        release.wait(10)
        return recount(locked_session)

    monkeypatch.setattr(context, "session_summary", held_open)
    outcome: dict[str, object] = {}

    def run(name: str, call) -> threading.Thread:
        def target() -> None:
            try:
                outcome[name] = call()
            except Exception as exc:  # the assertion below shows it
                outcome[name] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    refresh = run("refresh", lambda: context.session_aggregates_refresh(session_id=session.pk, grant=session.grant))
    purge = None
    try:
        assert counting.wait(10)
        order = PurgeOrder(organization_id=org_a.pk, reason="consent_withdrawn", subject_id=session.subject_id,
                           purposes=frozenset({"face_analysis"}), before=None)
        purge = run("purge", lambda: _in_transaction(lambda: face_data_purge(order)))
        deadline = time.monotonic() + 10
        while _lock_waiters() == 0:  # the purge waits for the recount's lock
            assert time.monotonic() < deadline, "the purge never waited for the recount"
            time.sleep(0.01)
    finally:
        release.set()
        refresh.join(15)
        if purge is not None:
            purge.join(15)
    assert outcome["refresh"] is True, outcome
    assert isinstance(outcome["purge"], dict) and outcome["purge"]["features_purged"] == 1, outcome
    assert not FrameFeatures.objects.filter(subject_id=session.subject_id).exists()
    assert not FaceContext.objects.filter(subject_id=session.subject_id).exists()


def _in_transaction(call):
    """A purger runs in its part's transaction (consent.purging.purge_part_run)."""
    with transaction.atomic():
        return call()
