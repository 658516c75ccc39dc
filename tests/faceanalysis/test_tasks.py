"""Analysis tasks: explicit names, ids only, acks late, reject on worker lost, time limits, retries only for
transient errors, routed to the analysis queues, consent-guarded; workers refuse to start without models."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from config.celery import app
from consent.biometric import guard_spec, unguarded_biometric_tasks
from faceanalysis import tasks
from faceanalysis.inference import check_models_or_exit
from faceanalysis.store import FrameStoreUnavailable


@pytest.mark.parametrize(
    ("task", "queue"), [(tasks.analyze_frame, "analysis"), (tasks.analyze_frame_gpu, "analysis_gpu")]
)
def test_analysis_tasks_are_idempotent_under_redelivery(task, queue: str) -> None:
    assert task.name in ("faceanalysis.analyze_frame", "faceanalysis.analyze_frame_gpu")
    assert task.acks_late and task.reject_on_worker_lost
    assert task.time_limit == 30 and task.soft_time_limit < task.time_limit
    assert set(task.autoretry_for) >= {OperationalError, FrameStoreUnavailable}
    assert Exception not in task.autoretry_for  # engine and decode errors are final, never retried
    assert app.amqp.router.route({}, task.name, (), {})["queue"].name == queue
    assert guard_spec(task).purpose == "face_analysis"


def test_every_biometric_task_goes_through_the_consent_guard() -> None:
    assert unguarded_biometric_tasks(app) == []


def test_task_message_carries_ids_only() -> None:
    from inspect import signature

    parameters = set(signature(tasks.analyze_frame.run).parameters)
    assert parameters == {"organization_id", "subject_id", "frame_id"}


def test_analysis_worker_refuses_to_start_with_missing_models_and_names_them(settings, tmp_path) -> None:
    settings.VISAGE_MODELS_DIR = str(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        check_models_or_exit(["analysis"])
    message = str(exit_info.value)
    assert "detector" in message and "landmarker" in message and "missing" in message


def test_analysis_worker_refuses_mismatched_models(settings, tmp_path) -> None:
    from pathlib import Path

    from faceanalysis.engine.models import load_manifest

    source = Path(settings.VISAGE_MODELS_DIR)
    for spec in load_manifest()[1].values():
        if (source / spec.file).exists():
            (tmp_path / spec.file).write_bytes((source / spec.file).read_bytes())
    first = sorted(p for p in tmp_path.iterdir())[0]
    first.write_bytes(first.read_bytes() + b"tampered")
    settings.VISAGE_MODELS_DIR = str(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        check_models_or_exit(["analysis_gpu"])
    assert first.name in str(exit_info.value) and "sha256" in str(exit_info.value)


def test_worker_of_other_queues_does_not_need_models(settings, tmp_path) -> None:
    settings.VISAGE_MODELS_DIR = str(tmp_path)
    check_models_or_exit(["default"])  # no exit: beat and housekeeping workers run without models


def test_installed_models_pass_the_start_up_check() -> None:
    check_models_or_exit(["analysis", "analysis_gpu"])


def test_loading_the_worker_app_creates_no_engine_and_no_native_session() -> None:
    """What a prefork parent imports must hold no onnxruntime or MediaPipe state for children to inherit."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test';"
        "import django; django.setup();"
        "from config.celery import app; app.loader.import_default_modules();"
        "import faceanalysis.tasks; from faceanalysis import inference;"
        "print(inference._engine is None, 'onnxruntime' in sys.modules, 'mediapipe' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]
