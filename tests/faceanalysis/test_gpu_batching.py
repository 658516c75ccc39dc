"""The GPU queue batches queued frames across sessions (and organizations) into one engine call, each frame
checked against its own subject's consent; the batched frames' own messages then find them finished."""

from __future__ import annotations

import pytest
from django.db import connection

from faceanalysis.models import Frame, FrameFeatures
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frame_analyze
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session, withdraw

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Batching claims frames with FOR UPDATE SKIP LOCKED: run on PostgreSQL (see scripts/test).")


def test_gpu_task_batches_frames_of_several_sessions_in_one_engine_call(org_a, org_b, fake_engine, settings) -> None:
    settings.VISAGE_ANALYSIS_QUEUE = "analysis_gpu"
    frames = []
    for org in (org_a, org_a, org_b):
        session, _ = make_capture_session(org)
        frames += frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")] * 2)
    first = frames[0]
    assert frame_analyze(frame_id=first.pk, claim_more=15) == {"analyzed": 6}
    assert fake_engine.calls == 1 and fake_engine.images == 6
    assert FrameFeatures.objects.count() == 6
    assert all(f.grant.subject_id == f.subject_id for f in FrameFeatures.objects.select_related("grant"))
    for frame in frames[1:]:
        assert frame_analyze(frame_id=frame.pk, claim_more=15) == {"already_finished": 1}


def test_batch_drops_frames_of_a_subject_without_consent_and_analyses_the_rest(org_a, fake_engine, settings) -> None:
    settings.VISAGE_ANALYSIS_QUEUE = "analysis_gpu"
    kept, _ = make_capture_session(org_a)
    gone, _ = make_capture_session(org_a)
    frames = frame_intake(session=kept, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
    frames += frame_intake(session=gone, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")] * 3)
    withdraw(gone.subject)  # its on-commit cascade does not run inside the test transaction: the worker's check must
    assert frame_analyze(frame_id=frames[0].pk, claim_more=15) == {"analyzed": 1, "dropped": 3}
    assert fake_engine.images == 1
    assert set(Frame.objects.filter(session=gone).values_list("reason", flat=True)) == {"consent_withdrawn"}


def test_cpu_queue_frames_are_not_claimed_by_a_gpu_batch(org_a, fake_engine, settings) -> None:
    session, _ = make_capture_session(org_a)
    settings.VISAGE_ANALYSIS_QUEUE = "analysis"
    cpu = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")] * 2)
    settings.VISAGE_ANALYSIS_QUEUE = "analysis_gpu"
    (gpu,) = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
    assert frame_analyze(frame_id=gpu.pk, claim_more=15) == {"analyzed": 1}
    assert set(Frame.objects.filter(pk__in=[f.pk for f in cpu]).values_list("status", flat=True)) == {"queued"}
