"""A seeded organization in which every API operation answers with real objects: a subject with live grants,
open and ended capture sessions, frames in several states with features, and the credentials to reach them.

Features are written as rows, without running the models: tests that use this world check shapes, never that
analysis works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from accounts.models import Organization
from faceanalysis.engine import (
    BoundingBox,
    Expression,
    Eyes,
    FaceAnalysis,
    Gaze,
    HeadPose,
    ModelInfo,
    Quality,
    Withheld,
)
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from tests.factories import make_api_key, make_organization


@dataclass(frozen=True)
class ApiWorld:
    """Ids and secrets of the seeded objects, as a partner or an end user's page would hold them."""

    organization: Organization
    api_key: str
    api_key_prefix: str
    spare_key_prefix: str  # a second key of the organization, for operations that revoke
    subject_id: str
    spare_subject_id: str  # a second consented subject, for operations that withdraw
    access_token: str
    campaign_id: str
    session_id: str
    capture_token: str
    ended_session_id: str  # another open session until an operation ends it
    ended_session_token: str
    notice_hash: str
    content_campaign_id: str  # a draft campaign with variants and a rule, for the content operations
    variant_key: str
    rule_id: int
    segment_key: str  # a dynamic segment of the organization, recomputed once
    grant_id: int = 0  # the subject's face-analysis grant, for its signed receipt
    # An export request of the main subject: its document streams for the whole run (the request operations go to
    # the spare subject, which an erasure erases).
    data_request_id: str = ""


def _face() -> dict:
    """One face as the engine reports it, without landmarks or embedding (as intake keeps it)."""
    face = FaceAnalysis(
        box=BoundingBox(120.0, 80.0, 220.0, 240.0),
        detection_score=0.97,
        quality=Quality(110.0, 125.0, 45.0, 220.0, 0.93, True, ()),
        pose=HeadPose(3.5, -2.0, 1.0),
        gaze=Gaze(4.0, -1.5, 0.91, True),
        eyes=Eyes(0.82, 0.85, True),
        blendshapes={"mouthSmileLeft": 0.71, "mouthSmileRight": 0.69},
        expression=Expression({"happy": 0.81, "neutral": 0.12, "surprise": 0.07}, "happy", 0.81, "expression@1"),
        withheld=(Withheld("age", "not_requested"),),
    )
    data = face.to_dict()
    data.pop("landmarks", None)
    data.pop("embedding", None)
    return data


def _frames(session: CaptureSession) -> None:
    """An analysed frame with features, one that found no face, one queued, one failed, one dropped."""
    now = timezone.now()
    common = {
        "organization_id": session.organization_id, "session": session, "subject_id": session.subject_id,
        "grant": session.grant, "content_type": "image/jpeg", "byte_size": 48213, "width": 640, "height": 480,
        "queue": "analysis",
    }
    analysed = Frame.objects.create(
        **common, status=Frame.Status.ANALYZED, media_time_ms=1200, captured_at=now - timedelta(seconds=3),
        received_at=now - timedelta(seconds=2), finished_at=now - timedelta(seconds=1),
    )
    faceless = Frame.objects.create(
        **common, status=Frame.Status.ANALYZED, received_at=now - timedelta(seconds=2), finished_at=now,
    )
    Frame.objects.create(**common, received_at=now)
    Frame.objects.create(**common, status=Frame.Status.FAILED, reason="decode_error", finished_at=now)
    Frame.objects.create(**common, status=Frame.Status.DROPPED, reason="consent_withdrawn", finished_at=now)
    models = [ModelInfo("face_detector", "blaze_face_short_range", "0.10.14").to_dict()]
    FrameFeatures.objects.create(
        organization_id=session.organization_id, frame=analysed, session=session, subject_id=session.subject_id,
        grant=session.grant, media_time_ms=1200, captured_at=analysed.captured_at, face_count=1, quality_ok=True,
        quality_reasons=[], attention_score=0.91, looking_at_screen=True, eyes_open=True, smile=0.7,
        expression="happy", expression_confidence=0.81, faces=[_face()], model_versions=models,
        received_at=analysed.received_at, analyzed_at=now, latency_ms=31.5,
    )
    FrameFeatures.objects.create(
        organization_id=session.organization_id, frame=faceless, session=session, subject_id=session.subject_id,
        grant=session.grant, face_count=0, quality_ok=False, quality_reasons=["no_face"], faces=[],
        model_versions=models, received_at=faceless.received_at, analyzed_at=now, latency_ms=28.0,
    )


