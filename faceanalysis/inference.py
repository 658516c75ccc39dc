"""The engine of this process, created on first use (never before a worker forks), and the start-up check
that makes an analysis worker refuse to run with missing or mismatched models."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from faceanalysis.dispatch import ANALYSIS_QUEUES

logger = logging.getLogger(__name__)


class AnalysisEngine(Protocol):
    """What the pipeline needs from an engine: `faceanalysis.engine.Engine`, or a named fake in tests."""

    def analyze_batch(
        self,
        images: Sequence[np.ndarray],
        timestamps: Sequence[float | None] | None = None,
        attributes: Sequence[Iterable[str]] | None = None,
    ) -> list[Any]: ...


_engine: AnalysisEngine | None = None
_engine_pid: int | None = None
_lock = threading.Lock()


def get_engine() -> AnalysisEngine:
    """This process's engine. Created lazily, and again in a forked child, whose inherited native
    sessions would not work."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        with _lock:
            if _engine is None or _engine_pid != os.getpid():
                from django.conf import settings

                from faceanalysis.engine import Engine, EngineConfig

                _engine = Engine(EngineConfig(models_dir=settings.VISAGE_MODELS_DIR))
                _engine_pid = os.getpid()
    return _engine


def set_engine(engine: AnalysisEngine | None) -> None:
    """Install an engine for this process (tests install fakes; None goes back to the real one)."""
    global _engine, _engine_pid
    with _lock:
        _engine, _engine_pid = engine, (os.getpid() if engine is not None else None)


def model_problems() -> list[str]:
    """Why the installed models cannot be used, one line per model; empty when they can."""
    from django.conf import settings

    from faceanalysis.engine import verify_models

    return verify_models(settings.VISAGE_MODELS_DIR)


def check_models_or_exit(queues: Sequence[str]) -> None:
    """Stop a worker that would consume analysis queues without usable models, naming each bad file."""
    if not ANALYSIS_QUEUES.intersection(queues):
        return
    problems = model_problems()
    if problems:
        message = "Refusing to start an analysis worker; face models are not usable:\n  " + "\n  ".join(problems)
        logger.critical(message)
        # SystemExit passes through Celery's signal dispatch (which swallows Exception) and ends the worker.
        raise SystemExit(message)
