"""Pure functions from model outputs to derived features; no sessions, no state."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .config import EXPRESSION_LABELS, EngineConfig
from .image import estimate_similarity
from .results import AgeEstimate, Expression, Gaze, GenderEstimate, HeadPose, Quality

YUNET_STRIDES = (8, 16, 32)

# MediaPipe face mesh indices. "right"/"left" are the person's own sides.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_OUTER, LEFT_EYE_INNER = 33, 133, 263, 362
RIGHT_IRIS, LEFT_IRIS = 468, 473
NOSE_BASE = 2

# dlib's 5-point face chip template (get_face_chip_details), in the order of dlib's
# shape_predictor_5 parts: the person's left eye outer and inner corner, right eye outer and
# inner corner, nose base. The age and gender networks were trained on chips placed by it, and
# their output moves by years with a few pixels of misplacement, so these chips are placed from
# the landmarker's points rather than the detector's coarser ones.
_DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
_DLIB_PARTS = [LEFT_EYE_OUTER, LEFT_EYE_INNER, RIGHT_EYE_OUTER, RIGHT_EYE_INNER, NOSE_BASE]
# The same template's eye centres, for chips placed from the detector's eye keypoints.
_DLIB_EYE_CENTRES = np.array([(_DLIB_TEMPLATE[2] + _DLIB_TEMPLATE[3]) / 2, (_DLIB_TEMPLATE[0] + _DLIB_TEMPLATE[1]) / 2])
DLIB_CHIP_PADDING = 0.2

# Iris travel from the eye's centre, as a fraction of eye width, for a 90 degree eye rotation:
# eyeball radius (~12 mm) over eye width (~30 mm).
_IRIS_TRAVEL = 0.4


def yunet_input_scale(width: int, height: int, config: EngineConfig) -> float:
    """Scale at which to run YuNet: small enough to be fast, large enough for min_face_px faces."""
    long_side = max(width, height)
    keep_small_faces = config.detector_face_px / config.min_face_px
    floor = config.detector_min_side / long_side
    ceiling = config.detector_max_side / long_side
    return min(1.0, ceiling, max(keep_small_faces, floor))


def decode_yunet(
    outputs: list[np.ndarray], index: int, padded_w: int, padded_h: int, config: EngineConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h), scores and 5 landmarks of one image of a YuNet batch, after NMS."""
    boxes, scores, points = [], [], []
    for level, stride in enumerate(YUNET_STRIDES):
        cls = outputs[level][index, :, 0]
        obj = outputs[3 + level][index, :, 0]
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(score >= config.detection_threshold)[0]
        if keep.size == 0:
            continue
        cols = padded_w // stride
        rows, columns = np.divmod(keep, cols)
        anchor = np.stack([columns, rows], axis=1).astype(np.float32)
        bbox = outputs[6 + level][index, keep]
        kps = outputs[9 + level][index, keep].reshape(-1, 5, 2)
        centre = (anchor + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:4]) * stride
        boxes.append(np.concatenate([centre - size / 2, size], axis=1))
        scores.append(score[keep])
        points.append((kps + anchor[:, None, :]) * stride)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    all_boxes, all_scores, all_points = np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
    kept = cv2.dnn.NMSBoxes(all_boxes.tolist(), all_scores.tolist(), config.detection_threshold, config.nms_threshold)
    kept = np.asarray(kept, dtype=np.int64).reshape(-1)[: config.max_faces]
    return all_boxes[kept], all_scores[kept], all_points[kept]


def head_pose(matrix: np.ndarray) -> HeadPose:
    """Yaw, pitch, roll in degrees from MediaPipe's facial transformation matrix.

    Conventions, checked on skimage's cameraman (turned towards the image's right, looking down)
    and on rotated astronauts: yaw > 0 means the face turns towards the image's right, pitch > 0
    means chin up, roll > 0 means the face is rotated clockwise on screen.
    """
    rotation = np.asarray(matrix, dtype=np.float64)[:3, :3]
    # Remove the scale MediaPipe folds into the matrix.
    rotation = rotation / np.cbrt(np.linalg.det(rotation))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rotation[2, 0]))))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return HeadPose(yaw=yaw, pitch=-pitch, roll=-roll)


