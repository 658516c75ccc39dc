"""Face analysis engine: pure Python, offline models, no Django.

Importing this package loads only the result types, the config and the errors (numpy at most);
the Engine and the model helpers are imported on first access, and onnxruntime and MediaPipe
only when an Engine first analyses an image, so Django processes that need the types stay light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import EXPRESSION_LABELS, EngineConfig
from .errors import EngineError, InvalidImageError, ModelsNotInstalledError
from .results import (
    AgeEstimate,
    BoundingBox,
    Expression,
    Eyes,
    FaceAnalysis,
    FrameAnalysis,
    Gaze,
    GenderEstimate,
    HeadPose,
    ModelInfo,
    Quality,
    Withheld,
)

if TYPE_CHECKING:
    from .engine import Engine
    from .install import install_models
    from .models import verify_models
    from .tracker import BlinkState, BlinkTracker

_LAZY = {
    "Engine": ".engine",
    "install_models": ".install",
    "verify_models": ".models",
    "BlinkTracker": ".tracker",
    "BlinkState": ".tracker",
}


def __getattr__(name: str) -> Any:
    """Import heavier members on first use."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXPRESSION_LABELS",
    "AgeEstimate",
    "BlinkState",
    "BlinkTracker",
    "BoundingBox",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Expression",
    "Eyes",
    "FaceAnalysis",
    "FrameAnalysis",
    "Gaze",
    "GenderEstimate",
    "HeadPose",
    "InvalidImageError",
    "ModelInfo",
    "ModelsNotInstalledError",
    "Quality",
    "Withheld",
    "install_models",
    "verify_models",
]
