"""Frozen result types; plain data, JSON-ready through to_dict()."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _plain(value: Any) -> Any:
    """Recursively turn result dataclasses, tuples and mappings into JSON-ready values."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


class _ToDict:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict of this result."""
        return _plain(self)


@dataclass(frozen=True, slots=True)
class ModelInfo(_ToDict):
    """Which model produced an output: manifest key, model name and version (source package)."""

    key: str
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class BoundingBox(_ToDict):
    """Axis-aligned face box in the original image's pixel coordinates."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class HeadPose(_ToDict):
    """Head rotation in degrees: yaw > 0 turned towards the image's right, pitch > 0 up, roll > 0 clockwise."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True, slots=True)
class Gaze(_ToDict):
    """Where the eyes point relative to the camera, and whether that counts as looking at the screen."""

    yaw: float  # head yaw plus eye-in-head yaw, degrees, > 0 towards the image's right
    pitch: float  # degrees, > 0 up
    attention_score: float  # 1 straight at the camera, falling off with angular deviation
    looking_at_screen: bool  # attention_score >= EngineConfig.attention_threshold and eyes open


@dataclass(frozen=True, slots=True)
class Eyes(_ToDict):
    """Eye openness 0 (closed) to 1 (open), per eye of the person (left = the person's left)."""

    left_openness: float
    right_openness: float
    open: bool


@dataclass(frozen=True, slots=True)
class Quality(_ToDict):
    """Image quality of one face and the verdict; reasons name every failed check."""

    sharpness: float
    brightness: float
    contrast: float
    face_size_px: float
    frontalness: float  # 1 frontal, 0 profile or worse
    acceptable: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Expression(_ToDict):
    """Apparent facial expression over seven classes; appearance, not a feeling."""

    probabilities: dict[str, float]
    top: str
    confidence: float
    model: str


@dataclass(frozen=True, slots=True)
class AgeEstimate(_ToDict):
    """Apparent age in years with an 80% band (10th-90th percentile of the model's distribution)."""

    years: float
    low: float
    high: float
    model: str


@dataclass(frozen=True, slots=True)
class GenderEstimate(_ToDict):
    """Apparent gender presentation as the model was trained on it ("female"/"male"), with confidence."""

    label: str
    confidence: float
    model: str


@dataclass(frozen=True, slots=True)
class Withheld(_ToDict):
    """An output the engine declined to give, and why."""

    attribute: str
    reason: str


@dataclass(frozen=True, slots=True)
class FaceAnalysis(_ToDict):
    """Everything derived for one face; an attribute is None exactly when it appears in withheld."""

    box: BoundingBox
    detection_score: float
    quality: Quality
    pose: HeadPose | None = None
    gaze: Gaze | None = None
    eyes: Eyes | None = None
    blendshapes: dict[str, float] | None = None
    expression: Expression | None = None
    age: AgeEstimate | None = None
    gender: GenderEstimate | None = None
    withheld: tuple[Withheld, ...] = ()
    # Biometric raw data, only when EngineConfig asks for it.
    landmarks: tuple[tuple[float, float, float], ...] | None = None
    embedding: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class FrameAnalysis(_ToDict):
    """The analysis of one image: faces sorted by size (largest first) and the models used."""

    width: int
    height: int
    timestamp: float | None
    faces: tuple[FaceAnalysis, ...]
    models: tuple[ModelInfo, ...]
    analysis_scale: float = 1.0  # the image was analysed at this scale; coordinates are already undone
    # Milliseconds per stage of the call that produced this result (the whole batch for analyze_batch).
    timings_ms: dict[str, float] = field(default_factory=dict)
