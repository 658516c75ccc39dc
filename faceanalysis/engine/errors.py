"""Errors the engine raises on purpose."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of the engine's own errors."""


class InvalidImageError(EngineError, ValueError):
    """The input is not an image the engine can analyse (empty, wrong dtype, shape or size)."""


class ModelsNotInstalledError(EngineError, RuntimeError):
    """Model files are missing or do not match the manifest; the message names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "face analysis models are not usable:\n  "
            + "\n  ".join(problems)
            + "\ninstall them with: python -m faceanalysis.engine.install"
        )
        self.problems = problems
