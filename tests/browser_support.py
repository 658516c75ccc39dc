"""Shared pieces of the browser tests: headless Debian Chromium (optionally with a fake camera playing a real
face), the ledger flush fixture transactional browser tests need, and a fake-camera video of the astronaut.

Playwright's sync API keeps an event loop around and Django's ORM refuses to run next to one, so a browser test
prepares its data first, then only talks HTTP while the browser is open, and checks the database after."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# Counts getUserMedia calls and keeps the streams it hands out, so a test can prove the camera was never asked
# for, or that every track it gave was stopped; and counts the frame posts the page starts.
COUNT_GET_USER_MEDIA = """
(() => {
  window.__gumCalls = 0;
  window.__gumStreams = [];
  window.__framePosts = 0;
  const originalFetch = window.fetch.bind(window);
  window.fetch = (resource, init) => {
    if (String(resource).endsWith('/frames/') && init && init.method === 'POST') window.__framePosts += 1;
    return originalFetch(resource, init);
  };
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    window.__gumCalls += 1;
    return original(constraints).then((stream) => { window.__gumStreams.push(stream); return stream; });
  };
})();
"""
LIVE_TRACKS = "() => window.__gumStreams.flatMap(s => s.getTracks()).filter(t => t.readyState === 'live').length"


def screenshot(page: Any, name: str) -> None:
    """Save a full-page PNG under $VISAGE_SCREENSHOT_DIR when set (to look at a page while developing)."""
    directory = os.environ.get("VISAGE_SCREENSHOT_DIR", "")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/services (it installs Debian's chromium).")


def launch_chromium(playwright: Any, *, camera_video: Path | None = None) -> Any:
    """Headless Chromium; with `camera_video` (a Y4M file) getUserMedia grants itself and plays it as the webcam."""
    require_chromium()
    args = list(CHROMIUM_ARGS)
    if camera_video is not None:
        args += [*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={camera_video}"]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)


def open_counting_page(
    playwright: Any, *, camera_video: Path | None, locale: str = "en-US"
) -> tuple[Any, Any, Any]:
    """Browser, context and page, with every getUserMedia call counted in `window.__gumCalls`."""
    browser = launch_chromium(playwright, camera_video=camera_video)
    context = browser.new_context(locale=locale)
    context.add_init_script(COUNT_GET_USER_MEDIA)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return browser, context, page


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """skimage's astronaut (a real smiling face) letterboxed into width x height, RGB uint8."""
    from skimage.data import astronaut
    from skimage.transform import resize

    rgb = astronaut()
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    size = (round(rgb.shape[0] * scale), round(rgb.shape[1] * scale))
    small = (resize(rgb, size, anti_aliasing=True) * 255).round().astype(np.uint8)
    canvas = np.full((height, width, 3), 40, dtype=np.uint8)
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    canvas[top : top + size[0], left : left + size[1]] = small
    return canvas


def write_y4m(path: Path, rgb: np.ndarray, *, frames: int = 5, fps: int = 10) -> Path:
    """A Y4M video (4:2:0, full-range BT.601 as C420jpeg says) showing `rgb` for `frames` frames."""
    height, width = rgb.shape[:2]
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def plane(values: np.ndarray) -> bytes:
        return np.clip(values.round(), 0, 255).astype(np.uint8).tobytes()

    def half(values: np.ndarray) -> np.ndarray:
        return values.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    body = plane(y) + plane(half(cb)) + plane(half(cr))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + body)
    return path


@pytest.fixture
def ledger_flushable(transactional_db):
    """Transactional tests end by emptying every table. PostgreSQL does it with TRUNCATE, which the ledger's
    row triggers let through; SQLite deletes rows, which they refuse. On SQLite, clear the ledger with the
    triggers briefly lifted (in one transaction), so the flush that follows finds it empty."""
    yield
    if connection.vendor != "sqlite":
        return
    from importlib import import_module

    migration = import_module("consent.migrations.0002_ledger_append_only_triggers")
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        for statement in migration.SQLITE_BACKWARD:
            cursor.execute(statement)
        cursor.execute("DELETE FROM consent_ledgerentry")
        for statement in migration.SQLITE_FORWARD:
            cursor.execute(statement)
        cursor.execute("COMMIT")
