"""A 500 inside frame or video intake, under DEBUG, shows no byte of the frame: not on the debug page (HTML or
text), not in the log (text and JSON lines), not in the AdminEmailHandler mail (text and HTML)."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.core import mail
from django.utils.log import AdminEmailHandler
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from config.logging import JsonFormatter
from config.request_id import RequestIdLogFilter
from faceanalysis import video
from faceanalysis.services import intake
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session, make_video

pytestmark = pytest.mark.django_db

# A browser's Accept: the API still answers JSON, and Django's debug 500 is its HTML page (else plain text).
BROWSER_ACCEPT = "text/html,application/json;q=0.9"


def crash(data: bytes, *args, **kwargs):
    """Stands in for code that breaks with the frame's bytes in hand (and, carelessly, in its message)."""
    raise ValueError(f"cannot read {data[:120]!r}")


def telltales(data: bytes) -> list[str]:
    """Distinctive slices of a frame as they would show if leaked, near its start (what a trimmed repr or
    message shows) and in its middle: base64 at each alignment, the repr of its bytes, the bytes as Latin-1."""
    found = []
    for offset in (100, 700, len(data) // 2):
        chunk = data[offset : offset + 24]
        found += [base64.b64encode(data[offset + shift :]).decode()[:32] for shift in range(3)]
        found += [repr(chunk)[2:-1][:32], chunk.decode("latin-1")]
    return found


@dataclass
class Captured:
    """What a request's error left behind outside the response."""

    text_log: io.StringIO = field(default_factory=io.StringIO)
    json_log: io.StringIO = field(default_factory=io.StringIO)

    def everything(self) -> str:
        mails = [m.body + "".join(str(a[0]) for a in getattr(m, "alternatives", [])) for m in mail.outbox]
        return self.text_log.getvalue() + self.json_log.getvalue() + "".join(mails)


@pytest.fixture
def debug_reports(settings) -> Iterator[Captured]:
    """DEBUG on as in config.settings.local, the django.request log formatted as configured (text and JSON),
    and an AdminEmailHandler with HTML, as a production LOGGING would add."""
    settings.DEBUG = True
    settings.ADMINS = [("Ops", "ops@example.test")]
    captured = Captured()
    logger = logging.getLogger("django.request")
    text_format = settings.LOGGING["formatters"]["text"]
    text_formatter = import_string(text_format.get("()", "logging.Formatter"))(text_format["format"])
    handlers = [logging.StreamHandler(captured.text_log), logging.StreamHandler(captured.json_log),
                AdminEmailHandler(include_html=True)]
    handlers[0].setFormatter(text_formatter)
    handlers[1].setFormatter(JsonFormatter())
    filter_ = RequestIdLogFilter()
    for handler in handlers:
        handler.addFilter(filter_)
        logger.addHandler(handler)
    yield captured
    for handler in handlers:
        logger.removeHandler(handler)


def _client(token: str, accept: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_X_CAPTURE_TOKEN=token, HTTP_ACCEPT=accept)
    return client


def _assert_nothing_leaked(data: bytes, response, captured: Captured) -> None:
    assert response.status_code == 500
    page = response.content.decode("utf-8", errors="replace")
    elsewhere = captured.everything()
    assert captured.text_log.getvalue() and captured.json_log.getvalue() and mail.outbox, "no report was made"
    assert "Traceback" in mail.outbox[0].body and "Traceback" in captured.text_log.getvalue()
    for telltale in telltales(data):
        assert telltale not in page, f"the debug page shows {telltale!r}"
        assert telltale not in elsewhere, f"a log line or mail shows {telltale!r}"


def _frame_request(shape: str, jpeg: bytes) -> dict:
    if shape == "raw":
        return {"data": jpeg, "content_type": "image/jpeg"}
    if shape == "multipart":
        upload = io.BytesIO(jpeg)
        upload.name = "frame.jpg"
        return {"data": {"frame": upload, "media_time_ms": "40"}, "format": "multipart"}
    return {"data": json.dumps({"frames": [{"data": base64.b64encode(jpeg).decode(), "media_time_ms": 40}]}),
            "content_type": "application/json"}


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "application/json"])
@pytest.mark.parametrize("shape", ["raw", "multipart", "json"])
def test_a_500_in_frame_intake_shows_no_byte_of_the_frame(
    shape: str, accept: str, org_a, monkeypatch, debug_reports: Captured
) -> None:
    jpeg = astronaut_jpeg()
    monkeypatch.setattr(intake, "inspect_frame", crash)
    session, token = make_capture_session(org_a)
    response = _client(token, accept).post(
        f"/api/v1/capture-sessions/{session.public_id}/frames/", **_frame_request(shape, jpeg)
    )
    _assert_nothing_leaked(jpeg, response, debug_reports)


def test_a_500_while_json_frames_are_parsed_shows_none_of_their_base64(org_a, monkeypatch, debug_reports) -> None:
    """The demo's case: the crash comes while the parsed JSON (a list of dicts with base64) is a local."""
    from faceanalysis.api import parsing

    jpeg = astronaut_jpeg()
    monkeypatch.setattr(parsing, "_media_time", lambda value: 1 / 0)
    session, token = make_capture_session(org_a)
    response = _client(token, BROWSER_ACCEPT).post(
        f"/api/v1/capture-sessions/{session.public_id}/frames/", **_frame_request("json", jpeg)
    )
    _assert_nothing_leaked(jpeg, response, debug_reports)


@pytest.mark.parametrize("shape", ["raw", "json"])
def test_a_500_in_video_intake_shows_no_byte_of_the_video(shape: str, org_a, monkeypatch, debug_reports) -> None:
    clip = make_video()
    monkeypatch.setattr(video, "check_video", crash)
    session, token = make_capture_session(org_a, source="video_upload")
    if shape == "raw":
        body = {"data": clip, "content_type": "video/webm"}
    else:
        body = {"data": json.dumps({"video": base64.b64encode(clip).decode(), "content_type": "video/webm"}),
                "content_type": "application/json"}
    url = f"/api/v1/capture-sessions/{session.public_id}/video/"
    response = _client(token, BROWSER_ACCEPT).post(url, **body)
    _assert_nothing_leaked(clip, response, debug_reports)


def test_every_setting_uses_the_frame_safe_reporter() -> None:
    assert settings.DEFAULT_EXCEPTION_REPORTER == "config.error_reports.FrameSafeExceptionReporter"
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "config.error_reports.FrameSafeExceptionReporterFilter"
    assert settings.LOGGING["formatters"]["text"]["()"] == "config.logging.TextFormatter"
