"""What a worker does with purge parts, done in the test's process: every owed part, in id order."""

from consent.models import PurgePart
from consent.purging import purge_part_run


def run_owed_purges() -> list[str]:
    """Run every owed purge part here, as a worker would on its message; the outcome of each."""
    owed = PurgePart.objects.filter(status=PurgePart.Status.OWED).order_by("pk").values_list("pk", flat=True)
    return [purge_part_run(part_id=part_id) for part_id in list(owed)]


def make_face_data(session, *, frames: int = 3, smile: float | None = None, faces: list | None = None) -> None:
    """Derived data of a session as a worker leaves it, written directly: analysed frames with their features
    (with `smile` and the engine's `faces` when given), one still queued, and the subject's face context."""
    from django.utils import timezone

    from faceanalysis.models import FaceContext, Frame, FrameFeatures

    now = timezone.now()
    common = {
        "organization_id": session.organization_id, "session": session, "subject_id": session.subject_id,
        "grant": session.grant, "content_type": "image/jpeg", "byte_size": 1000, "width": 64, "height": 64,
        "queue": "analysis",
    }
    for _ in range(frames):
        frame = Frame.objects.create(**common, status=Frame.Status.ANALYZED, received_at=now, finished_at=now)
        FrameFeatures.objects.create(
            organization_id=session.organization_id, frame=frame, session=session, subject_id=session.subject_id,
            grant=session.grant, face_count=1, quality_ok=True, quality_reasons=[], attention_score=0.9,
            looking_at_screen=True, received_at=now, analyzed_at=now, latency_ms=20.0, smile=smile,
            faces=faces or [],
        )
    Frame.objects.create(**common, received_at=now)
    FaceContext.objects.create(
        organization_id=session.organization_id, subject_id=session.subject_id, campaign_id=session.campaign_id,
        session=session, grant=session.grant, features={"latest": {"face_detected": True}},
    )
