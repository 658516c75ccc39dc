"""Analysis in the worker: consent checked again under a shared lock, the bytes taken out of the frame store,
decoded, run through the engine and written as features in one transaction; and the frames that never get
there (dropped, expired). Frame bytes are never logged, persisted or put into an exception."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from consent.guards import ConsentDenied, require_consents
from consent.models import Grant, Purpose
from consent.selectors import frame_bytes_ttls
from faceanalysis import dispatch
from faceanalysis.features import features_from
from faceanalysis.models import Frame, FrameFeatures
from faceanalysis.store import FrameStoreUnavailable, frame_store
from faceanalysis.validation import jpeg_scan_intact

logger = logging.getLogger(__name__)


def _mark(frame_ids: Iterable[int], status: str, reason: str = "") -> int:
    """Finish frames that are still queued; a frame already finished keeps its first outcome."""
    ids = list(frame_ids)
    if not ids:
        return 0
    return Frame.objects.filter(pk__in=ids, status=Frame.Status.QUEUED).update(
        status=status, reason=reason, finished_at=timezone.now()
    )


class CorruptFrame(ValueError):
    """A stored frame whose image data is damaged although intake's structural checks passed."""


def _decode(data: bytes, content_type: str) -> np.ndarray:
    """RGB pixels of a stored frame; OpenCV applies the EXIF orientation and is the fastest decoder here. OpenCV
    decodes a JPEG with damaged scan data into a damaged picture without a word, so a JPEG it decodes has its
    scan checked strictly too (intake checks only the structure)."""
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("undecodable frame")
    if content_type == "image/jpeg" and not jpeg_scan_intact(data):
        raise CorruptFrame("damaged JPEG scan")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _run_engine(images: list[np.ndarray], attributes: list[frozenset[str]]) -> list[Any]:
    """The engine over a batch, each image deriving only its session's attributes (the engine skips stages no
    image needs): a result or the exception per image. One bad image must not sink the others, so a failed
    batch runs one by one; an exception fails its frame (never retried, never left queued)."""
    from faceanalysis.inference import get_engine

    engine = get_engine()

    try:
        return engine.analyze_batch(images, attributes=attributes)
    except Exception as exc:
        if len(images) == 1:
            return [exc]
    results: list[Any] = []
    for image, chosen in zip(images, attributes, strict=True):
        try:
            results.append(engine.analyze_batch([image], attributes=[chosen])[0])
        except Exception as exc:  # the frame fails; the error names its type only, never pixels
            results.append(exc)
    return results


