"""Dependencies point one way: consent knows no other app of ours."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OTHER_APPS = ("faceanalysis", "campaigns", "segments")


def test_consent_imports_no_other_app_of_ours() -> None:
    code = (
        "import django, os, sys;"
        "os.environ['DJANGO_SETTINGS_MODULE']='config.settings.test';"
        "import importlib, pkgutil;"
        "django.setup();"
        "before=set(sys.modules);"
        "import consent;"
        "[importlib.import_module('consent.'+m.name) for m in pkgutil.iter_modules(consent.__path__)];"
        "print(' '.join(sorted(m for m in set(sys.modules)-before)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    # django.setup() imports every app's models; what matters is what consent's own modules pull in.
    assert not [m for m in loaded if m.split(".")[0] in OTHER_APPS and m.split(".")[0] != "consent"]
