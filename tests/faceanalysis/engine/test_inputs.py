"""Bad and unusual inputs are handled or refused with InvalidImageError, never a native crash."""

from __future__ import annotations

import numpy as np
import pytest

from faceanalysis.engine import Engine, EngineConfig, InvalidImageError
from faceanalysis.engine.image import as_rgb_uint8

from .conftest import ASTRONAUT_FACE, make_scaled


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 0, 3), np.uint8), "empty"),
        (np.zeros((64, 64, 2), np.uint8), "channels"),
        (np.zeros((64, 64, 5), np.uint8), "channels"),
        (np.zeros((2, 64, 64, 3), np.uint8), "shape"),
        (np.zeros(64, np.uint8), "shape"),
        (np.zeros((64, 64, 3), np.int64), "dtype"),
        (np.zeros((64, 64, 3), bool), "dtype"),
        (np.zeros((64, 64, 3), np.complex64), "dtype"),
        (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
        (np.full((64, 64, 3), 200.0, np.float32), "[0, 1]"),
        ([[1, 2, 3]], "numpy array"),
        (b"\xff\xd8\xff", "numpy array"),
    ],
)
def test_malformed_input_raises_invalid_image_error(value: object, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        as_rgb_uint8(value, max_input_pixels=10**8)


def test_invalid_image_error_is_a_value_error() -> None:
    assert issubclass(InvalidImageError, ValueError)


def test_too_many_pixels_is_refused_before_any_work() -> None:
    with pytest.raises(InvalidImageError, match="pixel limit"):
        as_rgb_uint8(np.zeros((3000, 4000, 3), np.uint8), max_input_pixels=10_000_000)


def test_accepted_layouts_become_contiguous_rgb_uint8() -> None:
    grey = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    for value in (
        grey.astype(np.uint8),
        grey[:, :, None].astype(np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((64, 64, 3), np.float32),
        grey,
        np.zeros((64, 128, 3), np.uint8)[:, ::2],
    ):
        out = as_rgb_uint8(value, max_input_pixels=10**8)
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]


@pytest.mark.slow
def test_engine_rejects_bad_input_with_a_clear_error(engine: Engine) -> None:
    with pytest.raises(InvalidImageError):
        engine.analyze(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(InvalidImageError):
        engine.analyze_batch([np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.int32)])
    with pytest.raises(ValueError, match="timestamps"):
        engine.analyze_batch([np.zeros((10, 10, 3), np.uint8)], timestamps=[1.0, 2.0])


@pytest.mark.slow
def test_tiny_and_extreme_aspect_images_are_analysed_without_error(engine: Engine) -> None:
    for shape in ((1, 1, 3), (3, 7, 3), (31, 33, 3), (1, 20000, 3), (20000, 2, 3)):
        assert engine.analyze(np.full(shape, 128, np.uint8)).faces == ()


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["grey", "grey_1_channel", "rgba", "float"])
def test_grey_rgba_and_float_astronaut_still_has_one_face(engine: Engine, astronaut: np.ndarray, layout: str) -> None:
    grey = (astronaut @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    image = {
        "grey": lambda: grey,
        "grey_1_channel": lambda: grey[:, :, None],
        "rgba": lambda: np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)]),
        "float": lambda: astronaut.astype(np.float32) / 255.0,
    }[layout]()
    faces = engine.analyze(image).faces
    assert len(faces) == 1
    assert abs(faces[0].box.x - ASTRONAUT_FACE[0]) < 12


@pytest.mark.slow
def test_huge_image_is_downscaled_and_coordinates_stay_in_its_own_space(engine: Engine, astronaut: np.ndarray) -> None:
    factor = 8  # 4096 x 4096, above max_image_side
    result = engine.analyze(make_scaled(astronaut, factor))
    assert result.analysis_scale < 1.0
    assert (result.width, result.height) == (4096, 4096)
    assert len(result.faces) == 1
    box = result.faces[0].box
    x, y, w, _ = ASTRONAUT_FACE
    assert box.x == pytest.approx(x * factor, rel=0.08)
    assert box.y == pytest.approx(y * factor, rel=0.12)
    assert box.width == pytest.approx(w * factor, rel=0.12)
    assert result.faces[0].quality.face_size_px > 500


@pytest.mark.slow
def test_landmarks_and_embedding_only_when_asked(models_dir: object, astronaut: np.ndarray) -> None:
    engine = Engine(EngineConfig(models_dir=models_dir, return_landmarks=True, compute_embedding=True))  # type: ignore[arg-type]
    try:
        face = engine.analyze(astronaut).faces[0]
        mirrored = engine.analyze(astronaut[:, ::-1].copy()).faces[0]
        scaled = engine.analyze(make_scaled(astronaut, 0.6)).faces[0]
    finally:
        engine.close()
    assert face.landmarks is not None and len(face.landmarks) == 478
    assert face.embedding is not None and len(face.embedding) == 128
    assert "embedder" in {m.key for m in engine.models}
    assert mirrored.embedding is not None and scaled.embedding is not None
    # Same person: SFace's cosine similarity is high (MODELS.md saw 0.81-0.97 for same-person pairs).
    assert float(np.dot(face.embedding, scaled.embedding)) > 0.7