def frame_analyze(*, frame_id: int, claim_more: int = 0, consented: Grant | None = None) -> dict[str, int]:
    """Analyse a queued frame, at most once, and up to `claim_more` other queued frames of its queue (GPU
    batching across sessions). Consent is checked again under a shared lock on each subject right before the
    bytes are taken; a frame whose consent is gone is dropped unanalysed. Features, aggregates and the face
    context are written in the same transaction as the frame's new status, so a redelivered or retried
    message finds the frame finished and does nothing.

    `consented` is a grant the caller checked with the subject locked for share in the transaction this runs
    in (the task's guard, `consent_guarded(locked=True)`); a frame of that subject needs no second check.
    """
    store = frame_store()
    outcome: Counter[str] = Counter()
    # Inside the guard's transaction when the task runs it: no savepoint, the task is one unit.
    with transaction.atomic(savepoint=False):
        # With each frame its session's choice (the purposes it needs, the attributes it derives), in the same read.
        claimed = Frame.objects.select_for_update(of=("self",)).select_related("session").defer("session__aggregates")
        frames = list(claimed.filter(pk=frame_id, status=Frame.Status.QUEUED))
        if not frames:
            # Finished before (dropped by a withdrawal while its bytes were still on their way to the store,
            # say): whatever bytes are left have no analysis to wait for.
            transaction.on_commit(lambda: _discard_quietly([frame_id]))
            return {"already_finished": 1}
        if claim_more > 0 and connection.features.has_select_for_update_skip_locked:
            frames += list(
                claimed.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Frame.Status.QUEUED, queue=frames[0].queue)
                .exclude(pk=frame_id)
                .order_by("received_at")[:claim_more]
            )
        # Each subject's consent under a shared lock, in id order: workers analyse side by side, while
        # consent_withdraw (FOR UPDATE on the subject) waits for every analysis in flight, and none starts after
        # it commits. Every purpose the frame's session needs is checked, and that its notice names what the
        # session derives.
        choices = {f.session_id: (f.session.required_purpose_list, f.session.derived_attribute_set) for f in frames}
        verdicts: dict[tuple[int, int], Grant | ConsentDenied] = {}
        for subject_id, session_id, organization_id in sorted({(f.subject_id, f.session_id, f.organization_id)
                                                              for f in frames}):
            required, attributes = choices[session_id]
            checked = (
                {Purpose.FACE_ANALYSIS.value: consented}
                if consented is not None and consented.purpose == Purpose.FACE_ANALYSIS else None
            )
            try:
                verdicts[(subject_id, session_id)] = require_consents(
                    organization_id=organization_id, subject_id=subject_id,
                    purposes={Purpose.FACE_ANALYSIS, *required}, derived_attributes=attributes,
                    share_lock=True, checked=checked,
                )[Purpose.FACE_ANALYSIS]
            except ConsentDenied as denial:
                verdicts[(subject_id, session_id)] = denial

        ready: list[tuple[Frame, Grant, np.ndarray]] = []
        dropped: dict[str, list[int]] = defaultdict(list)
        taken: list[int] = []
        for frame in frames:
            grant = verdicts[(frame.subject_id, frame.session_id)]
            if isinstance(grant, ConsentDenied):
                dropped[f"consent_{grant.reason.value}"].append(frame.pk)
                continue
            data = store.take(frame.pk)  # FrameStoreUnavailable rolls back; the task retries
            if data is None:
                dropped["expired"].append(frame.pk)
                continue
            taken.append(frame.pk)
            try:
                image = _decode(data, frame.content_type)
            except CorruptFrame:
                dropped["corrupt_image"].append(frame.pk)
                continue
            except Exception:
                dropped["decode_error"].append(frame.pk)
                continue
            finally:
                del data
            ready.append((frame, grant, image))

        for reason, ids in dropped.items():
            status = (
                Frame.Status.DROPPED if reason.startswith("consent_")
                else Frame.Status.EXPIRED if reason == "expired" else Frame.Status.FAILED
            )
            outcome[status] += _mark(ids, status, reason)

        if ready:
            chosen = [choices[frame.session_id][1] for frame, _, _ in ready]
            results = _run_engine([image for _, _, image in ready], chosen)
            now = timezone.now()
            features = []
            failed: dict[str, list[int]] = defaultdict(list)
            for (frame, grant, _), keys, result in zip(ready, chosen, results, strict=True):
                if isinstance(result, Exception):
                    failed["invalid_image" if type(result).__name__ == "InvalidImageError" else "engine_error"].append(
                        frame.pk)
                    logger.warning("analysis of frame %s failed: %s", frame.pk, type(result).__name__)
                    continue
                features.append(features_from(frame, grant, result, now, keys))
            FrameFeatures.objects.bulk_create(features)
            outcome[Frame.Status.ANALYZED] += Frame.objects.filter(pk__in=[f.frame_id for f in features]).update(
                status=Frame.Status.ANALYZED, reason="", finished_at=now
            )
            for reason, ids in failed.items():
                outcome[Frame.Status.FAILED] += _mark(ids, Frame.Status.FAILED, reason)
            # Aggregates and the face context are recounted off this path, at most once per interval per session.
            sessions = {f.session_id: f.frame for f in features}
            transaction.on_commit(lambda: [dispatch.schedule_refresh(frame) for frame in sessions.values()])

        discard = [i for ids in dropped.values() for i in ids if i not in taken]
        transaction.on_commit(lambda: store.release(taken))
        if discard:
            transaction.on_commit(lambda: _discard_quietly(discard))
    return {str(status): count for status, count in outcome.items() if count}


def _discard_quietly(frame_ids: list[int]) -> None:
    try:
        frame_store().discard(frame_ids)
    except FrameStoreUnavailable:
        logger.warning("frame store unavailable; %d dropped frames are left to expire", len(frame_ids))


def frame_drop(*, frame_id: int, reason: str) -> int:
    """Drop a queued frame unanalysed (consent gone) and delete its bytes; returns 1 if it was still queued."""
    dropped = _mark([frame_id], Frame.Status.DROPPED, reason)
    _discard_quietly([frame_id])
    return dropped


def frames_expire(*, limit: int = 1000) -> int:
    """Count as expired the queued frames whose bytes the store no longer holds (nobody took them in time): past
    their organization's frame TTL (the one intake stored them with, consent.selectors.frame_bytes_ttl_seconds)."""
    now = timezone.now()
    queued = Frame.objects.filter(status=Frame.Status.QUEUED)
    # No TTL is shorter than one second: the organizations with a frame at least that old, then each one's cutoff.
    organizations = set(queued.filter(received_at__lt=now - timedelta(seconds=1))
                        .values_list("organization_id", flat=True).distinct())
    store = frame_store()
    gone: list[int] = []
    checked = 0  # at most `limit` store lookups a run
    for organization_id, ttl in sorted(frame_bytes_ttls(organization_ids=organizations).items()):
        if checked >= limit:
            break
        candidates = list(
            queued.filter(organization_id=organization_id, received_at__lt=now - timedelta(seconds=ttl))
            .order_by("received_at").values_list("pk", flat=True)[: limit - checked]
        )
        checked += len(candidates)
        gone += [pk for pk in candidates if not store.exists(pk)]
    return _mark(gone, Frame.Status.EXPIRED, "expired")
