"""Input checking and pixel geometry: pure functions over numpy arrays."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .errors import InvalidImageError


def as_rgb_uint8(image: object, *, max_input_pixels: int) -> np.ndarray:
    """Return an HxWx3 uint8 C-contiguous RGB view or copy of image, or raise InvalidImageError.

    Accepts HxW (grey), HxWx1, HxWx3 (RGB) and HxWx4 (RGBA, alpha dropped), as uint8, uint16
    (scaled) or floats in [0, 1]. Everything is checked here so that no malformed buffer ever
    reaches OpenCV, onnxruntime or MediaPipe.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise InvalidImageError(f"expected HxW or HxWxC, got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"expected 1, 3 or 4 channels, got {image.shape[2]}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise InvalidImageError(f"empty image of shape {image.shape}")
    if height * width > max_input_pixels:
        raise InvalidImageError(f"{width}x{height} exceeds the {max_input_pixels}-pixel limit")

    if image.dtype == np.uint8:
        pixels = image
    elif image.dtype == np.uint16:
        pixels = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64, np.float16):
        if not np.isfinite(image).all():
            raise InvalidImageError("float image contains NaN or infinity")
        if image.min() < 0.0 or image.max() > 1.0:
            raise InvalidImageError("float images must hold values in [0, 1]")
        pixels = np.rint(image.astype(np.float32) * 255.0).astype(np.uint8)
    else:
        raise InvalidImageError(f"unsupported dtype {image.dtype}; use uint8 RGB")

    if pixels.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_GRAY2RGB)
    channels = pixels.shape[2]
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(pixels[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return np.ascontiguousarray(pixels[:, :, :3])
    return np.ascontiguousarray(pixels)


def limit_size(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most max_side; returns the image and the scale applied."""
    long_side = max(image.shape[:2])
    if long_side <= max_side:
        return image, 1.0
    scale = max_side / long_side
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def similarity_to_square(center: tuple[float, float], side: float, angle_deg: float, size: int) -> np.ndarray:
    """2x3 affine mapping image pixels to a size x size square of the given side, rotated by angle."""
    scale = size / side
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    # Rotate about the centre, then move the centre to the middle of the output square.
    return np.array(
        [
            [cos, sin, size / 2 - cos * center[0] - sin * center[1]],
            [-sin, cos, size / 2 + sin * center[0] - cos * center[1]],
        ],
        dtype=np.float64,
    )


def warp_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample a size x size chip through matrix, anti-aliased when it shrinks a lot."""
    shrink = 1.0 / math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    # Bilinear warping aliases when it skips pixels: warp at a power of two above the target and
    # area-average down, which is what dlib's chip extraction achieves with its pyramid.
    factor = 1
    while factor * 2 <= shrink and factor < 8:
        factor *= 2
    if factor == 1:
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    big = cv2.warpAffine(
        image, matrix * factor, (size * factor, size * factor), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine transform."""
    return cv2.invertAffineTransform(matrix)


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity transform taking source points onto target points (Umeyama)."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    covariance = dst.T @ src / len(source)
    u, s, vt = np.linalg.svd(covariance)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / src.var(axis=0).sum())
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])
