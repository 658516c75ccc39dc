import json
import logging

import pytest
from django.test import Client

from config.logging import JsonFormatter
from config.request_id import RequestIdLogFilter

pytestmark = pytest.mark.django_db


def test_a_request_id_is_returned_and_a_sane_incoming_one_is_kept() -> None:
    assert len(Client().get("/healthz")["X-Request-ID"]) == 32
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="abc-12345678")["X-Request-ID"] == "abc-12345678"
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\nx")["X-Request-ID"] != "bad id\nx"


def test_json_log_line_carries_request_id_and_never_the_request_body(rf) -> None:
    request = rf.post("/api/v1/frames/", data=b"SECRET-PIXELS", content_type="application/octet-stream")
    record = logging.makeLogRecord({"msg": "boom %s", "args": ("x",), "levelname": "ERROR", "name": "django"})
    record.request = request
    record.status_code = 500
    RequestIdLogFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "boom x"
    assert entry["path"] == "/api/v1/frames/" and entry["status_code"] == 500
    assert "request_id" in entry
    assert "SECRET-PIXELS" not in line
