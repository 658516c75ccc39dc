"""A step any browser test can take on an open "my data" page: download a grant's signed consent receipt as the
visitor does, and verify the saved file with `manage.py consent_receipt_verify`, as a third party would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class VerifiedReceipt:
    path: Path  # the downloaded file
    filename: str  # the name the server suggested
    returncode: int  # of consent_receipt_verify: 0 valid, 1 invalid, 2 unreadable
    output: str  # its stdout and stderr


def download_receipt_and_verify(
    page: Any, *, directory: Path, jwks: str, grant_id: int | None = None, timeout_s: int = 120
) -> VerifiedReceipt:
    """Click "Download receipt" (the one of `grant_id`, else the first) on the open "my data" `page`, save the
    download under `directory`, and run the verify command on it against `jwks` (a JWKS URL, e.g. the live
    server's /consent/o/<slug>/receipts/jwks.json, or a file). The command runs as its own process and reads no
    database, so it can run while Playwright is open."""
    link = page.locator(f'a[data-receipt="{grant_id}"]') if grant_id else page.locator("a[data-receipt]").first
    with page.expect_download() as info:
        link.click()
    download = info.value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / download.suggested_filename
    download.save_as(str(path))
    returncode, output = verify_receipt_file(path, jwks=jwks, timeout_s=timeout_s)
    return VerifiedReceipt(path, download.suggested_filename, returncode, output)


def verify_receipt_file(path: Path, *, jwks: str, timeout_s: int = 120) -> tuple[int, str]:
    """`manage.py consent_receipt_verify PATH --jwks JWKS` as its own process: its exit code and output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "consent_receipt_verify", str(path), "--jwks", jwks],
        capture_output=True, text=True, env=env, timeout=timeout_s, cwd=ROOT,
    )
    return run.returncode, run.stdout + run.stderr
