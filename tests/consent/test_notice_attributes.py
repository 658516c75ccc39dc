"""The notice names exactly what is derived: every attribute the engine returns and the worker stores is in the
catalogue (consent.derived), the notice text is generated from it in each language, and the EU AI Act Art. 50(3)
statements appear exactly when biometric categorisation or emotion recognition is applied."""

from __future__ import annotations

import dataclasses

import pytest

from consent import derived
from consent.models import RetentionPolicy
from consent.services import notice_draft_create, notice_publish
from faceanalysis import aggregates
from faceanalysis.engine import FaceAnalysis
from faceanalysis.models import FrameFeatures
from tests.factories import make_retention_policy

pytestmark = pytest.mark.django_db

# FaceAnalysis fields that are not derived attributes: the list of what was withheld and why.
ENGINE_BOOKKEEPING = {"withheld"}
# FrameFeatures columns that describe the record, not the face (`faces` holds FaceAnalysis, checked above).
RECORD_COLUMNS = {
    "id", "organization", "frame", "session", "subject", "grant", "media_time_ms", "captured_at", "faces",
    "model_versions", "received_at", "analyzed_at", "latency_ms",
}
LANGUAGES = ("en", "de")
CATEGORY_HEADS = {
    derived.Category.BIOMETRIC_CATEGORISATION: {
        "en": "Biometric categorisation:", "de": "Biometrische Kategorisierung:"
    },
    derived.Category.EMOTION_RECOGNITION: {"en": "Emotion recognition:", "de": "Emotionserkennung:"},
}


def _owner_of_result_field(name: str) -> derived.DerivedAttribute | None:
    return next((a for a in derived.DERIVED_ATTRIBUTES if name in a.result_fields), None)


def _publish(org, *, language: str = "en", attributes=None, purposes=("face_analysis",)) -> str:
    if not RetentionPolicy.objects.filter(organization=org).exists():
        make_retention_policy(org)
    draft = notice_draft_create(
        organization=org, language=language, purposes=purposes, controller_name="Shop GmbH",
        controller_contact="privacy@shop.test", derived_attributes=attributes,
    )
    return notice_publish(notice=draft).text


def test_every_field_the_engine_returns_per_face_is_a_catalogued_attribute() -> None:
    fields = {f.name for f in dataclasses.fields(FaceAnalysis)} - ENGINE_BOOKKEEPING
    raw = set(derived.RAW_BIOMETRIC_FIELDS)
    assert raw <= fields  # the raw biometric outputs exist, and are never kept (tests/faceanalysis)
    unnamed = sorted(name for name in fields - raw if _owner_of_result_field(name) is None)
    assert not unnamed, f"engine output without a notice line in consent.derived: {unnamed}"
    catalogued = {name for a in derived.DERIVED_ATTRIBUTES for name in a.result_fields}
    assert catalogued <= fields, "the catalogue names a result field the engine does not have"


def test_every_feature_column_the_worker_stores_is_a_catalogued_attribute() -> None:
    columns = {f.name for f in FrameFeatures._meta.concrete_fields} - RECORD_COLUMNS
    unmapped = sorted(columns - set(FrameFeatures.ATTRIBUTE_COLUMNS))
    assert not unmapped, f"stored column without a derived attribute: {unmapped}"
    assert set(FrameFeatures.ATTRIBUTE_COLUMNS.values()) <= derived.ALL_KEYS
    assert set(aggregates.AGGREGATE_ATTRIBUTES.values()) <= derived.ALL_KEYS


def test_catalogue_is_complete_in_every_notice_language() -> None:
    for attribute in derived.DERIVED_ATTRIBUTES:
        assert set(attribute.label) == set(attribute.meaning) == set(LANGUAGES), attribute.key
    for statements in derived.CATEGORY_STATEMENTS.values():
        assert set(statements) == set(LANGUAGES)
    # The ones the issue names: estimated gender and age are biometric categorisation, expressions emotion
    # recognition; each optional, so a campaign can leave them out.
    assert derived.BY_KEY["gender"].category == derived.BY_KEY["age"].category == "biometric_categorisation"
    assert derived.BY_KEY["expression"].category == "emotion_recognition"
    assert {"expression", "age", "gender"} == set(derived.OPTIONAL_KEYS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_notice_names_each_derived_attribute_and_both_art_50_3_categories(org_a, language) -> None:
    text = _publish(org_a, language=language)
    for attribute in derived.DERIVED_ATTRIBUTES:
        assert f"- {attribute.label[language]}: {attribute.meaning[language]}." in text, attribute.key
    for heads in CATEGORY_HEADS.values():
        assert heads[language] in text
    assert "50" in text and ("Article 50(3)" in text or "Artikel 50 Absatz 3" in text)
    assert "such as" not in text  # no vague list: exactly what is derived


@pytest.mark.parametrize(
    ("chosen", "categories"),
    [
        ((), set()),
        (("expression",), {derived.Category.EMOTION_RECOGNITION}),
        (("age",), {derived.Category.BIOMETRIC_CATEGORISATION}),
        (("gender",), {derived.Category.BIOMETRIC_CATEGORISATION}),
        (("expression", "age", "gender"), set(derived.Category)),
    ],
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_notice_lists_only_the_chosen_attributes_and_their_categories(org_a, chosen, categories, language) -> None:
    text = _publish(org_a, language=language, attributes=chosen)
    named = set(chosen) | derived.CORE_KEYS
    for attribute in derived.DERIVED_ATTRIBUTES:
        line = f"- {attribute.label[language]}:"
        assert (line in text) == (attribute.key in named), (attribute.key, text)
        if attribute.key not in named:
            assert attribute.label[language] not in text
    for category, heads in CATEGORY_HEADS.items():
        assert (heads[language] in text) == (category in categories), (category, text)


def test_a_notice_without_face_analysis_has_no_section_on_derived_attributes(org_a) -> None:
    text = _publish(org_a, purposes=("face_verification",))
    assert derived.HEADING["en"] not in text and "Emotion recognition" not in text


@pytest.mark.slow
def test_the_notice_names_everything_the_real_engine_derives_from_a_real_face(org_a) -> None:
    """From the engine's actual output on the astronaut: each field it filled belongs to an attribute the
    default notice names, in English and German."""
    from skimage.data import astronaut

    from faceanalysis.inference import get_engine

    (face,) = get_engine().analyze_batch([astronaut()])[0].faces
    filled = [f.name for f in dataclasses.fields(face) if getattr(face, f.name) not in (None, (), {})]
    filled = [name for name in filled if name not in ENGINE_BOOKKEEPING]
    assert {"box", "pose", "gaze", "eyes", "expression", "age", "gender"} <= set(filled)
    for language in LANGUAGES:
        text = _publish(org_a, language=language)
        for name in filled:
            assert f"- {_owner_of_result_field(name).label[language]}:" in text, name


def test_the_core_attributes_are_named_even_when_a_caller_passes_only_an_extra() -> None:
    from datetime import UTC, datetime

    from consent.notice_text import compose_notice_text

    text = compose_notice_text(
        language="en", version=1, purposes=["face_analysis"], controller_name="Shop", controller_contact="x@y",
        recipients="", introduction="", derived_attributes={"age"},
        retention={"feature_retention_days": 30, "grant_validity_days": 365}, published_at=datetime.now(UTC),
    )
    for key in derived.CORE_KEYS | {"age"}:
        assert f"- {derived.BY_KEY[key].label['en']}:" in text
    assert "- Estimated gender:" not in text