def make_api_world() -> ApiWorld:
    """An organization seeded so that every API operation has a real object to answer with."""
    from campaigns.services import capture_session_open
    from consent.data_requests import data_request_create
    from consent.services import subject_access_token_rotate
    from faceanalysis.services.capture import capture_session_end
    from faceanalysis.services.context import session_aggregates_refresh
    from segments.services import segment_recompute, segment_save
    from tests.faceanalysis.factories import make_campaign, make_consented_subject

    organization = make_organization(name="Schema")
    key, raw_key = make_api_key(organization, scopes=("read", "write", "export"))
    spare_key, _ = make_api_key(organization)
    subject, grant = make_consented_subject(organization)
    spare_subject, _ = make_consented_subject(organization)
    export_request = data_request_create(organization=organization, subject=subject, kind="export",
                                         channel="partner_api", requested_by="api-world").request
    access_token = subject_access_token_rotate(subject=subject)
    campaign = make_campaign(organization)
    session, token = capture_session_open(
        organization=organization, subject=subject, campaign=campaign, source="browser_stream", media_ref="video-42"
    )
    _frames(session)
    session_aggregates_refresh(session_id=session.pk, grant=grant)
    closed, _ = capture_session_open(
        organization=organization, subject=subject, campaign=campaign, source="partner", media_ref=""
    )
    capture_session_end(session=closed)
    second, second_token = capture_session_open(
        organization=organization, subject=subject, campaign=campaign, source="image_upload", media_ref="page-7"
    )
    content_campaign, variant, rule = _content_campaign(organization)
    segment = segment_save(organization=organization, key="attentive", name="Attentive", definition={
        "field": "face.attention_share", "op": "gte", "value": 0.5, "min_frames": 1})
    segment_recompute(segment_id=segment.pk)
    return ApiWorld(
        organization=organization,
        api_key=raw_key,
        api_key_prefix=key.prefix,
        spare_key_prefix=spare_key.prefix,
        subject_id=str(subject.public_id),
        spare_subject_id=str(spare_subject.public_id),
        access_token=access_token,
        campaign_id=campaign.public_id,
        session_id=str(session.public_id),
        capture_token=token,
        ended_session_id=str(second.public_id),
        ended_session_token=second_token,
        notice_hash=grant.notice_hash,
        content_campaign_id=content_campaign.public_id,
        variant_key=variant.key,
        rule_id=rule.pk,
        segment_key=segment.key,
        grant_id=grant.pk,
        data_request_id=str(export_request.public_id),
    )


def _content_campaign(organization: Organization):
    """A draft campaign with a default variant, a spare one and a rule (the running one stays as it is)."""
    from campaigns.content import campaign_content_replace
    from campaigns.models import Rule, Variant
    from tests.factories import make_campaign

    campaign = make_campaign(organization, status="draft")
    campaign_content_replace(
        campaign=campaign,
        variants=[{"key": "default", "name": "Default", "is_default": True}, {"key": "spare", "name": "Spare"}],
        rules=[{"name": "phones", "condition": {"field": "request.device", "op": "eq", "value": "mobile"},
                "variant": "default"}],
    )
    return campaign, Variant.objects.get(campaign=campaign, key="spare"), Rule.objects.get(campaign=campaign)
