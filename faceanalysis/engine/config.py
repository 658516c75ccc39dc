"""The engine's frozen configuration; every documented threshold lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from consent import derived

EXPRESSION_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine runs and where it draws the line between reliable and withheld."""

    models_dir: Path | None = None  # None: $VISAGE_MODELS_DIR, else <repo>/var/models
    verify_hashes: bool = True  # hash every model file once per process before loading it

    # Execution. None picks per device: 1 intra-op thread on CPU (mediapipe needs the other core).
    intra_op_threads: int | None = None
    use_gpu: bool = True  # CUDAExecutionProvider when onnxruntime offers it
    max_batch: int = 64  # faces per ONNX run in analyze_batch
    # On CPU, runs of at least batch_min_rows faces go through age/gender/expression sessions with
    # batch_intra_op_threads threads (None: every core): a batch has enough work to split across cores,
    # a single face does not. Set it to 1 when several worker processes share the cores.
    batch_intra_op_threads: int | None = None
    batch_min_rows: int = 8
    # Faces landmarked before their age/gender run is queued beside the next chunk. None: 8 on CPU,
    # where overlap pays; max_batch on GPU, where one big run does.
    landmark_chunk: int | None = None
    # Frames of one size per YuNet run. None: 8 on GPU, where one big run pays; 1 on CPU, where it gains
    # nothing and costs memory.
    detector_rows: int | None = None
    # Pad every ONNX run to exactly its rows (detector_rows frames, max_batch faces) with zeros. None: on GPU
    # only. CUDA plans each convolution again whenever an input's shape changes: measured on an H200, 200 ms
    # for the expression model against 0.5 ms for a steady batch of 32, so a fixed shape is far cheaper.
    pad_rows: bool | None = None

    # Input handling.
    max_image_side: int = 1920  # larger images are downscaled first; coordinates stay in the original
    max_input_pixels: int = 100_000_000  # refuse anything bigger outright

    # Detection (YuNet).
    detection_threshold: float = 0.6
    nms_threshold: float = 0.3
    max_faces: int = 20
    min_face_px: int = 40  # smallest face width (input pixels) the detector must still see
    detector_face_px: int = 20  # YuNet finds faces down to about this width at its own input
    detector_min_side: int = 320  # never shrink the detector input below this long side
    detector_max_side: int = 1024  # nor run it larger than this

    # Landmarker (MediaPipe) on each face's crop.
    crop_scale: float = 1.7  # square crop side, in detector box sides
    crop_size: int = 192  # pixels the crop is resampled to before the landmarker
    landmarker_detection_confidence: float = 0.4

    # Quality gate: any reason below makes the face unacceptable and withholds its attributes.
    min_detection_score: float = 0.7
    min_face_size_px: float = 30.0
    min_sharpness: float = 60.0  # variance of the Laplacian on the 64x64 grey face chip
    min_brightness: float = 45.0  # mean grey level of the face chip, 0-255
    max_brightness: float = 225.0
    min_contrast: float = 18.0  # standard deviation of the face chip's grey levels
    max_abs_yaw: float = 45.0
    max_abs_pitch: float = 35.0

    # Per-attribute confidence: below these the attribute is withheld, never guessed.
    min_expression_confidence: float = 0.40
    min_gender_confidence: float = 0.80
    max_age_band_years: float = 30.0  # width of the 10th-90th percentile band

    # Gaze and attention.
    attention_sigma_deg: float = 15.0  # score = exp(-d^2 / 2 sigma^2), d = angular gaze deviation
    attention_threshold: float = 0.5  # looking_at_screen when score >= this (d <~ 17.7 degrees)
    eye_closed_threshold: float = 0.5  # MediaPipe eyeBlink score above which an eye counts as closed

    # What leaves the engine. Raw landmarks and embeddings are biometric data: off by default.
    return_landmarks: bool = False
    compute_embedding: bool = False
    # Derived attributes (keys of consent.derived, the list notices are written from) analysed by default; the
    # core ones are always derived. A stage no attribute needs does not run (analyze_batch can narrow it per
    # image, for batches that mix campaigns).
    attributes: frozenset[str] = field(default=derived.ALL_KEYS)

    def __post_init__(self) -> None:
        unknown = set(self.attributes) - derived.ALL_KEYS
        if unknown:
            raise ValueError(f"unknown derived attribute(s): {', '.join(sorted(unknown))}")
        object.__setattr__(self, "attributes", frozenset(self.attributes) | derived.CORE_KEYS)

    def resolved_models_dir(self) -> Path:
        """The models directory this config points at."""
        from .models import resolve_models_dir

        return resolve_models_dir(self.models_dir)
