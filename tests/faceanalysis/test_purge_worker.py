"""A purge part on a real Celery worker, SIGKILLed halfway through its transaction: nothing of it is left
half-done, and the redelivered message finishes it with exactly one receipt."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from consent.models import LedgerEntry, PurgePart, PurgeRequest
from faceanalysis.models import FaceContext, Frame, FrameFeatures
from tests.faceanalysis.factories import make_capture_session, withdraw
from tests.faceanalysis.test_worker_integration import Worker, clean_redis, wait_for, workers  # noqa: F401
from tests.purges import make_face_data

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _side_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )


def _waiting_on_a_lock(side: psycopg.Connection) -> int:
    with side.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_purge_worker_killed_halfway_leaves_the_part_owed_and_its_redelivery_finishes_it(
    org_a, workers, clean_redis  # noqa: F811
) -> None:
    clean_redis.delete("default")  # messages of other tests' dispatches, which no worker took
    session, _ = make_capture_session(org_a)
    make_face_data(session, frames=3)
    held = FrameFeatures.objects.filter(session=session).order_by("pk").last()

    # Another transaction holds one feature row: the purge has dropped the pending frame and started deleting
    # features when it has to wait for it. That is where the worker dies.
    side = _side_connection()
    side_watch = _side_connection()
    side_watch.autocommit = True
    try:
        with side.cursor() as cursor:
            table = FrameFeatures._meta.db_table
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [held.pk])  # noqa: S608
        first = workers()
        withdraw(session.subject)  # commits; its purge part is sent to the broker
        part = PurgePart.objects.get(purger="faceanalysis.face_data")  # segments' part runs beside it
        wait_for(lambda: _waiting_on_a_lock(side_watch) > 0, interval=0.05, what="the purge to reach the held row")
        first.kill()
        side.rollback()
    finally:
        side.close()

    part.refresh_from_db()
    assert part.status == PurgePart.Status.OWED and part.receipt_sequence is None
    assert FrameFeatures.objects.filter(session=session).count() == 3, "the killed transaction left changes"
    assert Frame.objects.filter(session=session, status=Frame.Status.QUEUED).count() == 1, "its drop survived"
    face_receipts = LedgerEntry.objects.filter(event=LedgerEntry.Event.PURGED, payload__purger="faceanalysis.face_data")
    assert not face_receipts.exists()

    second = workers()
    wait_for(lambda: PurgePart.objects.get(pk=part.pk).status == PurgePart.Status.DONE, what="the redelivered part")
    time.sleep(4)  # past another visibility timeout: a second delivery changes nothing
    side_watch.close()
    second.stop()

    part.refresh_from_db()
    request = PurgeRequest.objects.get()
    assert request.completed_at is not None
    assert part.counts == {"frames_dropped": 1, "features_purged": 3, "contexts_purged": 1, "sessions_ended": 1}
    receipts = list(face_receipts)
    assert len(receipts) == 1 and receipts[0].sequence == part.receipt_sequence
    assert receipts[0].payload["request"] == str(request.public_id)
    assert not FrameFeatures.objects.filter(session=session).exists()
    assert not FaceContext.objects.filter(subject=session.subject).exists()
