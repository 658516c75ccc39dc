"""Data minimisation per campaign with the REAL engine on a real face: the worker runs only the stages the
campaign's choice needs, stores nothing else (NULL or absent), and the aggregates, face context and API show
only what was chosen. The GPU queue's batches mix campaigns and honour each frame's own choice."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from faceanalysis import dispatch
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.services.intake import IncomingFrame, frame_intake
from tests.faceanalysis.factories import astronaut_jpeg, make_campaign, make_capture_session

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

ATTENTION_ONLY: tuple[str, ...] = ()


def _session(org, attributes: tuple[str, ...] | None) -> CaptureSession:
    session, token = make_capture_session(org, campaign=make_campaign(org, derived_attributes=attributes))
    session.token = token
    return session


def _queue(session: CaptureSession, count: int = 1) -> list[Frame]:
    return frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")] * count)


def _models(features: FrameFeatures) -> set[str]:
    return {m["key"] for m in features.model_versions}


def test_attention_only_campaign_stores_no_expression_age_or_gender(analyze, org_a, real_engine) -> None:
    session = _session(org_a, ATTENTION_ONLY)
    assert session.derived_attribute_set == {"face_position", "head_pose", "gaze", "eyes", "quality"}
    (frame,) = _queue(session)
    assert analyze(frame_id=frame.pk) == {"analyzed": 1}

    features = FrameFeatures.objects.get(frame=frame)
    assert _models(features) == {"detector", "landmarker"}  # the expression, age and gender models never ran
    assert features.face_count == 1 and features.quality_ok
    assert features.looking_at_screen is True and features.attention_score > 0.5 and features.eyes_open is True
    assert features.expression == "" and features.expression_confidence is None and features.smile is None
    face = features.faces[0]
    assert face["expression"] is None and face["age"] is None and face["gender"] is None
    assert face["blendshapes"] is None and face["gaze"] is not None and face["pose"] is not None

    session.refresh_from_db()
    assert session.aggregates["attention_share"] == 1.0
    assert "smile_share" not in session.aggregates and "expression_distribution" not in session.aggregates
    latest = FaceContext.objects.get(subject=session.subject).features["latest"]
    assert latest["looking_at_screen"] is True and "expression" not in latest and "smile" not in latest

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session.token}")
    body = client.get(reverse("api:capture-session-detail", kwargs={"session_id": session.public_id})).json()
    assert body["derived_attributes"] == ["face_position", "head_pose", "gaze", "eyes", "quality"]
    assert "smile_share" not in body["aggregates"]
    timeline = client.get(reverse("api:capture-session-timeline", kwargs={"session_id": session.public_id})).json()
    assert timeline["buckets"] and all("smile_share" not in bucket for bucket in timeline["buckets"])


def test_age_campaign_stores_age_but_not_gender(analyze, org_a, real_engine) -> None:
    session = _session(org_a, ("age",))
    (frame,) = _queue(session)
    assert analyze(frame_id=frame.pk) == {"analyzed": 1}
    features = FrameFeatures.objects.get(frame=frame)
    assert _models(features) == {"detector", "landmarker", "age"}
    face = features.faces[0]
    assert face["age"] is not None and 20 < face["age"]["years"] < 60
    assert face["gender"] is None and face["expression"] is None and features.expression == ""


def test_campaign_deriving_everything_still_stores_everything(analyze, org_a, real_engine) -> None:
    session = _session(org_a, None)
    (frame,) = _queue(session)
    analyze(frame_id=frame.pk)
    features = FrameFeatures.objects.get(frame=frame)
    assert _models(features) == {"detector", "landmarker", "expression", "age", "gender"}
    face = features.faces[0]
    assert features.expression == "happy" and face["gender"]["label"] == "female" and face["age"] is not None


def test_gpu_batch_mixing_campaigns_honours_each_frames_choice(analyze, org_a, real_engine, settings) -> None:
    settings.VISAGE_ANALYSIS_QUEUE = dispatch.GPU_QUEUE
    attention, gender = _session(org_a, ATTENTION_ONLY), _session(org_a, ("gender",))
    frames = _queue(attention) + _queue(gender)
    outcomes = [analyze(frame_id=frame.pk, claim_more=15) for frame in frames]
    if connection.features.has_select_for_update_skip_locked:  # PostgreSQL: one engine batch for both
        assert outcomes == [{"analyzed": 2}, {"already_finished": 1}]
    else:
        assert outcomes == [{"analyzed": 1}] * 2
    stored = {f.session_id: f for f in FrameFeatures.objects.filter(frame__in=frames)}
    assert _models(stored[attention.pk]) == {"detector", "landmarker"}
    assert stored[attention.pk].faces[0]["gender"] is None
    assert _models(stored[gender.pk]) == {"detector", "landmarker", "gender"}
    assert stored[gender.pk].faces[0]["gender"]["label"] == "female"
    assert stored[gender.pk].faces[0]["age"] is None and stored[gender.pk].expression == ""

