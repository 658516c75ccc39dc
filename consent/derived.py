"""What is derived from a face: the one list the notice text, the campaign's choice and the engine all read.

Pure Python, no Django, no other app: the consent app composes notices from it, and the engine
(`faceanalysis.engine`, which imports no Django) decides from it which stages to run. An attribute the engine
returns or the worker stores must be named here, or a test fails.

Each attribute names the engine stage that produces it, the engine result fields it fills, what it means in
plain words in every notice language, whether it is biometric categorisation or emotion recognition (EU AI Act
Art. 50(3) requires telling people about both), and whether a campaign may leave it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """Engine stages, named as the models they run (see faceanalysis/engine/manifest.json)."""

    DETECTOR = "detector"
    LANDMARKER = "landmarker"
    EXPRESSION = "expression"
    AGE = "age"
    GENDER = "gender"


class Category(StrEnum):
    """Kinds of AI system the EU AI Act makes a controller disclose (Art. 50(3))."""

    BIOMETRIC_CATEGORISATION = "biometric_categorisation"
    EMOTION_RECOGNITION = "emotion_recognition"


@dataclass(frozen=True, slots=True)
class DerivedAttribute:
    """One thing derived from a face, as the notice names it and the engine produces it."""

    key: str
    stage: Stage
    result_fields: tuple[str, ...]  # fields of faceanalysis.engine.FaceAnalysis that carry it
    label: dict[str, str]  # per notice language
    meaning: dict[str, str]  # per notice language, plain words
    category: Category | None = None
    optional: bool = False  # a campaign may choose not to derive it (then its stage is skipped)


DERIVED_ATTRIBUTES: tuple[DerivedAttribute, ...] = (
    DerivedAttribute(
        key="face_position",
        stage=Stage.DETECTOR,
        result_fields=("box", "detection_score"),
        label={"en": "Face position", "de": "Position des Gesichts"},
        meaning={
            "en": "where a face is in the image, how large it is and how many faces there are",
            "de": "wo sich ein Gesicht im Bild befindet, wie groß es ist und wie viele Gesichter zu sehen sind",
        },
    ),
    DerivedAttribute(
        key="head_pose",
        stage=Stage.LANDMARKER,
        result_fields=("pose",),
        label={"en": "Head pose", "de": "Kopfhaltung"},
        meaning={
            "en": "how far your head is turned, tilted up or down and to the side, in degrees",
            "de": "wie weit Ihr Kopf gedreht, nach oben oder unten und zur Seite geneigt ist, in Grad",
        },
    ),
    DerivedAttribute(
        key="gaze",
        stage=Stage.LANDMARKER,
        result_fields=("gaze",),
        label={"en": "Gaze and attention", "de": "Blickrichtung und Aufmerksamkeit"},
        meaning={
            "en": "where your eyes point and a score of whether you are looking at the screen",
            "de": "wohin Ihre Augen blicken und ein Wert dafür, ob Sie auf den Bildschirm schauen",
        },
    ),
    DerivedAttribute(
        key="eyes",
        stage=Stage.LANDMARKER,
        result_fields=("eyes",),
        label={"en": "Eye openness and blinks", "de": "Augenöffnung und Lidschläge"},
        meaning={
            "en": "how open each eye is, and how often you blink",
            "de": "wie weit jedes Auge geöffnet ist und wie oft Sie blinzeln",
        },
    ),
    DerivedAttribute(
        key="quality",
        stage=Stage.DETECTOR,
        result_fields=("quality",),
        label={"en": "Image quality", "de": "Bildqualität"},
        meaning={
            "en": "sharpness, brightness, contrast and size of the face in the image, to discard unreliable images",
            "de": "Schärfe, Helligkeit, Kontrast und Größe des Gesichts im Bild, um unzuverlässige Bilder zu "
            "verwerfen",
        },
    ),
    DerivedAttribute(
        key="expression",
        stage=Stage.EXPRESSION,
        result_fields=("expression", "blendshapes"),
        label={"en": "Facial expression scores", "de": "Werte zum Gesichtsausdruck"},
        meaning={
            "en": "scores for seven facial expressions (angry, disgusted, fearful, happy, sad, surprised, neutral), "
            "a smile score and scores of facial movements",
            "de": "Werte für sieben Gesichtsausdrücke (wütend, angewidert, ängstlich, fröhlich, traurig, überrascht, "
            "neutral), ein Lächelwert und Werte zu Bewegungen des Gesichts",
        },
        category=Category.EMOTION_RECOGNITION,
        optional=True,
    ),
    DerivedAttribute(
        key="age",
        stage=Stage.AGE,
        result_fields=("age",),
        label={"en": "Estimated age range", "de": "Geschätzte Altersspanne"},
        meaning={
            "en": "an estimate of your age in years, with a range, from your appearance",
            "de": "eine Schätzung Ihres Alters in Jahren, mit einer Spanne, aus Ihrem Aussehen",
        },
        category=Category.BIOMETRIC_CATEGORISATION,
        optional=True,
    ),
    DerivedAttribute(
        key="gender",
        stage=Stage.GENDER,
        result_fields=("gender",),
        label={"en": "Estimated gender", "de": "Geschätztes Geschlecht"},
        meaning={
            "en": "an estimate of whether you appear female or male, with a confidence; it is an appearance, "
            "not your identity",
            "de": "eine Schätzung, ob Sie weiblich oder männlich wirken, mit einer Sicherheit; es geht um das "
            "Aussehen, nicht um Ihre Identität",
        },
        category=Category.BIOMETRIC_CATEGORISATION,
        optional=True,
    ),
)

BY_KEY: dict[str, DerivedAttribute] = {attribute.key: attribute for attribute in DERIVED_ATTRIBUTES}
ALL_KEYS: frozenset[str] = frozenset(BY_KEY)
# Always derived when a face is analysed at all: attention analytics rest on them.
CORE_KEYS: frozenset[str] = frozenset(a.key for a in DERIVED_ATTRIBUTES if not a.optional)
OPTIONAL_KEYS: tuple[str, ...] = tuple(a.key for a in DERIVED_ATTRIBUTES if a.optional)
# Engine outputs that are biometric raw data: off by default, and never kept by the worker, whatever asked.
RAW_BIOMETRIC_FIELDS: tuple[str, ...] = ("landmarks", "embedding")

# What the notice says about each category, per language, once the attributes it names are listed.
CATEGORY_STATEMENTS: dict[Category, dict[str, str]] = {
    Category.BIOMETRIC_CATEGORISATION: {
        "en": "Biometric categorisation: a biometric categorisation system is applied to you. From your face it "
        "estimates: %(attributes)s (EU AI Act, Article 50(3)).",
        "de": "Biometrische Kategorisierung: Ein System zur biometrischen Kategorisierung wird auf Sie angewendet. "
        "Es schätzt aus Ihrem Gesicht: %(attributes)s (KI-Verordnung der EU, Artikel 50 Absatz 3).",
    },
    Category.EMOTION_RECOGNITION: {
        "en": "Emotion recognition: an emotion recognition system is applied to you. Your facial expressions are "
        "analysed to estimate emotions: %(attributes)s (EU AI Act, Article 50(3)).",
        "de": "Emotionserkennung: Ein Emotionserkennungssystem wird auf Sie angewendet. Ihre Gesichtsausdrücke "
        "werden analysiert, um Emotionen zu schätzen: %(attributes)s (KI-Verordnung der EU, Artikel 50 Absatz 3).",
    },
}
HEADING: dict[str, str] = {
    "en": "What is derived from your face (only numbers; these are biometric data):",
    "de": "Was aus Ihrem Gesicht abgeleitet wird (nur Zahlen; dies sind biometrische Daten):",
}


def canonical(keys: Iterable[str]) -> str:
    """The stored, comparable form of an attribute choice: the core attributes plus the chosen ones, in
    catalogue order, comma-joined. Raises ValueError on an unknown key."""
    chosen = {key.strip() for key in keys if key.strip()}
    unknown = chosen - ALL_KEYS
    if unknown:
        raise ValueError(f"unknown derived attribute(s): {', '.join(sorted(unknown))}")
    chosen |= CORE_KEYS
    return ",".join(a.key for a in DERIVED_ATTRIBUTES if a.key in chosen)


def parse(stored: str) -> frozenset[str]:
    """The attribute keys of a stored choice (see `canonical`); unknown keys are dropped, core ones added."""
    return frozenset(k for k in stored.split(",") if k in BY_KEY) | CORE_KEYS


ALL_CANONICAL: str = canonical(ALL_KEYS)


def stages_for(keys: Iterable[str]) -> frozenset[Stage]:
    """The engine stages that must run to derive these attributes."""
    return frozenset(BY_KEY[k].stage for k in keys)


def categories_for(keys: Iterable[str]) -> dict[Category, list[DerivedAttribute]]:
    """The Art. 50(3) categories these attributes fall in, each with its attributes in catalogue order."""
    chosen = set(keys)
    found: dict[Category, list[DerivedAttribute]] = {}
    for attribute in DERIVED_ATTRIBUTES:
        if attribute.key in chosen and attribute.category is not None:
            found.setdefault(attribute.category, []).append(attribute)
    return found


def notice_lines(keys: Iterable[str], language: str) -> list[str]:
    """The notice's section on what is derived, in `language`: each attribute with its meaning (exactly these,
    nothing else), and an Art. 50(3) statement for each category that applies. The core attributes are always
    derived, so always named."""
    chosen = set(keys) | CORE_KEYS
    lines = [HEADING[language]]
    lines += [
        f"- {a.label[language]}: {a.meaning[language]}." for a in DERIVED_ATTRIBUTES if a.key in chosen
    ]
    return lines + category_lines(chosen, language)


def category_lines(keys: Iterable[str], language: str) -> list[str]:
    """One Art. 50(3) statement per category these attributes fall in, naming them, in `language`."""
    lines = []
    for category, attributes in categories_for(keys).items():
        names = ", ".join(a.label[language] for a in attributes)
        lines.append(CATEGORY_STATEMENTS[category][language] % {"attributes": names})
    return lines
