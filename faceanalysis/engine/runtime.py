"""Native inference sessions: created lazily, once per process, from verified bytes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .config import EngineConfig
from .errors import ModelsNotInstalledError
from .models import ModelSpec, load_manifest


def available_cpus() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# Batches change size with every call (the faces a worker gathered); cuDNN's exhaustive search would
# benchmark every convolution again for each new shape, which measured 40x slower than one face at a time.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}


def onnx_providers(config: EngineConfig) -> list[str]:
    """CUDA first when onnxruntime offers it and the config allows it, CPU always as fallback."""
    import onnxruntime

    if config.use_gpu and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _with_options(providers: list[str]) -> list[Any]:
    return [(name, CUDA_OPTIONS) if name == "CUDAExecutionProvider" else name for name in providers]


def _read_verified(spec: ModelSpec, config: EngineConfig) -> bytes:
    """The model file's bytes, checked against the manifest when the config asks for it."""
    path = config.resolved_models_dir() / spec.file
    if not path.is_file():
        raise ModelsNotInstalledError([f"{spec.key}: {path} is missing"])
    payload = path.read_bytes()
    if config.verify_hashes:
        import hashlib

        actual = hashlib.sha256(payload).hexdigest()
        if actual != spec.expected_sha256:
            raise ModelsNotInstalledError(
                [f"{spec.key}: {path} has sha256 {actual}, manifest expects {spec.expected_sha256}"]
            )
    return payload


@dataclass(slots=True)
class Runtime:
    """The sessions one process uses; never shared across a fork."""

    pid: int
    providers: list[str]
    detector: Any
    landmarker: Any
    expression: Any
    age: Any
    gender: Any
    embedder: Any | None
    worker: ThreadPoolExecutor  # runs the ONNX stages beside the landmarker
    batch_sessions: dict[str, Any]  # many-threaded twins of the attribute sessions, for big batches on CPU
    batch_min_rows: int

    def session_for(self, key: str, rows: int) -> Any:
        """The session to run `rows` inputs of model `key` through."""
        if rows >= self.batch_min_rows and key in self.batch_sessions:
            return self.batch_sessions[key]
        return getattr(self, key)

    @property
    def on_gpu(self) -> bool:
        """Whether the ONNX stages run on CUDA."""
        return self.providers[0] == "CUDAExecutionProvider"

    def close(self) -> None:
        """Release the MediaPipe graph and the worker; a no-op in a forked child, which owns neither."""
        if self.pid != os.getpid():
            return
        self.worker.shutdown(wait=True)
        self.landmarker.close()


def load_runtime(config: EngineConfig) -> Runtime:
    """Create every session the config needs; raises ModelsNotInstalledError naming bad files."""
    import onnxruntime
    from mediapipe.tasks.python import BaseOptions, vision

    _, specs = load_manifest()
    wanted = ["detector", "landmarker", "expression", "age", "gender"]
    if config.compute_embedding:
        wanted.append("embedder")
    problems: list[str] = []
    payloads: dict[str, bytes] = {}
    for key in wanted:
        try:
            payloads[key] = _read_verified(specs[key], config)
        except ModelsNotInstalledError as error:
            problems.extend(error.problems)
    if problems:
        raise ModelsNotInstalledError(problems)

    providers = onnx_providers(config)
    options = onnxruntime.SessionOptions()
    # One intra-op thread on CPU by default: MediaPipe runs beside onnxruntime and spinning or
    # oversubscribed pools cost twice the time on small machines (see MODELS.md).
    threads = config.intra_op_threads or (1 if providers[0] == "CPUExecutionProvider" else available_cpus())
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3

    def session(key: str, session_options: Any = options) -> Any:
        return onnxruntime.InferenceSession(
            payloads[key], sess_options=session_options, providers=_with_options(providers)
        )

    batch_sessions: dict[str, Any] = {}
    batch_threads = config.batch_intra_op_threads or available_cpus()
    if providers[0] == "CPUExecutionProvider" and batch_threads > threads:
        batch_options = onnxruntime.SessionOptions()
        for name in ("inter_op_num_threads", "execution_mode", "graph_optimization_level", "log_severity_level"):
            setattr(batch_options, name, getattr(options, name))
        batch_options.intra_op_num_threads = batch_threads
        batch_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        batch_options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        batch_sessions = {key: session(key, batch_options) for key in ("expression", "age", "gender")}

    landmarker = vision.FaceLandmarker.create_from_options(
        vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=payloads["landmarker"]),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=config.landmarker_detection_confidence,
            min_face_presence_confidence=config.landmarker_detection_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
    )
    return Runtime(
        pid=os.getpid(),
        providers=providers,
        detector=session("detector"),
        landmarker=landmarker,
        expression=session("expression"),
        age=session("age"),
        gender=session("gender"),
        embedder=session("embedder") if config.compute_embedding else None,
        worker=ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceanalysis-onnx"),
        batch_sessions=batch_sessions,
        batch_min_rows=config.batch_min_rows,
    )


__all__ = ["Runtime", "available_cpus", "load_runtime", "onnx_providers"]
