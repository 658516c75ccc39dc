"""From an engine's analysis of one frame to its row of derived features. Pure: no query, no settings, so
the mapping is tested without a database. Raw biometric data and every attribute the session did not choose
are left out here, whatever the engine returned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consent import derived
from consent.models import Grant
from faceanalysis.models import Frame, FrameFeatures


def only_chosen(face: dict[str, Any], chosen: frozenset[str]) -> dict[str, Any]:
    """An engine face as stored: no raw biometric data, and nothing of an attribute the session did not choose
    (the engine skipped those stages; this holds whatever engine ran)."""
    for name in derived.RAW_BIOMETRIC_FIELDS:
        face.pop(name, None)  # biometric raw data is never kept, whatever the engine was asked for
    for attribute in derived.DERIVED_ATTRIBUTES:
        if attribute.key not in chosen:
            for name in attribute.result_fields:
                if name in face:
                    face[name] = None
    return face


def features_from(
    frame: Frame, grant: Grant, analysis: Any, now: datetime, chosen: frozenset[str]
) -> FrameFeatures:
    """The row of derived features for one analysed frame, holding only the attributes in `chosen`."""
    face = analysis.faces[0] if analysis.faces else None
    smile = None
    if face is not None and face.blendshapes:
        smile = (face.blendshapes.get("mouthSmileLeft", 0.0) + face.blendshapes.get("mouthSmileRight", 0.0)) / 2
    faces = [only_chosen(item.to_dict(), chosen) for item in analysis.faces]
    features = FrameFeatures(
        organization_id=frame.organization_id,
        frame=frame,
        session_id=frame.session_id,
        subject_id=frame.subject_id,
        grant=grant,
        media_time_ms=frame.media_time_ms,
        captured_at=frame.captured_at,
        face_count=len(analysis.faces),
        quality_ok=bool(face is not None and face.quality.acceptable),
        quality_reasons=list(face.quality.reasons) if face is not None else ["no_face"],
        attention_score=face.gaze.attention_score if face is not None and face.gaze else None,
        looking_at_screen=face.gaze.looking_at_screen if face is not None and face.gaze else None,
        eyes_open=face.eyes.open if face is not None and face.eyes else None,
        smile=round(smile, 4) if smile is not None else None,
        expression=face.expression.top if face is not None and face.expression else "",
        expression_confidence=face.expression.confidence if face is not None and face.expression else None,
        age_years=face.age.years if face is not None and face.age else None,
        gender=face.gender.label if face is not None and face.gender else "",
        gender_confidence=face.gender.confidence if face is not None and face.gender else None,
        faces=faces,
        model_versions=[model.to_dict() for model in analysis.models],
        received_at=frame.received_at,
        analyzed_at=now,
        latency_ms=round((now - frame.received_at).total_seconds() * 1000.0, 2),
    )
    for column, key in FrameFeatures.ATTRIBUTE_COLUMNS.items():
        if key not in chosen:
            field = FrameFeatures._meta.get_field(column)
            setattr(features, column, None if field.null else field.get_default())
    return features
