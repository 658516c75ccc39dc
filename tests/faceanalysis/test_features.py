"""The mapping from an engine result to a feature row, without a database: no test here may query (pytest-django
refuses any query of a test without the django_db mark). The analyses are built from the engine's own result
types; they test the mapping only, not that analysis works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consent import derived
from consent.models import Grant
from faceanalysis.engine import (
    BoundingBox,
    Expression,
    Eyes,
    FaceAnalysis,
    FrameAnalysis,
    Gaze,
    HeadPose,
    ModelInfo,
)
from faceanalysis.engine.results import AgeEstimate, GenderEstimate, Quality
from faceanalysis.features import features_from, only_chosen
from faceanalysis.models import Frame

EVERY_ATTRIBUTE = frozenset(attribute.key for attribute in derived.DERIVED_ATTRIBUTES)
RECEIVED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ANALYZED = RECEIVED + timedelta(milliseconds=250)


def make_face(*, size: float, smile: float, attention: float, expression: str = "happy") -> FaceAnalysis:
    """One face as the engine returns it, with the raw biometric data it gives only when asked."""
    return FaceAnalysis(
        box=BoundingBox(10, 10, size, size),
        detection_score=0.98,
        quality=Quality(100.0, 120.0, 40.0, size, 0.95, True, ()),
        pose=HeadPose(1.0, 2.0, 0.5),
        gaze=Gaze(1.0, 2.0, attention, attention >= 0.5),
        eyes=Eyes(0.9, 0.8, True),
        blendshapes={"mouthSmileLeft": smile, "mouthSmileRight": smile / 2},
        expression=Expression({expression: 0.7, "neutral": 0.3}, expression, 0.7, "expr@1"),
        age=AgeEstimate(31.0, 25.0, 38.0, "age@1"),
        gender=GenderEstimate("female", 0.8, "gender@1"),
        landmarks=((0.1, 0.2, 0.3),),
        embedding=(0.5, 0.25),
    )


def make_analysis(*faces: FaceAnalysis) -> FrameAnalysis:
    return FrameAnalysis(width=640, height=480, timestamp=None, faces=faces,
                         models=(ModelInfo("detector", "yunet", "2023mar"), ModelInfo("expression", "fer", "1")))


def make_frame() -> tuple[Frame, Grant]:
    grant = Grant(pk=9, organization_id=3, subject_id=7)
    frame = Frame(pk=41, organization_id=3, session_id=5, subject_id=7, grant=grant, media_time_ms=1200,
                  captured_at=None, received_at=RECEIVED)
    return frame, grant


def test_the_row_holds_the_largest_face_and_no_raw_biometric_data() -> None:
    frame, grant = make_frame()
    largest = make_face(size=200, smile=0.8, attention=0.9)
    analysis = make_analysis(largest, make_face(size=50, smile=0.0, attention=0.1, expression="sad"))

    row = features_from(frame, grant, analysis, ANALYZED, EVERY_ATTRIBUTE)

    assert row.pk is None  # built, never saved
    assert (row.frame_id, row.session_id, row.subject_id, row.organization_id, row.grant_id) == (41, 5, 7, 3, 9)
    assert (row.media_time_ms, row.received_at, row.analyzed_at, row.latency_ms) == (1200, RECEIVED, ANALYZED, 250.0)
    assert row.face_count == 2 and row.quality_ok is True and row.quality_reasons == []
    assert (row.attention_score, row.looking_at_screen, row.eyes_open) == (0.9, True, True)
    assert row.smile == 0.6 and (row.expression, row.expression_confidence) == ("happy", 0.7)
    assert [face["box"]["width"] for face in row.faces] == [200, 50]
    assert all("landmarks" not in face and "embedding" not in face for face in row.faces)
    assert row.faces[0]["age"]["years"] == 31.0 and row.faces[1]["expression"]["top"] == "sad"
    assert row.model_versions == [{"key": "detector", "name": "yunet", "version": "2023mar"},
                                  {"key": "expression", "name": "fer", "version": "1"}]


def test_an_attribute_the_session_did_not_choose_stays_empty_whatever_the_engine_returned() -> None:
    frame, grant = make_frame()
    chosen = EVERY_ATTRIBUTE - {"expression", "age", "gender", "gaze"}

    row = features_from(frame, grant, make_analysis(make_face(size=120, smile=0.8, attention=0.9)), ANALYZED, chosen)

    assert (row.smile, row.expression, row.expression_confidence) == (None, "", None)
    assert (row.attention_score, row.looking_at_screen) == (None, None)
    assert row.eyes_open is True and row.quality_ok is True and row.face_count == 1
    face = row.faces[0]
    assert [face[name] for name in ("expression", "blendshapes", "age", "gender", "gaze")] == [None] * 5
    assert face["eyes"]["open"] is True and face["pose"]["yaw"] == 1.0


def test_a_frame_without_a_face_is_stored_as_no_face() -> None:
    frame, grant = make_frame()

    row = features_from(frame, grant, make_analysis(), ANALYZED, EVERY_ATTRIBUTE)

    assert (row.face_count, row.quality_ok, row.quality_reasons, row.faces) == (0, False, ["no_face"], [])
    assert (row.attention_score, row.looking_at_screen, row.eyes_open, row.smile, row.expression) == (
        None, None, None, None, "")


def test_only_chosen_drops_raw_data_even_when_every_attribute_is_chosen() -> None:
    face = make_face(size=100, smile=0.5, attention=0.5).to_dict()

    kept = only_chosen(face, EVERY_ATTRIBUTE)

    assert not set(derived.RAW_BIOMETRIC_FIELDS) & set(kept)
    assert kept["gender"]["label"] == "female" and kept["box"]["width"] == 100
