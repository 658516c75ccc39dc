"""A withdrawal racing analysis workers over many queued frames: once it commits, no frame starts analysis.

Real PostgreSQL row locks, real concurrent transactions (one thread and connection per worker), the real
withdrawal and the real tasks; only the engine is the FAKE one (this test claims nothing about analysis).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import pytest
from django.db import connection

from consent.models import Grant
from consent.services import consent_withdraw
from faceanalysis import dispatch, tasks
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from faceanalysis.store import frame_store
from tests.faceanalysis.factories import encode, make_capture_session
from tests.purges import run_owed_purges

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROUNDS = 8
FRAMES_PER_SUBJECT = 16
WORKERS = 4


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run with DATABASE_URL=postgres://... (see scripts/test).")


def _queue_frames(session: CaptureSession, count: int, data: bytes, queue_name: str) -> list[int]:
    """Frames as intake leaves them: queued rows, their bytes in the frame store."""
    rows = Frame.objects.bulk_create(
        [
            Frame(organization_id=session.organization_id, session=session, subject_id=session.subject_id,
                  grant=session.grant, content_type="image/jpeg", byte_size=len(data), width=48, height=48,
                  queue=queue_name)
            for _ in range(count)
        ]
    )
    ids = [row.pk for row in rows]
    frame_store().put_many(dict.fromkeys(ids, data), 300)
    return ids


def _run_round(org, task, queue_name: str, data: bytes) -> dict[str, object]:
    """Two subjects' frames interleaved in one queue; the first subject withdraws while workers run."""
    withdrawing, _ = make_capture_session(org)
    staying, _ = make_capture_session(org)
    ids = _queue_frames(withdrawing, FRAMES_PER_SUBJECT, data, queue_name)
    kept = _queue_frames(staying, FRAMES_PER_SUBJECT, data, queue_name)
    owner = dict.fromkeys(ids, withdrawing) | dict.fromkeys(kept, staying)
    work: queue.Queue[int] = queue.Queue()
    for pair in zip(ids, kept, strict=True):
        for frame_id in pair:
            work.put(frame_id)
    done = threading.Semaphore(0)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                try:
                    frame_id = work.get_nowait()
                except queue.Empty:
                    return
                session = owner[frame_id]
                outcome = task(organization_id=session.organization_id, subject_id=session.subject_id,
                               frame_id=frame_id)
                # A GPU task finishes the frames it batched too; count frames, not tasks.
                finished = sum(n for key, n in outcome.items() if isinstance(n, int) and key != "already_finished")
                for _ in range(finished):
                    done.release()
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)
        finally:
            connection.close()

    def withdrawal() -> None:
        try:
            for _ in range(FRAMES_PER_SUBJECT // 2):  # a quarter of the frames in, with workers busy
                done.acquire(timeout=10)
            consent_withdraw(
                organization=org, subject=withdrawing.subject, purposes=["face_analysis"], channel="my_data_page"
            )
            run_owed_purges()  # the purge worker's part, racing the analysis workers
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)] + [threading.Thread(target=withdrawal)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not [t for t in threads if t.is_alive()], "a worker or the withdrawal hung"

    ended_at = Grant.objects.get(pk=withdrawing.grant_id).ended_at
    assert ended_at is not None
    frames = Frame.objects.filter(session=withdrawing)
    return {
        "late": frames.filter(status=Frame.Status.ANALYZED, finished_at__gte=ended_at).count(),
        "analysed": frames.filter(status=Frame.Status.ANALYZED).count(),
        "dropped": frames.filter(status=Frame.Status.DROPPED).count(),
        "left_queued": frames.filter(status=Frame.Status.QUEUED).count(),
        "features_left": FrameFeatures.objects.filter(subject_id=withdrawing.subject_id).count(),
        "other_analysed": Frame.objects.filter(session=staying, status=Frame.Status.ANALYZED).count(),
    }


def _recount_at_once(frame: Frame) -> None:
    """The recount a frame schedules, run right after its commit in the worker's thread (calling the task runs
    its body, guard included, without the eager mode's process-wide state, which threads would race on)."""
    tasks.refresh_session_aggregates(
        organization_id=frame.organization_id, subject_id=frame.subject_id, session_id=frame.session_id
    )


@pytest.mark.parametrize("path", ["cpu", "gpu_batch"])
def test_no_frame_is_analysed_after_its_withdrawal_commits(
    path: str, org_a, fake_engine, settings, monkeypatch
) -> None:
    # Recounts race the withdrawal's purge too (their lock order once deadlocked with it).
    monkeypatch.setattr(dispatch, "schedule_refresh", _recount_at_once)
    queue_name = "analysis" if path == "cpu" else "analysis_gpu"
    task: Callable[..., object] = tasks.analyze_frame if path == "cpu" else tasks.analyze_frame_gpu
    settings.VISAGE_GPU_BATCH_MAX = 2  # a batch claims another queued frame, of either subject
    data = encode(np.full((48, 48, 3), 120, dtype=np.uint8))
    rounds = [_run_round(org_a, task, queue_name, data) for _ in range(ROUNDS)]

    late = [r["late"] for r in rounds]
    assert sum(late) == 0, f"frames analysed after the withdrawal committed, per round: {late}"
    assert sum(r["features_left"] for r in rounds) == 0, rounds
    assert sum(r["left_queued"] for r in rounds) == 0, rounds
    # The race was run: frames of the withdrawing subject on both sides of it, the other subject's all analysed.
    assert sum(r["analysed"] for r in rounds) > 0 and sum(r["dropped"] for r in rounds) > 0, rounds
    assert all(r["other_analysed"] == FRAMES_PER_SUBJECT for r in rounds), rounds
