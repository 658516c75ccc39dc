"""The GPU path: batching changes no result, and the ONNX stages on CUDA give what they give on the CPU.

The batching checks run on every machine (batched detector runs and rows padded to a fixed count are the
GPU's defaults, switched on here by config). The CUDA checks need onnxruntime-gpu and a GPU; elsewhere they
skip, and the README says where they last ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import onnxruntime
import pytest

from faceanalysis.engine import Engine, EngineConfig, FrameAnalysis

from .conftest import make_rotated, make_scaled, make_textured_background

pytestmark = pytest.mark.slow

CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
needs_cuda = pytest.mark.skipif(not CUDA, reason="onnxruntime offers no CUDA on this machine")

# CUDA's kernels (TF32 convolutions among them) round differently from the CPU's: coordinates and
# probabilities agree closely, never bit for bit.
BOX_TOLERANCE_PX = 2.0
PROBABILITY_TOLERANCE = 0.03
AGE_TOLERANCE_YEARS = 2.0


@pytest.fixture(scope="module")
def frames(astronaut: np.ndarray) -> list[np.ndarray]:
    """A worker's batch across sessions: sizes mixed, one face, three faces, none, and repeats."""
    canvas = np.full((480, 640, 3), 40, dtype=np.uint8)
    canvas[:, 80:560] = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)
    group = make_textured_background(600, 1200)
    for left, factor in ((40, 0.9), (460, 0.7), (840, 0.6)):
        face = make_scaled(astronaut[20:300, 120:340], factor)
        group[60 : 60 + face.shape[0], left : left + face.shape[1]] = face
    varied = [
        canvas,
        np.ascontiguousarray(canvas[:, ::-1]),
        make_scaled(canvas, 0.5),
        astronaut,
        make_rotated(astronaut, 15),
        group,
        make_textured_background(480, 640),
    ]
    return [*varied, canvas, canvas, group]


def assert_same_results(expected: list[FrameAnalysis], actual: list[FrameAnalysis]) -> None:
    assert [len(e.faces) for e in expected] == [len(a.faces) for a in actual]
    for frame_expected, frame_actual in zip(expected, actual, strict=True):
        for want, got in zip(frame_expected.faces, frame_actual.faces, strict=True):
            for side in ("x", "y", "width", "height"):
                assert abs(getattr(want.box, side) - getattr(got.box, side)) <= BOX_TOLERANCE_PX, side
            assert want.quality.acceptable == got.quality.acceptable
            assert (want.expression is None) == (got.expression is None)
            if want.expression is not None and got.expression is not None:
                assert want.expression.top == got.expression.top
                for label, probability in want.expression.probabilities.items():
                    assert abs(probability - got.expression.probabilities[label]) <= PROBABILITY_TOLERANCE
            assert (want.age is None) == (got.age is None)
            if want.age is not None and got.age is not None:
                assert abs(want.age.years - got.age.years) <= AGE_TOLERANCE_YEARS
            assert (want.gender and want.gender.label) == (got.gender and got.gender.label)


@pytest.fixture(scope="module")
def cpu_engine(models_dir) -> Iterator[Engine]:
    built = Engine(EngineConfig(models_dir=models_dir, use_gpu=False))
    yield built
    built.close()


def test_runs_batched_and_padded_to_fixed_rows_as_on_gpu_find_what_one_run_per_frame_finds(
    models_dir, cpu_engine, frames
) -> None:
    batched = Engine(EngineConfig(models_dir=models_dir, use_gpu=False, detector_rows=4, pad_rows=True, max_batch=4))
    try:
        one_by_one = [cpu_engine.analyze(frame) for frame in frames]
        assert_same_results(one_by_one, batched.analyze_batch(frames))
    finally:
        batched.close()
    assert [len(result.faces) for result in one_by_one] == [1, 1, 1, 1, 1, 3, 0, 1, 1, 3]


@needs_cuda
def test_the_engine_runs_its_onnx_stages_on_cuda_when_offered(models_dir) -> None:
    engine = Engine(EngineConfig(models_dir=models_dir))
    try:
        engine.warm_up()
        assert engine.runtime.on_gpu
        assert engine.runtime.detector.get_providers()[0] == "CUDAExecutionProvider"
        options = engine.runtime.expression.get_provider_options()["CUDAExecutionProvider"]
        assert options["cudnn_conv_algo_search"] == "HEURISTIC"
    finally:
        engine.close()


@needs_cuda
def test_cuda_gives_the_cpu_results_one_by_one_and_in_one_batch(models_dir, cpu_engine, frames) -> None:
    engine = Engine(EngineConfig(models_dir=models_dir))
    try:
        on_cpu = cpu_engine.analyze_batch(frames)
        assert_same_results(on_cpu, [engine.analyze(frame) for frame in frames])
        assert_same_results(on_cpu, engine.analyze_batch(frames))
        assert_same_results(on_cpu, engine.analyze_batch(frames * 8)[: len(frames)])  # beyond one max_batch run
    finally:
        engine.close()
