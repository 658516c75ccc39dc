"""The recount of a session's aggregates and the face context it writes for decisions, an interval after
frames asked for it (`dispatch.schedule_refresh`), one at a time per session."""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from consent.models import Grant
from faceanalysis import dispatch
from faceanalysis.face_cache import face_signals_forget
from faceanalysis.models import CaptureSession, FaceContext, FrameFeatures
from faceanalysis.news import subject_features_changed
from faceanalysis.selectors import session_summary

logger = logging.getLogger(__name__)

_REFRESH_FIELDS = (
    "public_id", "started_at", "media_ref", "organization_id", "subject_id", "campaign_id", "derived_attributes"
)


def session_aggregates_refresh(*, session_id: int, grant: Grant) -> bool:
    """Recount a session's aggregates and push them to the face context: exact for every frame committed
    before it started. Refreshes of one session run one after the other (row lock), so the last word is the
    latest count. False if the session or its features are gone."""
    cache.delete(dispatch.refresh_key(session_id))  # first: a frame committed from now on schedules the next one
    with transaction.atomic():
        # NO KEY UPDATE: refreshes of one session still queue behind each other, but the frames being inserted
        # meanwhile (their foreign keys take KEY SHARE on this row) do not wait for the recount.
        # Only a session of the subject the guard's grant is for: a message naming another is a no-op.
        session = (
            CaptureSession.objects.select_for_update(no_key=True).only(*_REFRESH_FIELDS)
            .filter(pk=session_id, organization_id=grant.organization_id, subject_id=grant.subject_id)
            .first()
        )
        if session is None:
            return False
        latest = FrameFeatures.objects.filter(session_id=session_id).order_by("-analyzed_at", "-pk").first()
        if latest is None:
            return False
        _refresh_session(session, grant, latest, now=timezone.now())
    # The next decision reads the frames this recount counted, not the cached ones from before them.
    face_signals_forget(organization_id=grant.organization_id, subject_id=grant.subject_id)
    # Robust: what listeners do with the news (segments) never fails the recount.
    for receiver, error in subject_features_changed.send_robust(
        sender=CaptureSession, organization_id=grant.organization_id, subject_id=grant.subject_id
    ):
        if isinstance(error, Exception):
            logger.warning("%s failed on new features (%s)", getattr(receiver, "__name__", receiver),
                           type(error).__name__)
    return True


def _refresh_session(session: CaptureSession, grant: Grant, latest: FrameFeatures, *, now: datetime) -> None:
    """Recompute the session's aggregates and push them to the subject's face context for the campaign."""
    summary = session_summary(session)
    CaptureSession.objects.filter(pk=session.pk).update(aggregates=summary, aggregates_updated_at=now)
    context = {
        "session": str(session.public_id),
        "media_ref": session.media_ref,
        "aggregates": summary,
        "latest": {
            "analyzed_at": latest.analyzed_at.isoformat(),
            "face_detected": latest.face_count > 0,
            "quality_ok": latest.quality_ok,
            "looking_at_screen": latest.looking_at_screen,
            "attention_score": latest.attention_score,
            # Only what the session derives: a rule on expressions finds nothing for an attention-only campaign.
            **(
                {"smile": latest.smile, "expression": latest.expression or None}
                if "expression" in session.derived_attribute_set else {}
            ),
        },
    }
    FaceContext.objects.bulk_create(
        [FaceContext(organization_id=session.organization_id, subject_id=session.subject_id,
                     campaign_id=session.campaign_id, session=session, grant=grant, features=context, updated_at=now)],
        update_conflicts=True,
        unique_fields=["subject", "campaign"],
        update_fields=["session", "grant", "features", "updated_at"],
    )
