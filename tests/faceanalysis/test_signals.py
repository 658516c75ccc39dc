"""Face signals for decisions: hand-computed reads, agreement with the session aggregates, windows, the cache form."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from faceanalysis.aggregates import FeatureRow, summarize
from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.signals import (
    AGE_BANDS,
    EXPRESSION_FIELDS,
    FACE_FIELDS,
    FaceSignals,
    FrameSignal,
    age_band,
    frame_signal_from_row,
)

NOW = 1_700_000_000.0


def frame(ago: float = 1.0, *, counting: bool = True, looking: bool | None = True, smile: float | None = 0.0,
          expression: str = "neutral", confidence: float | None = 0.9, probabilities: dict | None = None,
          age: float | None = 30.0, gender: str = "female", gender_confidence: float | None = 0.9) -> FrameSignal:
    if probabilities is None and expression:
        probabilities = {label: (0.7 if label == expression else 0.05) for label in EXPRESSION_LABELS}
    return FrameSignal(at=NOW - ago, counting=counting, looking=looking, smile=smile, expression=expression,
                       expression_confidence=confidence, expression_probabilities=probabilities, age_years=age,
                       gender=gender, gender_confidence=gender_confidence)


def read(signals: FaceSignals, field: str, *, window: int = 900, confidence: float = 0.5, frames: int = 1):
    return signals.read(field, window_seconds=window, min_confidence=confidence, min_frames=frames)


def test_shares_are_hand_computed_over_counting_frames() -> None:
    signals = FaceSignals([
        frame(1, smile=0.9, looking=True),
        frame(2, smile=0.5, looking=False),  # exactly the threshold smiles
        frame(3, smile=0.1, looking=True),
        frame(4, smile=0.2, looking=True),
        frame(5, counting=False, smile=0.9, looking=False),  # does not count
    ], now=NOW)
    assert read(signals, "face.smile_share") == 0.5
    assert read(signals, "face.attention_share") == 0.75
    assert read(signals, "face.quality_share") == 0.8


def test_frames_without_a_value_are_no_evidence_for_that_share() -> None:
    signals = FaceSignals([frame(1, smile=0.9, looking=None), frame(2, smile=None, looking=None),
                           frame(3, smile=None, looking=False)], now=NOW)
    assert read(signals, "face.smile_share") == 1.0
    assert read(signals, "face.smile_share", frames=2) is None  # only one frame has a smile
    assert read(signals, "face.attention_share") == 0.0
    assert read(signals, "face.attention_share", frames=2) is None


def test_expression_means_use_only_frames_at_the_confidence() -> None:
    happy = {label: 0.0 for label in EXPRESSION_LABELS} | {"happy": 0.8, "neutral": 0.2}
    sad = {label: 0.0 for label in EXPRESSION_LABELS} | {"sad": 0.6, "neutral": 0.4}
    signals = FaceSignals([
        frame(1, expression="happy", confidence=0.8, probabilities=happy),
        frame(2, expression="sad", confidence=0.6, probabilities=sad),
        frame(3, expression="sad", confidence=0.3, probabilities=sad),  # below 0.5
        frame(4, counting=False, expression="happy", confidence=0.9, probabilities=happy),
    ], now=NOW)
    assert read(signals, "face.expression.happy") == 0.4
    assert read(signals, "face.expression.neutral") == 0.3
    assert read(signals, "face.expression.sad", confidence=0.7) == 0.0
    assert read(signals, "face.expression.happy", confidence=0.7) == 0.8
    assert read(signals, "face.expression.happy", confidence=0.0) == pytest.approx((0.8 + 0.0 + 0.0) / 3, abs=1e-4)
    assert read(signals, "face.expression.happy", frames=3) is None


def test_top_expression_is_the_most_frequent_and_a_tie_goes_to_the_newest() -> None:
    signals = FaceSignals([frame(1, expression="happy"), frame(2, expression="sad"), frame(3, expression="sad"),
                           frame(4, expression="happy", confidence=0.2)], now=NOW)
    assert read(signals, "face.top_expression") == "sad"
    assert read(signals, "face.top_expression", confidence=0.0) == "happy"  # 2:2, happy is newest
    assert read(signals, "face.top_expression", confidence=0.95) is None


def test_gender_is_the_more_frequent_confident_label_and_a_tie_goes_to_the_newest() -> None:
    signals = FaceSignals([frame(1, gender="male", gender_confidence=0.6), frame(2, gender="female"),
                           frame(3, gender="female", gender_confidence=0.55),
                           frame(4, gender="", gender_confidence=None),
                           frame(5, gender="male", counting=False)], now=NOW)
    assert read(signals, "face.gender") == "female"
    assert read(signals, "face.gender", confidence=0.58) == "male"  # 1:1, male is the newest
    assert read(signals, "face.gender", confidence=0.95) is None
    assert read(signals, "face.gender", frames=4) is None


def test_age_band_is_the_band_of_the_median_age() -> None:
    signals = FaceSignals([frame(1, age=20), frame(2, age=26), frame(3, age=40), frame(4, age=None),
                           frame(5, age=70, counting=False)], now=NOW)
    assert read(signals, "face.age_band") == "25_34"
    assert read(signals, "face.age_band", frames=4) is None
    even = FaceSignals([frame(1, age=24), frame(2, age=25)], now=NOW)  # median 24.5
    assert read(even, "face.age_band") == "18_24"


@pytest.mark.parametrize(("years", "band"), [
    (0, "under_18"), (17.99, "under_18"), (18, "18_24"), (24.99, "18_24"), (25, "25_34"), (34.5, "25_34"),
    (35, "35_44"), (45, "45_54"), (55, "55_64"), (64.99, "55_64"), (65, "65_plus"), (101, "65_plus"),
])
def test_age_bands_are_half_open_at_their_lower_edges(years: float, band: str) -> None:
    assert age_band(years) == band
    assert band in AGE_BANDS


def test_window_keeps_only_recent_frames_and_min_frames_means_no_fresh_features() -> None:
    signals = FaceSignals([frame(5, smile=0.9), frame(50, smile=0.9), frame(500, smile=0.0),
                           frame(-2, smile=0.9)], now=NOW)  # a frame stamped after now (clock skew) counts
    assert read(signals, "face.smile_share", window=10) == 1.0
    assert read(signals, "face.smile_share", window=100) == 1.0
    assert read(signals, "face.smile_share", window=1000) == 0.75
    assert read(signals, "face.smile_share", window=10, frames=3) is None
    assert read(signals, "face.smile_share", window=100, frames=3) == 1.0
    assert read(FaceSignals([], now=NOW), "face.quality_share") is None


def test_reads_are_memoised_and_do_not_depend_on_frame_order() -> None:
    frames = [frame(i, smile=(i % 3) / 2, expression=EXPRESSION_LABELS[i % 7], age=18 + i) for i in range(40)]
    forward, backward = FaceSignals(frames, now=NOW), FaceSignals(list(reversed(frames)), now=NOW)
    for field in sorted(FACE_FIELDS):
        first = read(forward, field, window=20)
        assert read(forward, field, window=20) == first == read(backward, field, window=20), field


def test_unknown_field_reads_nothing() -> None:
    assert read(FaceSignals([frame()], now=NOW), "face.shoe_size") is None


def test_rows_round_trip_through_json() -> None:
    frames = [frame(1, expression="happy", smile=0.7), frame(2, expression="", probabilities=None, confidence=None,
                                                            age=None, gender="", gender_confidence=None, looking=None)]
    signals = FaceSignals(frames, now=NOW)
    rows = json.loads(json.dumps(signals.to_rows()))
    again = FaceSignals.from_rows(rows, now=NOW)
    for field in sorted(FACE_FIELDS):
        assert read(again, field) == read(signals, field), field
    assert again.to_rows() == signals.to_rows()


@pytest.mark.parametrize("rows", [[[1, 2]], "rows", [None], [[1.0, True, None, None, "", None, [0.1], None, "", None]]])
def test_rows_of_another_shape_are_refused(rows) -> None:
    with pytest.raises(ValueError, match="face signal rows"):
        FaceSignals.from_rows(rows, now=NOW)


def test_expression_fields_are_the_emotion_recognition_face_fields() -> None:
    assert {f"face.expression.{label}" for label in EXPRESSION_LABELS} < EXPRESSION_FIELDS
    assert {"face.top_expression", "face.smile_share"} < EXPRESSION_FIELDS < FACE_FIELDS
    others = FACE_FIELDS - EXPRESSION_FIELDS
    assert others == {"face.attention_share", "face.age_band", "face.gender", "face.quality_share"}


def test_shares_agree_with_the_session_aggregates_over_the_same_frames() -> None:
    rng = random.Random(7)
    for _ in range(30):
        rows = []
        for i in range(rng.randint(1, 60)):
            face_count = rng.choice([0, 1, 1, 2])
            rows.append(FeatureRow(t=float(i), face_count=face_count, quality_ok=face_count > 0 and rng.random() < 0.8,
                                   looking_at_screen=rng.random() < 0.6, attention_score=0.5, eyes_open=True,
                                   smile=rng.choice([0.0, 0.3, 0.5, 0.8]), expression=rng.choice(EXPRESSION_LABELS)))
        signals = FaceSignals([
            frame_signal_from_row(
                analyzed_at=datetime.fromtimestamp(NOW - 100 + row.t, UTC), face_count=row.face_count,
                quality_ok=row.quality_ok, looking_at_screen=row.looking_at_screen, smile=row.smile,
                expression=row.expression, expression_confidence=0.9, faces=[],
            ) for row in rows
        ], now=NOW)
        summary = summarize(rows)
        assert read(signals, "face.smile_share") == summary["smile_share"]
        assert read(signals, "face.attention_share") == summary["attention_share"]
        rejected = summary["quality_rejection_share"]
        assert read(signals, "face.quality_share") == pytest.approx(1 - rejected, abs=1e-4)


def test_signal_from_a_feature_row_reads_the_largest_face() -> None:
    faces = [{
        "expression": {"probabilities": {"happy": 0.8, "neutral": 0.2, "bogus": 1.0}, "top": "happy",
                       "confidence": 0.8, "model": "fer"},
        "age": {"years": 31.5, "low": 25, "high": 38, "model": "age"},
        "gender": {"label": "male", "confidence": 0.93, "model": "gender"},
    }, {"age": {"years": 70.0}}]
    signal = frame_signal_from_row(analyzed_at=datetime(2024, 5, 1, 12, tzinfo=UTC), face_count=2, quality_ok=True,
                                   looking_at_screen=True, smile=0.61, expression="happy", expression_confidence=0.8,
                                   faces=faces)
    assert signal.at == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    assert signal.counting and signal.looking and signal.smile == 0.61
    assert signal.expression_probabilities == {"happy": 0.8, "neutral": 0.2}
    assert (signal.age_years, signal.gender, signal.gender_confidence) == (31.5, "male", 0.93)


def test_signal_from_a_row_without_a_face_or_with_trimmed_attributes_has_none() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    empty = frame_signal_from_row(analyzed_at=at, face_count=0, quality_ok=False, looking_at_screen=None, smile=None,
                                  expression="", expression_confidence=None, faces=[])
    assert not empty.counting and empty.expression_probabilities is None and empty.age_years is None
    trimmed = frame_signal_from_row(analyzed_at=at, face_count=1, quality_ok=True, looking_at_screen=None, smile=None,
                                    expression="", expression_confidence=None,
                                    faces=[{"expression": None, "age": None,
                                            "gender": {"label": "x", "confidence": "y"}}])
    assert trimmed.counting and trimmed.gender == "" and trimmed.gender_confidence is None
    junk = frame_signal_from_row(analyzed_at=at, face_count=1, quality_ok=False, looking_at_screen="yes",
                                 smile=float("nan"), expression="grin", expression_confidence=True, faces="junk")
    assert (junk.counting, junk.looking, junk.smile, junk.expression, junk.expression_confidence) == (
        False, None, None, "", None)
