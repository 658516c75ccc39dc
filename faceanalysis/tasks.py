"""Analysis tasks: ids in, one service call out. Each goes through the consent guard before its body runs;
the service checks consent once more under a lock right before inference."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import celeryd_after_setup
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from consent.biometric import consent_guarded
from consent.guards import ConsentDenied
from consent.models import Grant, Purpose
from faceanalysis import dispatch
from faceanalysis.services import context, worker
from faceanalysis.store import FrameStoreUnavailable

# Only errors that can succeed on the next try: the database or the store being briefly away.
TRANSIENT = (OperationalError, InterfaceError, FrameStoreUnavailable, RedisConnectionError, RedisTimeoutError)
ANALYSIS_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "time_limit": 30,
    "soft_time_limit": 25,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 20,
    "max_retries": 5,
    "ignore_result": True,
}


def _drop_denied(denial: ConsentDenied, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A frame whose consent is gone is dropped unanalysed, and its bytes deleted."""
    dropped = worker.frame_drop(frame_id=kwargs["frame_id"], reason=f"consent_{denial.reason.value}")
    return {"dropped": dropped, "reason": denial.reason.value}


@shared_task(name=dispatch.ANALYZE_FRAME, **ANALYSIS_OPTIONS)
@consent_guarded(purpose=Purpose.FACE_ANALYSIS, on_denied=_drop_denied, locked=True)
def analyze_frame(*, organization_id: int, subject_id: int, frame_id: int, grant: Grant) -> dict[str, int]:
    """Analyse one queued frame on a CPU worker, in the guard's transaction (the subject locked for share)."""
    return worker.frame_analyze(frame_id=frame_id, consented=grant)


@shared_task(name=dispatch.ANALYZE_FRAME_GPU, **ANALYSIS_OPTIONS)
@consent_guarded(purpose=Purpose.FACE_ANALYSIS, on_denied=_drop_denied, locked=True)
def analyze_frame_gpu(*, organization_id: int, subject_id: int, frame_id: int, grant: Grant) -> dict[str, int]:
    """Analyse a queued frame on a GPU worker, batched with other queued frames of any session (each checked
    against its own subject's consent); their own messages then find them finished."""
    return worker.frame_analyze(
        frame_id=frame_id, claim_more=max(0, settings.VISAGE_GPU_BATCH_MAX - 1), consented=grant
    )


@shared_task(name=dispatch.REFRESH_SESSION_AGGREGATES, acks_late=True, time_limit=60, soft_time_limit=50,
             ignore_result=True,
             autoretry_for=TRANSIENT, retry_backoff=1, max_retries=5)
@consent_guarded(purpose=Purpose.FACE_ANALYSIS)
def refresh_session_aggregates(*, organization_id: int, subject_id: int, session_id: int, grant: Grant) -> bool:
    """Recount a session's aggregates and face context, an interval after a frame asked (derived features
    only; a withdrawn subject's were purged, and the guard skips them)."""
    return context.session_aggregates_refresh(session_id=session_id, grant=grant)


@shared_task(name=dispatch.EXPIRE_FRAMES, acks_late=True, time_limit=120, ignore_result=True)
def expire_frames() -> int:
    """Periodic: count queued frames whose bytes expired unclaimed (their messages were lost)."""
    return worker.frames_expire()


@celeryd_after_setup.connect
def _refuse_to_start_without_models(sender: str, instance: Any, **kwargs: Any) -> None:
    """An analysis worker checks the model files at start-up and exits naming any that is missing or wrong."""
    from faceanalysis.inference import check_models_or_exit

    check_models_or_exit(list(instance.app.amqp.queues.consume_from or instance.app.amqp.queues))
