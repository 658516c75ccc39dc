"""Latency and throughput of the face analysis engine on this machine.

python bench/engine_bench.py [--runs N] [--cpu] [--json]

Prints p50/p95/p99 per stage and for the whole pipeline on one 640x480 frame with one face,
the pipeline's cost over the sum of the raw model inference times measured in the same run,
the ONNX stages' throughput with batches of 32 faces against one at a time, and one frame of an
attention-only campaign (no expression, age or gender stage) against one deriving everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceanalysis.engine import Engine, EngineConfig  # noqa: E402
from faceanalysis.engine.install import install_models  # noqa: E402
from faceanalysis.engine.models import verify_models  # noqa: E402
from faceanalysis.engine.runtime import available_cpus  # noqa: E402


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of a list of milliseconds."""
    values = np.asarray(samples_ms)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
    }


def timed(call: Callable[[], object], runs: int, warmup: int = 10) -> list[float]:
    """Wall-clock milliseconds of runs calls after warmup calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000.0)
    return samples


def test_frame() -> np.ndarray:
    """A 640x480 RGB frame with one real face (the scikit-image astronaut, letterboxed)."""
    from skimage import data

    face = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 40, dtype=np.uint8)
    frame[:, 80:560] = face
    return frame


def raw_model_calls(engine: Engine, frame: np.ndarray) -> dict[str, Callable[[], object]]:
    """Each model alone on inputs shaped as the pipeline gives them: the floor the pipeline is compared to."""
    import mediapipe as mp

    from faceanalysis.engine import analysis

    runtime = engine.runtime
    config = engine.config
    scale = analysis.yunet_input_scale(frame.shape[1], frame.shape[0], config)
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, 0, -small.shape[0] % 32, 0, -small.shape[1] % 32, cv2.BORDER_CONSTANT)
    blob = cv2.dnn.blobFromImage(small, swapRB=True)
    face = engine.analyze(frame).faces[0].box
    side = max(face.width, face.height) * config.crop_scale
    crop = cv2.getRectSubPix(frame, (int(side), int(side)), (face.x + face.width / 2, face.y + face.height / 2))
    crop = np.ascontiguousarray(cv2.resize(crop, (config.crop_size, config.crop_size)))
    rng = np.random.default_rng(0)
    fer = rng.uniform(-1, 1, (1, 1, 64, 64)).astype(np.float32)
    age = rng.uniform(-0.5, 0.5, (1, 3, 64, 64)).astype(np.float32)
    gender = rng.uniform(-0.5, 0.5, (1, 3, 32, 32)).astype(np.float32)
    return {
        "detector": lambda: runtime.detector.run(None, {"input": blob}),
        "landmarker": lambda: runtime.landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop)),
        "expression": lambda: runtime.expression.run(None, {"input": fer}),
        "age": lambda: runtime.age.run(None, {"images": age}),
        "gender": lambda: runtime.gender.run(None, {"images": gender}),
    }


def onnx_batch_ratio(engine: Engine, runs: int, batch: int = 32) -> dict[str, dict[str, float]]:
    """Faces per second of each ONNX attribute stage, and of all three, at batch 32 over batch 1."""
    runtime = engine.runtime
    rng = np.random.default_rng(1)
    stages = {
        "expression": ("input", (1, 64, 64), 1.0),
        "age": ("images", (3, 64, 64), 0.5),
        "gender": ("images", (3, 32, 32), 0.5),
    }
    report: dict[str, dict[str, float]] = {}
    totals = {"single_ms": 0.0, "batch_ms": 0.0}
    for name, (input_name, shape, spread) in stages.items():
        # The sessions analyze_batch itself picks for one face and for a batch of them.
        session, batch_session = runtime.session_for(name, 1), runtime.session_for(name, batch)
        one = rng.uniform(-spread, spread, (1, *shape)).astype(np.float32)
        many = rng.uniform(-spread, spread, (batch, *shape)).astype(np.float32)
        # Alternate the two so that load from other tenants hits both alike.
        single_ms, batch_ms = [], []
        for _ in range(max(10, runs // 8)):
            single_ms.extend(timed(lambda: session.run(None, {input_name: one}), 8, warmup=1))  # noqa: B023
            batch_ms.extend(timed(lambda: batch_session.run(None, {input_name: many}), 1, warmup=0))  # noqa: B023
        single, batched = float(np.median(single_ms)), float(np.median(batch_ms))
        totals["single_ms"] += single
        totals["batch_ms"] += batched
        report[name] = {
            "single_faces_per_s": 1000.0 / single,
            "batch32_faces_per_s": batch * 1000.0 / batched,
            "ratio": single * batch / batched,
        }
    report["all_three"] = {
        "single_faces_per_s": 1000.0 / totals["single_ms"],
        "batch32_faces_per_s": batch * 1000.0 / totals["batch_ms"],
        "ratio": totals["single_ms"] * batch / totals["batch_ms"],
    }
    return report


def attention_only_vs_all(engine: Engine, frame: np.ndarray, runs: int) -> dict[str, float]:
    """Per-frame p50 with every attribute and with the core (attention) attributes only, measured alternately
    in one loop so that a noisy neighbour slows both alike; the ratio is all / attention-only."""
    everything: list[float] = []
    attention: list[float] = []
    for index in range(runs + 10):
        all_ms = timed(lambda: engine.analyze(frame), 1, warmup=0)[0]
        attention_ms = timed(lambda: engine.analyze(frame, attributes=()), 1, warmup=0)[0]
        if index >= 10:
            everything.append(all_ms)
            attention.append(attention_ms)
    all_p50, attention_p50 = float(np.median(everything)), float(np.median(attention))
    return {"all_p50_ms": all_p50, "attention_only_p50_ms": attention_p50, "ratio": all_p50 / attention_p50}


def main() -> int:
    """Run the benchmark and print a report (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--cpu", action="store_true", help="keep the ONNX stages off the GPU (a baseline there)")
    args = parser.parse_args()

    if verify_models():
        install_models(log=lambda _: None)
    load_before = os.getloadavg()
    engine = Engine(EngineConfig(use_gpu=not args.cpu))
    frame = test_frame()
    engine.warm_up()
    assert len(engine.analyze(frame).faces) == 1, "the benchmark frame must hold exactly one face"  # noqa: S101

    # Pipeline and raw models alternate within one loop, so that a noisy neighbour on a shared
    # machine slows both alike and their ratio stays meaningful.
    raw_calls = raw_model_calls(engine, frame)
    stage_samples: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {name: [] for name in raw_calls}
    whole: list[float] = []
    for index in range(args.runs + 10):
        began = time.perf_counter()
        result = engine.analyze(frame)
        elapsed = (time.perf_counter() - began) * 1000.0
        raw_times = {}
        for name, call in raw_calls.items():
            started = time.perf_counter()
            call()
            raw_times[name] = (time.perf_counter() - started) * 1000.0
        if index < 10:
            continue
        whole.append(elapsed)
        for stage, value in result.timings_ms.items():
            stage_samples.setdefault(stage, []).append(value)
        for name, value in raw_times.items():
            raw[name].append(value)

    raw_sum_p50 = sum(float(np.median(v)) for v in raw.values())
    whole_stats = percentiles(whole)

    batch_frames = [frame] * 32
    single_frames: list[float] = []
    batch_call: list[float] = []
    for _ in range(max(5, args.runs // 40)):
        single_frames.extend(timed(lambda: [engine.analyze(f) for f in batch_frames], 1, warmup=0))
        batch_call.extend(timed(lambda: engine.analyze_batch(batch_frames), 1, warmup=0))

    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus_available": available_cpus(),
            "cpu_count": os.cpu_count(),
            "providers": engine.runtime.providers,
            # Batches of batch_min_rows+ faces run on sessions with this many threads (single faces on one).
            "batch_session_threads": (
                engine.config.batch_intra_op_threads or available_cpus() if engine.runtime.batch_sessions else 1
            ),
            "python": platform.python_version(),
            # Other tenants' load on a shared machine; the ratios below are measured side by side.
            "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "frame": "640x480, one face ~130 px wide",
        "runs": args.runs,
        "pipeline_ms": whole_stats,
        "pipeline_fps": 1000.0 / whole_stats["p50"],
        "stages_in_pipeline_ms": {k: percentiles(v) for k, v in stage_samples.items()},
        "raw_models_alone_ms": {k: percentiles(v) for k, v in raw.items()},
        "raw_sum_p50_ms": raw_sum_p50,
        "overhead_ratio": whole_stats["p50"] / raw_sum_p50,
        "onnx_stages_batch32_vs_single": onnx_batch_ratio(engine, args.runs),
        "pipeline_32_frames": {
            "one_by_one_fps": 32 * 1000.0 / float(np.median(single_frames)),
            "analyze_batch_fps": 32 * 1000.0 / float(np.median(batch_call)),
        },
        "attention_only_vs_all_per_frame": attention_only_vs_all(engine, frame, args.runs),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}")
    print(f"frame: {report['frame']}, {args.runs} runs")
    print(f"{'stage':<22}{'p50':>9}{'p95':>9}{'p99':>9}   (ms)")
    for name, stats in report["stages_in_pipeline_ms"].items():
        print(f"{'  ' + name:<22}{stats['p50']:>9.2f}{stats['p95']:>9.2f}{stats['p99']:>9.2f}")
    print("raw models alone:")
    for name, stats in report["raw_models_alone_ms"].items():
        print(f"{'  ' + name:<22}{stats['p50']:>9.2f}{stats['p95']:>9.2f}{stats['p99']:>9.2f}")
    print(
        f"whole pipeline       {whole_stats['p50']:>9.2f}{whole_stats['p95']:>9.2f}{whole_stats['p99']:>9.2f}"
        f"   -> {report['pipeline_fps']:.1f} frames/s"
    )
    print(
        f"overhead: pipeline p50 / sum of raw model p50s = {whole_stats['p50']:.2f} / {raw_sum_p50:.2f} "
        f"= {report['overhead_ratio']:.2f}x"
    )
    for name, batch in report["onnx_stages_batch32_vs_single"].items():
        print(
            f"ONNX {name:<11} {batch['single_faces_per_s']:>6.0f} faces/s one at a time, "
            f"{batch['batch32_faces_per_s']:>6.0f} faces/s in batches of 32 -> {batch['ratio']:.2f}x"
        )
    frames = report["pipeline_32_frames"]
    print(
        f"32 frames: {frames['one_by_one_fps']:.1f} frames/s one by one, "
        f"{frames['analyze_batch_fps']:.1f} frames/s through analyze_batch "
        f"-> {frames['analyze_batch_fps'] / frames['one_by_one_fps']:.2f}x"
    )
    choice = report["attention_only_vs_all_per_frame"]
    print(
        f"one frame: {choice['all_p50_ms']:.2f} ms with every attribute, {choice['attention_only_p50_ms']:.2f} ms "
        f"attention only -> {choice['ratio']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
