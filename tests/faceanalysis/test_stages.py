"""Face analysis by stage: services never reach the tasks module or the broker's libraries, reads import no
service, and every task that dispatch sends by name is registered in a process that only set Django up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from consent.dispatch import RUN_PURGE_PART
from faceanalysis import dispatch

ROOT = Path(__file__).resolve().parents[2]
FACEANALYSIS = ROOT / "faceanalysis"
SERVICES = sorted((FACEANALYSIS / "services").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_service_selector_or_dispatch_imports_the_tasks_module() -> None:
    files = [*SERVICES, FACEANALYSIS / "selectors.py", FACEANALYSIS / "dispatch.py", FACEANALYSIS / "features.py"]
    assert len(SERVICES) >= 5
    offenders = {f.name: sorted(m for m in imported_modules(f) if m == "faceanalysis.tasks") for f in files}
    assert not {name: found for name, found in offenders.items() if found}


def test_services_and_selectors_leave_the_broker_and_redis_to_dispatch_and_the_store() -> None:
    files = [*SERVICES, FACEANALYSIS / "selectors.py"]
    offenders = {
        f.name: sorted(m for m in imported_modules(f) if m.split(".")[0] in {"kombu", "redis", "celery"}) for f in files
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_selectors_import_no_service() -> None:
    found = imported_modules(FACEANALYSIS / "selectors.py")
    assert not [m for m in found if m.startswith("faceanalysis.services") or m == "faceanalysis.services"]


def test_every_task_dispatch_names_is_registered_once_django_is_set_up() -> None:
    """As in a web process: Django set up, nothing imports faceanalysis.tasks by hand."""
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test';"
        "import django; django.setup();"
        "from celery import current_app; print(' '.join(sorted(current_app.tasks)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = {dispatch.ANALYZE_FRAME, dispatch.ANALYZE_FRAME_GPU, dispatch.REFRESH_SESSION_AGGREGATES,
             dispatch.EXPIRE_FRAMES, RUN_PURGE_PART}
    assert names <= set(result.stdout.split())