def eye_in_head(landmarks: np.ndarray) -> tuple[float, float]:
    """Eye rotation (yaw > 0 towards image right, pitch > 0 up) in degrees, from iris positions."""
    offsets = []
    for outer, inner, iris in (
        (RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_IRIS),
        (LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_IRIS),
    ):
        a, b, centre = landmarks[outer, :2], landmarks[inner, :2], landmarks[iris, :2]
        # Axis from the image-left corner to the image-right one, so x > 0 is always image right.
        left, right = (a, b) if a[0] <= b[0] else (b, a)
        axis = right - left
        width = float(np.hypot(*axis))
        if width < 1e-6:
            continue
        unit = axis / width
        normal = np.array([unit[1], -unit[0]])  # perpendicular pointing up on screen
        relative = centre - (left + right) / 2
        offsets.append((float(relative @ unit) / width, float(relative @ normal) / width))
    if not offsets:
        return 0.0, 0.0
    horizontal, vertical = np.mean(offsets, axis=0)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, horizontal / _IRIS_TRAVEL))))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, vertical / _IRIS_TRAVEL))))
    return yaw, pitch


def gaze(pose: HeadPose, landmarks: np.ndarray, eyes_open: bool, config: EngineConfig) -> Gaze:
    """Combine head pose and eye-in-head rotation into gaze direction and an attention score."""
    eye_yaw, eye_pitch = eye_in_head(landmarks)
    yaw, pitch = pose.yaw + eye_yaw, pose.pitch + eye_pitch
    deviation_sq = yaw * yaw + pitch * pitch
    score = math.exp(-deviation_sq / (2 * config.attention_sigma_deg**2))
    return Gaze(
        yaw=yaw,
        pitch=pitch,
        attention_score=score,
        looking_at_screen=bool(eyes_open and score >= config.attention_threshold),
    )


def dlib_chip_matrix(landmarks: np.ndarray, size: int, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    """Image -> chip affine from the 478 landmarks, as dlib's get_face_chip_details(size, padding)."""
    template = (padding + _DLIB_TEMPLATE) / (2 * padding + 1) * size
    return estimate_similarity(landmarks[_DLIB_PARTS, :2].astype(np.float64), template)


def eye_chip_matrix(eye_centres: np.ndarray, size: int, padding: float) -> np.ndarray:
    """Image -> chip affine putting two eye centres (image-left first) where dlib chips have them."""
    template = (padding + _DLIB_EYE_CENTRES) / (2 * padding + 1) * size
    return estimate_similarity(np.asarray(eye_centres, dtype=np.float64), template)


def quality(
    grey_chip: np.ndarray,
    face_size_px: float,
    detection_score: float,
    pose: HeadPose | None,
    config: EngineConfig,
) -> Quality:
    """Sharpness, exposure, size and frontalness of one face, and the verdict with its reasons."""
    sharpness = float(cv2.Laplacian(grey_chip, cv2.CV_32F).var())
    brightness = float(grey_chip.mean())
    contrast = float(grey_chip.std())
    reasons: list[str] = []
    if detection_score < config.min_detection_score:
        reasons.append("low_detection_score")
    if face_size_px < config.min_face_size_px:
        reasons.append("face_too_small")
    if sharpness < config.min_sharpness:
        reasons.append("too_blurry")
    if brightness < config.min_brightness:
        reasons.append("too_dark")
    if brightness > config.max_brightness:
        reasons.append("too_bright")
    if contrast < config.min_contrast:
        reasons.append("low_contrast")
    if pose is None:
        frontalness = 0.0
        reasons.append("no_landmarks")
    else:
        frontalness = max(0.0, math.cos(math.radians(pose.yaw)) * math.cos(math.radians(pose.pitch)))
        if abs(pose.yaw) > config.max_abs_yaw or abs(pose.pitch) > config.max_abs_pitch:
            reasons.append("not_frontal")
    return Quality(
        sharpness=sharpness,
        brightness=brightness,
        contrast=contrast,
        face_size_px=face_size_px,
        frontalness=frontalness,
        acceptable=not reasons,
        reasons=tuple(reasons),
    )


def expression(probabilities: np.ndarray, model: str) -> Expression:
    """Seven-class expression result from one row of fer's softmax."""
    values = {label: float(p) for label, p in zip(EXPRESSION_LABELS, probabilities, strict=True)}
    top = max(values, key=values.__getitem__)
    return Expression(probabilities=values, top=top, confidence=values[top], model=model)


def age(probabilities: np.ndarray, weights: np.ndarray, model: str) -> AgeEstimate:
    """Expected age and its 10th-90th percentile band from the 81-bin age distribution."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum()
    cumulative = np.cumsum(p)
    low = float(weights[min(int(np.searchsorted(cumulative, 0.1)), len(weights) - 1)])
    high = float(weights[min(int(np.searchsorted(cumulative, 0.9)), len(weights) - 1)])
    return AgeEstimate(years=float(p @ weights), low=low, high=high, model=model)


def gender(probabilities: np.ndarray, model: str) -> GenderEstimate:
    """Label and confidence from the gender model's (female, male) probabilities."""
    index = int(np.argmax(probabilities))
    return GenderEstimate(label=("female", "male")[index], confidence=float(probabilities[index]), model=model)
