"""Engine fixtures: models installed once (idempotent installer), one engine per session, test images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from faceanalysis.engine import Engine, EngineConfig
from faceanalysis.engine.install import install_models
from faceanalysis.engine.models import resolve_models_dir, verify_models

# Where the astronaut's face sits in skimage.data.astronaut() (x, y, width, height), measured once.
ASTRONAUT_FACE = (179, 62, 90, 112)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The default models directory, installed there if anything is missing (works from a fresh clone)."""
    directory = resolve_models_dir()
    if verify_models(directory):
        install_models(directory)
    assert verify_models(directory) == []
    return directory


@pytest.fixture(scope="session")
def engine(models_dir: Path) -> Iterator[Engine]:
    """One engine for the whole session: creating sessions is the slow part."""
    built = Engine(EngineConfig(models_dir=models_dir))
    yield built
    built.close()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut: one smiling face looking at the camera, 512x512 RGB."""
    return data.astronaut()


def make_scaled(image: np.ndarray, factor: float) -> np.ndarray:
    """image resized by factor, area-averaged when shrinking."""
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)


def make_rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """image rotated counter-clockwise about its centre, same size, black corners."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height))


def make_lfw_canvas(crop: np.ndarray, upscale: int = 4, pad: int = 50) -> np.ndarray:
    """A 25x25 LFW crop (floats in [0, 1]) upscaled and padded onto a grey RGB canvas."""
    grey = cv2.resize((crop * 255).astype(np.uint8), None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))


def make_textured_background(height: int, width: int, texture: str = "brick") -> np.ndarray:
    """An RGB background tiled from a scikit-image texture."""
    tile = getattr(data, texture)()
    if tile.ndim == 2:
        tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2RGB)
    reps = (height // tile.shape[0] + 1, width // tile.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:height, :width])


def make_astronaut_face(astronaut: np.ndarray, face_px: int) -> np.ndarray:
    """The astronaut's head and shoulders region, scaled so her face is face_px wide."""
    region = astronaut[20:235, 135:315]
    return make_scaled(region, face_px / ASTRONAUT_FACE[2])
