"""The Engine: YuNet detection, MediaPipe landmarks per face crop, batched ONNX attributes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from consent import derived

from . import analysis
from .config import EngineConfig
from .image import as_rgb_uint8, estimate_similarity, invert_affine, limit_size, similarity_to_square, warp_chip
from .models import load_manifest
from .results import BoundingBox, Eyes, FaceAnalysis, FrameAnalysis, ModelInfo, Withheld
from .runtime import Runtime, load_runtime

AGE_BIN_YEARS = np.array([0.25, *range(1, 81)], dtype=np.float64)
_AGE_GENDER_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
# ArcFace/SFace 112x112 template: eye centres, nose tip, mouth corners (image left first).
_SFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
EXPRESSION_CHIP_PADDING = 0.05
ATTRIBUTES = ("gaze", "eyes", "blendshapes", "expression", "age", "gender")
# Stages a campaign may leave out, and the result fields each one fills (from consent.derived).
OPTIONAL_STAGES = ("expression", "age", "gender")
STAGE_FIELDS = {
    stage: tuple(f for a in derived.DERIVED_ATTRIBUTES if a.stage == stage for f in a.result_fields)
    for stage in OPTIONAL_STAGES
}


_AGE_GENDER_STAGES = frozenset({"age", "gender"})


@dataclass(slots=True)
class _Candidate:
    """A detected face on its way through the pipeline (mutable scratch, never returned)."""

    frame: int
    stages: frozenset[str]  # optional stages this face's image asked for
    box: np.ndarray  # x, y, w, h in the analysed image
    score: float
    keypoints: np.ndarray  # YuNet's 5 points: eyes (image-left first), nose tip, mouth corners
    landmarks: np.ndarray | None = None  # 478 x 3, x/y in analysed-image pixels
    blendshapes: dict[str, float] | None = None
    matrix: np.ndarray | None = None


class Engine:
    """Face analysis over decoded RGB images; sessions are created lazily in the calling process.

    Not thread-safe (MediaPipe's landmarker is not): use one Engine per thread or process.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._runtime: Runtime | None = None
        _, specs = load_manifest()
        used = ["detector", "landmarker", "expression", "age", "gender"]
        if self.config.compute_embedding:
            used.append("embedder")
        self.models = tuple(ModelInfo(key=k, name=specs[k].name, version=specs[k].version) for k in used)
        self._model_label = {m.key: f"{m.name}@{m.version}" for m in self.models}

    @property
    def runtime(self) -> Runtime:
        """Sessions for this process, created on first use and again after a fork."""
        if self._runtime is None or self._runtime.pid != os.getpid():
            # A runtime inherited through fork holds native threads that did not survive it.
            self._runtime = load_runtime(self.config)
            # MediaPipe closes its graph through a thread pool that is gone by the time plain atexit handlers
            # or __del__ run, and prints a traceback; threading's own exit hooks run while the pool is alive.
            threading._register_atexit(self.close)
        return self._runtime

    def warm_up(self) -> None:
        """Create the sessions now (e.g. at worker start) instead of on the first frame."""
        self.analyze(np.zeros((64, 64, 3), dtype=np.uint8))

    def close(self) -> None:
        """Release native resources held by this process's sessions."""
        if self._runtime is not None and self._runtime.pid == os.getpid():
            self._runtime.close()
        self._runtime = None

    def analyze(
        self, image: np.ndarray, timestamp: float | None = None, attributes: Iterable[str] | None = None
    ) -> FrameAnalysis:
        """Analyse one RGB image (HxWx3 uint8; grey and RGBA are accepted)."""
        return self.analyze_batch(
            [image], None if timestamp is None else [timestamp], None if attributes is None else [attributes]
        )[0]

    def _stages_per_image(self, count: int, attributes: Sequence[Iterable[str]] | None) -> list[frozenset[str]]:
        """The optional stages each image needs: those of its attributes (default: the config's)."""
        if attributes is not None and len(attributes) != count:
            raise ValueError(f"{count} images but {len(attributes)} attribute choices")
        chosen = [self.config.attributes] * count if attributes is None else [frozenset(a) for a in attributes]
        result = []
        for keys in chosen:
            unknown = keys - derived.ALL_KEYS
            if unknown:
                raise ValueError(f"unknown derived attribute(s): {', '.join(sorted(unknown))}")
            result.append(frozenset(derived.stages_for(keys)) & frozenset(OPTIONAL_STAGES))
        return result

    def analyze_batch(
        self,
        images: Sequence[np.ndarray],
        timestamps: Sequence[float | None] | None = None,
        attributes: Sequence[Iterable[str]] | None = None,
    ) -> list[FrameAnalysis]:
        """Analyse several images; the ONNX attribute stages run once over all their faces. `attributes` gives
        each image its own choice of derived attributes (consent.derived keys; the core ones always): a stage
        runs only over the faces of images that need it, and not at all when none does."""
        config = self.config
        if timestamps is not None and len(timestamps) != len(images):
            raise ValueError(f"{len(images)} images but {len(timestamps)} timestamps")
        stages = self._stages_per_image(len(images), attributes)
        started = time.perf_counter()
        originals = [as_rgb_uint8(image, max_input_pixels=config.max_input_pixels) for image in images]
        prepared = [limit_size(image, config.max_image_side) for image in originals]
        analysed = [image for image, _ in prepared]
        runtime = self.runtime
        timings: dict[str, float] = {}

        candidates = self._detect(analysed, stages, runtime, timings)
        # Expression needs only the detector's keypoints, so it runs on the worker thread while
        # this one drives the landmarker (both native libraries release the GIL). Age and gender
        # need the landmarks: each chunk of landmarked faces is queued behind it, so in a batch
        # they run while the landmarker works on the next chunk.
        pending = [runtime.worker.submit(self._detector_chip_stages, candidates, analysed, runtime)]
        step = self.config.landmark_chunk or (self.config.max_batch if runtime.on_gpu else 8)
        chunks = [candidates[start : start + step] for start in range(0, len(candidates), step)] or [[]]
        try:
            for chunk in chunks[:-1]:
                self._landmark(chunk, analysed, runtime, timings)
                pending.append(runtime.worker.submit(self._age_gender_stage, chunk, analysed, runtime))
            # Nothing is left to overlap the last chunk with: run it here, without a thread hand-off.
            self._landmark(chunks[-1], analysed, runtime, timings)
            last = self._age_gender_stage(chunks[-1], analysed, runtime)
        finally:
            results_of = [future.result() for future in pending]
        outputs, grey_chips, chip_timings = results_of[0]
        timings.update(chip_timings)
        parts = [*results_of[1:], last]
        for key in ("age", "gender"):
            outputs[key] = [row for part in parts for row in part[0][key]]
            spent = [part[1][key] for part in parts if key in part[1]]
            if spent:  # absent when no image asked for the stage: it did not run
                timings[key] = sum(spent)
        faces = [
            (candidate.frame, self._face(candidate, row, grey_chips, outputs))
            for row, candidate in enumerate(candidates)
        ]
        timings["total"] = (time.perf_counter() - started) * 1000.0

        results = []
        for index, (original, (_, scale)) in enumerate(zip(originals, prepared, strict=True)):
            own = [self._in_original_space(face, scale) for frame, face in faces if frame == index]
            own.sort(key=lambda face: face.box.width * face.box.height, reverse=True)
            results.append(
                FrameAnalysis(
                    width=int(original.shape[1]),
                    height=int(original.shape[0]),
                    timestamp=None if timestamps is None else timestamps[index],
                    faces=tuple(own),
                    models=self._models_for(stages[index]),
                    analysis_scale=scale,
                    timings_ms=dict(timings),
                )
            )
        return results

    def _models_for(self, stages: frozenset[str]) -> tuple[ModelInfo, ...]:
        """The models that ran for an image that asked for these optional stages."""
        return tuple(m for m in self.models if m.key not in OPTIONAL_STAGES or m.key in stages)

    # -- stages -------------------------------------------------------------------------------

    def _detect(
        self, images: list[np.ndarray], stages: list[frozenset[str]], runtime: Runtime, timings: dict[str, float]
    ) -> list[_Candidate]:
        """YuNet on each image at a reduced size; on GPU same-sized inputs share one run."""
        config = self.config
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float]]] = {}
        for index, image in enumerate(images):
            height, width = image.shape[:2]
            scale = analysis.yunet_input_scale(width, height, config)
            if scale < 1.0:
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            else:
                small = image
            # YuNet's strides need sides that are multiples of 32; pad bottom/right with black.
            pad_h, pad_w = -small.shape[0] % 32, -small.shape[1] % 32
            if pad_h or pad_w:
                small = cv2.copyMakeBorder(small, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
            groups.setdefault(small.shape[:2], []).append((index, small, scale))

        step = config.detector_rows or (8 if runtime.on_gpu else 1)
        pad = self._pads_rows(runtime)
        candidates: list[_Candidate] = []
        spent = 0.0
        for (padded_h, padded_w), members in groups.items():
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                # YuNet was trained on BGR input in 0-255.
                blob = cv2.dnn.blobFromImages([small for _, small, _ in chunk], swapRB=True)
                if pad:
                    blob = _padded(blob, step)
                began = time.perf_counter()
                outputs = runtime.detector.run(None, {"input": blob})
                spent += time.perf_counter() - began
                for position, (index, _, scale) in enumerate(chunk):
                    boxes, scores, points = analysis.decode_yunet(outputs, position, padded_w, padded_h, config)
                    for box, score, keypoints in zip(boxes, scores, points, strict=True):
                        candidates.append(
                            _Candidate(frame=index, stages=stages[index], box=box / scale, score=float(score),
                                       keypoints=keypoints / scale)
                        )
        timings["detector"] = spent * 1000.0
        return candidates

    def _landmark(
        self,
        candidates: list[_Candidate],
        images: list[np.ndarray],
        runtime: Runtime,
        timings: dict[str, float],
    ) -> None:
        """MediaPipe's landmarker on a square crop around each detected face (CPU, one by one)."""
        import mediapipe as mp

        config = self.config
        size = config.crop_size
        spent = 0.0
        for candidate in candidates:
            x, y, w, h = candidate.box
            centre = (float(x + w / 2), float(y + h / 2))
            side = float(max(w, h)) * config.crop_scale
            to_crop = similarity_to_square(centre, side, 0.0, size)
            crop = cv2.warpAffine(
                images[candidate.frame], to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            began = time.perf_counter()
            result = runtime.landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
            spent += time.perf_counter() - began
            if not result.face_landmarks:
                continue
            points = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float64) * size
            back = invert_affine(to_crop)
            xy = points[:, :2] @ back[:, :2].T + back[:, 2]
            # z is in crop-pixel units like x; bring it to image pixels with the same scale.
            candidate.landmarks = np.column_stack([xy, points[:, 2] * (side / size)])
            candidate.blendshapes = {c.category_name: float(c.score) for c in result.face_blendshapes[0]}
            candidate.matrix = np.asarray(result.facial_transformation_matrixes[0], dtype=np.float64)
        timings["landmarker"] = timings.get("landmarker", 0.0) + spent * 1000.0

    def _detector_chip_stages(
        self, candidates: list[_Candidate], images: list[np.ndarray], runtime: Runtime
    ) -> tuple[dict[str, Any], list[np.ndarray], dict[str, float]]:
        """Expression (for the faces that asked for it, and embedding) from chips placed by the detector's
        keypoints, all faces at once; the grey chips serve the quality gate of every face."""
        count = len(candidates)
        fer_input = np.empty((count, 1, 64, 64), dtype=np.float32)
        embed_input = np.empty((count, 3, 112, 112), dtype=np.float32) if runtime.embedder else None
        grey_chips = []
        for row, candidate in enumerate(candidates):
            image = images[candidate.frame]
            matrix = analysis.eye_chip_matrix(candidate.keypoints[:2], 64, EXPRESSION_CHIP_PADDING)
            grey = cv2.cvtColor(warp_chip(image, matrix, 64), cv2.COLOR_RGB2GRAY)
            grey_chips.append(grey)
            # fer's preprocessing: grey in [-1, 1].
            fer_input[row, 0] = grey * np.float32(2.0 / 255.0) - np.float32(1.0)
            if embed_input is not None:
                # OpenCV's FaceRecognizerSF.alignCrop: YuNet's 5 points onto the ArcFace template.
                matrix = estimate_similarity(candidate.keypoints.astype(np.float64), _SFACE_TEMPLATE)
                embed_input[row] = warp_chip(image, matrix, 112).transpose(2, 0, 1)
        outputs: dict[str, Any] = {}
        timings: dict[str, float] = {}
        self._run_wanted(runtime, "expression", fer_input, candidates, outputs, timings)
        if embed_input is not None:
            self._run_batched(runtime, "embedder", embed_input, outputs, timings)
        return outputs, grey_chips, timings

    def _age_gender_stage(
        self, candidates: list[_Candidate], images: list[np.ndarray], runtime: Runtime
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """Age and gender over landmarked faces that asked for them, on dlib-style chips, one run per model."""
        count = len(candidates)
        age_input = np.zeros((count, 3, 64, 64), dtype=np.float32)
        gender_input = np.zeros((count, 3, 32, 32), dtype=np.float32)
        for row, candidate in enumerate(candidates):
            if candidate.landmarks is None or not candidate.stages & _AGE_GENDER_STAGES:
                continue  # withheld or not asked for; the zero rows only keep the batch aligned
            age_chip = warp_chip(images[candidate.frame], analysis.dlib_chip_matrix(candidate.landmarks, 64), 64)
            age_input[row] = ((age_chip - _AGE_GENDER_MEANS) * np.float32(1 / 256.0)).transpose(2, 0, 1)
            # dlib extracts the 32 px chip separately with the same placement; area-averaging the
            # 64 px one is that up to resampling.
            gender_chip = cv2.resize(age_chip, (32, 32), interpolation=cv2.INTER_AREA)
            gender_input[row] = ((gender_chip - _AGE_GENDER_MEANS) * np.float32(1 / 256.0)).transpose(2, 0, 1)
        outputs: dict[str, Any] = {}
        timings: dict[str, float] = {}
        self._run_wanted(runtime, "age", age_input, candidates, outputs, timings)
        self._run_wanted(runtime, "gender", gender_input, candidates, outputs, timings)
        return outputs, timings

    def _run_wanted(
        self,
        runtime: Runtime,
        key: str,
        batch: np.ndarray,
        candidates: list[_Candidate],
        outputs: dict[str, Any],
        timings: dict[str, float],
    ) -> None:
        """Stage `key` over the rows whose image asked for it; outputs[key] is one row or None per candidate.
        No row asking: the session is not run, and timings get no entry for it."""
        wanted = [row for row, candidate in enumerate(candidates) if key in candidate.stages]
        rows: list[np.ndarray | None] = [None] * len(candidates)
        if wanted:
            ran: dict[str, np.ndarray] = {}
            selected = batch if len(wanted) == len(candidates) else batch[wanted]
            self._run_batched(runtime, key, selected, ran, timings)
            for position, row in enumerate(wanted):
                rows[row] = ran[key][position]
        outputs[key] = rows

    def _pads_rows(self, runtime: Runtime) -> bool:
        return runtime.on_gpu if self.config.pad_rows is None else self.config.pad_rows

    def _run_batched(
        self,
        runtime: Runtime,
        key: str,
        batch: np.ndarray,
        outputs: dict[str, np.ndarray],
        timings: dict[str, float],
    ) -> None:
        """One session over a batch, in chunks of max_batch; records the time spent in run()."""
        session = runtime.session_for(key, len(batch))
        name = session.get_inputs()[0].name
        step = self.config.max_batch
        pad = self._pads_rows(runtime)
        began = time.perf_counter()
        rows = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            rows.append(session.run(None, {name: _padded(chunk, step) if pad else chunk})[0][: len(chunk)])
        timings[key] = (time.perf_counter() - began) * 1000.0
        outputs[key] = np.concatenate(rows) if rows else np.zeros((0,), dtype=np.float32)

    def _face(
        self,
        candidate: _Candidate,
        row: int,
        grey_chips: list[np.ndarray],
        outputs: dict[str, Any],
    ) -> FaceAnalysis:
        """Assemble one face's result, withholding what was not asked for, or what quality or confidence does
        not support."""
        config = self.config
        x, y, w, h = (float(v) for v in candidate.box)
        box = BoundingBox(x=x, y=y, width=w, height=h)
        size_px = min(w, h)
        # Fields of stages this face's image did not ask for: never computed, so never returned.
        skipped = {f for stage in OPTIONAL_STAGES if stage not in candidate.stages for f in STAGE_FIELDS[stage]}
        not_requested = [Withheld(attribute=a, reason="not_requested") for a in ATTRIBUTES if a in skipped]
        if candidate.landmarks is None or candidate.matrix is None:
            quality = analysis.quality(grey_chips[row], size_px, candidate.score, None, config)
            withheld = tuple(
                Withheld(attribute=a, reason="no_landmarks") for a in ATTRIBUTES if a not in skipped
            ) + tuple(not_requested)
            return FaceAnalysis(box=box, detection_score=candidate.score, quality=quality, withheld=withheld)

        pose = analysis.head_pose(candidate.matrix)
        quality = analysis.quality(grey_chips[row], size_px, candidate.score, pose, config)
        blendshapes = candidate.blendshapes or {}
        left_open = 1.0 - blendshapes.get("eyeBlinkLeft", 0.0)
        right_open = 1.0 - blendshapes.get("eyeBlinkRight", 0.0)
        closed = 1.0 - config.eye_closed_threshold
        eyes = Eyes(left_openness=left_open, right_openness=right_open, open=min(left_open, right_open) >= closed)
        gaze = analysis.gaze(pose, candidate.landmarks, eyes.open, config)
        fer, ages, genders = outputs["expression"][row], outputs["age"][row], outputs["gender"][row]
        expression = None if fer is None else analysis.expression(fer, self._model_label["expression"])
        age = None if ages is None else analysis.age(ages, AGE_BIN_YEARS, self._model_label["age"])
        gender = None if genders is None else analysis.gender(genders, self._model_label["gender"])
        if "blendshapes" in skipped:
            blendshapes = None  # type: ignore[assignment]

        withheld: list[Withheld] = []
        if not quality.acceptable:
            reason = "quality:" + ",".join(quality.reasons)
            withheld = [Withheld(attribute=a, reason=reason) for a in ATTRIBUTES if a not in skipped]
            gaze = eyes = expression = age = gender = None  # type: ignore[assignment]
            blendshapes = None  # type: ignore[assignment]
        else:
            if expression is not None and expression.confidence < config.min_expression_confidence:
                withheld.append(Withheld("expression", f"confidence {expression.confidence:.2f} below threshold"))
                expression = None
            if gender is not None and gender.confidence < config.min_gender_confidence:
                withheld.append(Withheld("gender", f"confidence {gender.confidence:.2f} below threshold"))
                gender = None
            if age is not None and age.high - age.low > config.max_age_band_years:
                withheld.append(Withheld("age", f"band {age.low:.0f}-{age.high:.0f} too wide"))
                age = None
        withheld += not_requested

        landmarks = None
        if config.return_landmarks:
            landmarks = tuple((float(p[0]), float(p[1]), float(p[2])) for p in candidate.landmarks)
        embedding = None
        if "embedder" in outputs and quality.acceptable:
            vector = outputs["embedder"][row].astype(np.float64)
            vector /= max(float(np.linalg.norm(vector)), 1e-12)
            embedding = tuple(float(v) for v in vector)
        return FaceAnalysis(
            box=box,
            detection_score=candidate.score,
            quality=quality,
            pose=pose,
            gaze=gaze,
            eyes=eyes,
            blendshapes=blendshapes,
            expression=expression,
            age=age,
            gender=gender,
            withheld=tuple(withheld),
            landmarks=landmarks,
            embedding=embedding,
        )

    @staticmethod
    def _in_original_space(face: FaceAnalysis, scale: float) -> FaceAnalysis:
        """Undo the pre-analysis downscale on every coordinate a face carries."""
        if scale == 1.0:
            return face
        inverse = 1.0 / scale
        box = BoundingBox(
            x=face.box.x * inverse,
            y=face.box.y * inverse,
            width=face.box.width * inverse,
            height=face.box.height * inverse,
        )
        quality = replace(face.quality, face_size_px=face.quality.face_size_px * inverse)
        landmarks = None
        if face.landmarks is not None:
            landmarks = tuple((x * inverse, y * inverse, z * inverse) for x, y, z in face.landmarks)
        return replace(face, box=box, quality=quality, landmarks=landmarks)


def _padded(batch: np.ndarray, rows: int) -> np.ndarray:
    """batch with zero rows appended up to `rows` (the models score each row on its own)."""
    if len(batch) >= rows:
        return batch
    return np.concatenate([batch, np.zeros((rows - len(batch), *batch.shape[1:]), dtype=batch.dtype)])

