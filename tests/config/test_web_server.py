"""The real web server (scripts/web: granian, as scripts/fullstack runs it) against the test database and Redis:
a frame goes in over HTTP, a body larger than intake accepts is refused before the server reads it, a chunked
body (no Content-Length) is read within the same bounds, and a worker process that dies is replaced."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from faceanalysis.models import Frame
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session
from tests.web_server import WebServer, answers_health
from tests.web_server import web_server as running_web_server

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[WebServer]:
    """scripts/web with one worker process, on a free port, seeing what the test commits."""
    with running_web_server(tmp_path / "web.log") as server:
        yield server


def test_a_frame_posted_to_the_real_server_is_stored_and_queued(web_server: WebServer, org_a) -> None:
    session, token = make_capture_session(org_a)
    client = http.client.HTTPConnection("127.0.0.1", web_server.port, timeout=10)
    client.request(
        "POST", f"/api/v1/capture-sessions/{session.public_id}/frames/", body=astronaut_jpeg(),
        headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"},
    )
    response = client.getresponse()
    assert response.status == 202, response.read()
    frame = Frame.objects.get(session=session)
    assert frame.status == Frame.Status.QUEUED
    assert redis.Redis.from_url(settings.REDIS_URL).exists(f"visage:frame:{frame.pk}")


def test_an_oversized_body_is_refused_before_it_is_sent(web_server: WebServer, org_a) -> None:
    """A client declares 300 MB and sends none of it: the answer is a 413 at once, so the server handed the
    request over without buffering the body (a server that did would wait here for bytes that never come)."""
    session, token = make_capture_session(org_a)
    with socket.create_connection(("127.0.0.1", web_server.port), timeout=10) as raw:
        raw.sendall(
            f"POST /api/v1/capture-sessions/{session.public_id}/frames/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: image/jpeg\r\nAuthorization: Bearer {token}\r\nContent-Length: 300000000\r\n\r\n".encode()
        )
        head = _read_response(raw)
    assert head.startswith("HTTP/1.1 413"), head
    assert "request_too_large" in head
    assert not Frame.objects.filter(session=session).exists()


def test_a_web_worker_that_dies_is_replaced(web_server: WebServer) -> None:
    """A worker process killed outright (out of memory, a crash in a native library) is started again, as
    gunicorn's arbiter did: the server answers again without anyone restarting it."""
    master = web_server.pid  # scripts/web execs granian's main process
    [worker] = _children(master)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not answers_health(web_server.port):
        assert time.monotonic() < deadline, "no new worker process answered"
        time.sleep(0.2)
    assert _children(master) and worker not in _children(master)



def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _read_response(sock: socket.socket) -> str:
    """Status line, headers and body (by its Content-Length) of one response; a reply may come in pieces."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def _post_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """POST a body in 7000-byte chunks with Transfer-Encoding: chunked and no Content-Length."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n{lines}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(request + _chunked([body[i : i + 7000] for i in range(0, len(body), 7000)]))
        response = _read_response(raw)
    status = int(response.split(" ", 2)[1])
    return status, json.loads(response.partition("\r\n\r\n")[2] or "{}")


def test_a_chunked_frame_is_read_and_queued(web_server: WebServer, org_a) -> None:
    session, token = make_capture_session(org_a)
    status, body = _post_chunked(
        web_server.port, f"/api/v1/capture-sessions/{session.public_id}/frames/", astronaut_jpeg(),
        {"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}", "X-Media-Time-Ms": "250"},
    )
    assert status == 202, body
    frame = Frame.objects.get(session=session)
    assert (str(frame.public_id), frame.byte_size, frame.media_time_ms) == (
        body["frame_ids"][0], len(astronaut_jpeg()), 250)
    assert redis.Redis.from_url(settings.REDIS_URL).exists(f"visage:frame:{frame.pk}")


def test_a_chunked_json_batch_and_a_chunked_video_are_read(web_server: WebServer, org_a) -> None:
    import base64

    from tests.faceanalysis.factories import make_video

    session, token = make_capture_session(org_a, source="video_upload")
    auth = {"Authorization": f"Bearer {token}"}
    frames = json.dumps({"frames": [{"data": base64.b64encode(astronaut_jpeg()).decode()}] * 2}).encode()
    status, body = _post_chunked(web_server.port, f"/api/v1/capture-sessions/{session.public_id}/frames/", frames,
                                 {"Content-Type": "application/json", **auth})
    assert status == 202 and len(body["frame_ids"]) == 2, body
    video_path = f"/api/v1/capture-sessions/{session.public_id}/video/?sample_fps=2"
    status, body = _post_chunked(web_server.port, video_path, make_video(frames=10, fps=5),
                                 {"Content-Type": "video/webm", **auth})
    assert status == 202 and body["frame_ids"], body
    assert Frame.objects.filter(session=session).count() == 2 + len(body["frame_ids"])


def test_a_chunked_frame_over_the_frame_limit_is_413(web_server: WebServer, org_a) -> None:
    """Over VISAGE_FRAME_MAX_BYTES (5 MiB) but within what the server reads: intake's own bound still holds."""
    session, token = make_capture_session(org_a)
    status, body = _post_chunked(
        web_server.port, f"/api/v1/capture-sessions/{session.public_id}/frames/",
        b"\xff\xd8\xff" + b"\x00" * (6 << 20), {"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"},
    )
    assert status == 413 and body["error"]["code"] == "request_too_large", body
    assert not Frame.objects.filter(session=session).exists()


def test_an_endless_chunked_body_is_cut_off_with_413(web_server: WebServer, org_a) -> None:
    """Chunks keep coming: the server reads at most DATA_UPLOAD_MAX_MEMORY_SIZE (12 MiB) of them and answers
    413 while the client is still sending, rather than reading (and holding) whatever arrives."""
    session, token = make_capture_session(org_a)
    head = (f"POST /api/v1/capture-sessions/{session.public_id}/frames/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: image/jpeg\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"\x00" * 64 * 1024)
    pending, sent, answered = head.encode(), 0, b""
    with socket.create_connection(("127.0.0.1", web_server.port), timeout=30) as raw:
        raw.setblocking(False)
        while sent < 200 << 20:  # the test gives up at 200 MiB
            readable, writable, _ = select.select([raw], [raw], [], 10)
            if readable:
                answered = raw.recv(65536)
                break
            assert writable, "the server neither read nor answered for 10 s"
            if not pending:
                pending = chunk
            written = raw.send(pending)
            pending, sent = pending[written:], sent + written
        raw.setblocking(True)
        while b"\r\n\r\n" not in answered and (piece := raw.recv(65536)):
            answered += piece
    assert answered.startswith(b"HTTP/1.1 413"), answered[:200]
    assert b"request_too_large" in answered or b"\r\n\r\n" in answered
    assert sent < 40 << 20, f"{sent} bytes were taken before the answer"
    assert not Frame.objects.filter(session=session).exists()
