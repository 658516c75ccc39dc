"""The cache of a subject's face signals for decisions: one key per organization and subject, written by
`selectors.face_signals_for_decision` and deleted where the frames it holds change (a session's recount) or must
no longer be read (a withdrawal's or erasure's purge). Django's cache: Redis on the full stack, a bounded
in-process LocMem on the embedded default. A cache that is away is a miss, never an error."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.core.cache import cache

from config.broker import REDIS_ERRORS

logger = logging.getLogger(__name__)

# Short: the recount deletes the key as new frames arrive, this bounds what a lost delete can leave behind.
FACE_SIGNALS_TTL_SECONDS = 30


def face_signals_key(*, organization_id: int, subject_id: int) -> str:
    """The one cache key of a subject's face signals."""
    return f"faceanalysis:signals:{organization_id}:{subject_id}"


def face_signals_cached(*, organization_id: int, subject_id: int) -> list[list] | None:
    """The cached rows (FaceSignals.to_rows), or None on a miss or when the cache is away."""
    try:
        rows: Any = cache.get(face_signals_key(organization_id=organization_id, subject_id=subject_id))
    except REDIS_ERRORS:
        logger.warning("cache unavailable; face signals read from the database")
        return None
    return rows if isinstance(rows, list) else None


def face_signals_cache_put(*, organization_id: int, subject_id: int, rows: list[list]) -> None:
    """Keep the rows for FACE_SIGNALS_TTL_SECONDS; a cache that is away keeps nothing."""
    with contextlib.suppress(*REDIS_ERRORS):
        cache.set(face_signals_key(organization_id=organization_id, subject_id=subject_id), rows,
                  timeout=FACE_SIGNALS_TTL_SECONDS)


def face_signals_forget(*, organization_id: int, subject_id: int | None) -> None:
    """Delete the subject's cached signals (its frames changed or were purged). Best effort: the TTL bounds what a
    cache that is away leaves, and decisions ask the consent guard before they read it anyway."""
    if subject_id is None:
        return
    try:
        cache.delete(face_signals_key(organization_id=organization_id, subject_id=subject_id))
    except REDIS_ERRORS:
        logger.warning("cache unavailable; cached face signals of a subject left to expire")
