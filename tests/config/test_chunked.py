"""The WSGI wrapper for chunked bodies, without a server: a chunked body reaches Django with its length, a
longer one than Django reads is a 413 after at most limit + 1 bytes, and other requests pass untouched.
(tests/config/test_web_server.py sends real chunked requests to granian.)"""

from __future__ import annotations

import json
from typing import Any

from config.chunked import ChunkedBodyMiddleware


class CountingStream:
    """A FAKE endless wsgi.input that counts what is read from it."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if self.data is None:
            block = b"\x00" * size
        else:
            block, self.data = self.data[:size], self.data[size:]
        self.read_bytes += len(block)
        return block


def _call(environ: dict[str, Any], limit: int = 1000) -> tuple[str, list[tuple[str, str]], bytes, dict]:
    seen: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response):
        seen.update(env, body=env["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"ok"]

    answer: list = []
    body = b"".join(ChunkedBodyMiddleware(app, limit=lambda: limit)(
        environ, lambda status, headers: answer.extend([status, headers])))
    return answer[0], answer[1], body, seen


def test_chunked_body_reaches_the_app_with_its_length() -> None:
    stream = CountingStream(b"x" * 700)
    status, _, _, seen = _call({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream, "PATH_INFO": "/api/v1/"})
    assert status == "200 OK"
    assert seen["CONTENT_LENGTH"] == "700" and seen["body"] == b"x" * 700
    assert "HTTP_TRANSFER_ENCODING" not in seen


def test_endless_chunked_body_is_413_after_reading_at_most_one_byte_past_the_limit() -> None:
    stream = CountingStream()
    status, headers, body, seen = _call(
        {"HTTP_TRANSFER_ENCODING": "gzip, chunked", "wsgi.input": stream, "PATH_INFO": "/api/v1/x/"}, limit=100_000)
    assert status.startswith("413")
    assert stream.read_bytes == 100_001
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert ("Connection", "close") in headers
    assert seen == {}


def test_body_with_a_content_length_is_left_to_django() -> None:
    stream = CountingStream(b"abc")
    environ = {"CONTENT_LENGTH": "3", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}
    status, _, _, seen = _call(environ)
    assert status == "200 OK" and seen["wsgi.input"] is stream


def test_request_without_a_body_is_not_read() -> None:
    stream = CountingStream()  # endless: anything the wrapper read would show
    status, _, _, _ = _call({"wsgi.input": stream, "PATH_INFO": "/healthz"})
    assert status == "200 OK" and stream.read_bytes == 0
