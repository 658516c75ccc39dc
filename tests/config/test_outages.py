"""Outages, with real processes and real dead ports rather than mocked clients.

- Redis away: withdrawal (API and "my data"), its purge and reads keep working; rate limits fail open; intake
  answers 503 in the error shape with when to retry.
- The database away: the API answers 503 in the error shape and pages a plain 503 page, also to a raw-body
  POST the real server (granian) has not read yet, which used to get a reset instead of an answer.
- The broker away: intake answers its 503 within about a second instead of six.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client

from consent.guards import has_consent
from consent.models import PurgePart, Purpose
from consent.services import subject_access_token_rotate
from faceanalysis import store
from faceanalysis.models import Frame
from faceanalysis.services.intake import IncomingFrame, frame_intake
from tests.conftest import api_client
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session
from tests.web_server import scripts_web, web_server


def _dead_port() -> int:
    """A port nothing listens on (bound and released: the kernel refuses connections to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Redis away (in process: the django test client with settings pointing at a dead port) ------------------


def point_at_dead_redis(settings) -> None:
    """The cache and the frame store from now on use a Redis port that refuses connections."""
    url = f"redis://127.0.0.1:{_dead_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    settings.VISAGE_FRAME_STORE_URL = url
    store._store_for.cache_clear()


def _broker_refuses(monkeypatch) -> None:
    """Every broker connection is refused, as with the broker down (restored with the monkeypatch)."""
    from kombu import Connection
    from kombu.exceptions import OperationalError

    def refuse(self, *args, **kwargs):
        raise OperationalError("Error 111 connecting: Connection refused.")

    monkeypatch.setattr(Connection, "ensure_connection", refuse)


@pytest.fixture
def dead_redis(settings) -> Iterator[None]:
    point_at_dead_redis(settings)
    yield
    store._store_for.cache_clear()


def _queue_frames(session, count: int, django_capture_on_commit_callbacks) -> list[Frame]:
    """Frames queued with their bytes in the (live) store; their messages are never sent."""
    with django_capture_on_commit_callbacks(execute=False):
        frames = [IncomingFrame(astronaut_jpeg(comment=b"%d" % i), "image/jpeg") for i in range(count)]
        return frame_intake(session=session, frames=frames)


@pytest.mark.django_db
def test_api_withdrawal_and_its_purge_work_while_redis_is_down(
    org_a, client_a, settings, caplog, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    session, _ = make_capture_session(org_a)
    queued = _queue_frames(session, 2, django_capture_on_commit_callbacks)
    point_at_dead_redis(settings)
    _broker_refuses(monkeypatch)
    try:
        with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
            response = client_a.post(
                f"/api/v1/consent/subjects/{session.subject.public_id}/withdraw/", {}, format="json"
            )
    finally:
        store._store_for.cache_clear()
    assert response.status_code == 200, response.content
    assert {g["purpose"] for g in response.json()["withdrawn"]} == {"face_analysis", "personalization"}
    assert not has_consent(organization_id=org_a.pk, subject_id=session.subject_id, purpose=Purpose.FACE_ANALYSIS)
    # The purge ran: the frames are dropped, so a worker that still gets their message analyses nothing.
    assert set(Frame.objects.filter(pk__in=[f.pk for f in queued]).values_list("status", flat=True)) == {"dropped"}
    messages = [r.getMessage() for r in caplog.records]
    assert any("rate limits are not enforced" in m for m in messages)
    assert any("dropped frames are left to expire" in m for m in messages)
    # No worker ran and the broker was away (on the embedded default there is none): the purge ran in the
    # request's process, and its part is done with its receipt.
    assert set(PurgePart.objects.values_list("status", flat=True)) == {"done"}


@pytest.mark.django_db
def test_my_data_withdrawal_works_while_redis_is_down(
    org_a, dead_redis, django_capture_on_commit_callbacks
) -> None:
    session, _ = make_capture_session(org_a)
    token = subject_access_token_rotate(subject=session.subject)
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(f"/consent/my-data/{token}/withdraw/", {"purpose": "all"})
    assert response.status_code == 303
    assert not has_consent(organization_id=org_a.pk, subject_id=session.subject_id, purpose=Purpose.FACE_ANALYSIS)
    assert Client().get(f"/consent/my-data/{token}/").status_code == 200


@pytest.mark.django_db
def test_reads_keep_working_while_redis_is_down(org_a, client_a, dead_redis) -> None:
    session, token = make_capture_session(org_a)
    assert client_a.get("/api/v1/capture-sessions/").status_code == 200
    assert client_a.get(f"/api/v1/capture-sessions/{session.public_id}/").status_code == 200
    assert api_client(token).get(f"/api/v1/capture-sessions/{session.public_id}/").status_code == 200
    assert client_a.get("/api/v1/consent/notices/").status_code == 200


@pytest.mark.django_db
def test_intake_answers_503_with_when_to_retry_while_redis_is_down(org_a, dead_redis) -> None:
    session, token = make_capture_session(org_a)
    response = api_client(token).generic(
        "POST", f"/api/v1/capture-sessions/{session.public_id}/frames/", astronaut_jpeg(), content_type="image/jpeg"
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "frame_store_unavailable"
    assert error["details"]["retry_after_seconds"] > 0
    assert response["Retry-After"] == str(error["details"]["retry_after_seconds"])
    assert not Frame.objects.filter(session=session).exists()


# --- Real server (scripts/web = granian) -----------------------------------------------------------------------


def _request(port: int, method: str, path: str, body: bytes | None = None, **headers: str):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    client.request(method, path, body=body, headers=headers)
    response = client.getresponse()
    return response, response.read()


def test_a_dead_database_answers_503_to_every_request_even_an_unread_raw_body(tmp_path: Path) -> None:
    dead = f"postgres://postgres@127.0.0.1:{_dead_port()}/visage"
    # A raw frame body larger than the socket buffers: unread when the answer is ready.
    body = os.urandom(4_500_000)
    frames = "/api/v1/capture-sessions/7a1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d/frames/"
    log_path = tmp_path / "web.log"
    with scripts_web(log_path, DATABASE_URL=dead, REDIS_URL="", CELERY_TASK_ALWAYS_EAGER="true") as server:
        port = server.port
        answers = [
            _request(port, "POST", frames, body, **{"Content-Type": "image/jpeg", "X-Capture-Token": "vcs_" + "x" * 43})
            for _ in range(2)
        ]
        key = "vsg_0123abcd_" + "y" * 43
        api, api_body = _request(port, "GET", "/api/v1/capture-sessions/", Authorization=f"Bearer {key}")
        page, page_body = _request(port, "GET", "/consent/my-data/some-token/")
    for response, content in [*answers, (api, api_body)]:
        assert response.status == 503, content[:300]
        assert response.getheader("Content-Type") == "application/json"
        error = json.loads(content)["error"]
        assert error["code"] == "service_unavailable"
        assert error["details"]["retry_after_seconds"] > 0
        assert response.getheader("Retry-After") == str(error["details"]["retry_after_seconds"])
    assert page.status == 503 and page.getheader("Content-Type").startswith("text/html")
    assert b"unavailable" in page_body
    log = log_path.read_text(errors="replace")
    assert log.count("the database is unavailable (OperationalError)") == 1


class _ClosingBroker:
    """A broker address that takes each connection and closes it at once, counting them: a client that retried
    would show here as many connections (kombu's own loop retries every 2 s for its connection timeout)."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()
        self.url = f"redis://127.0.0.1:{self._socket.getsockname()[1]}/0"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_answers_503_at_once_without_retrying_it(tmp_path: Path, org_a) -> None:
    session, token = make_capture_session(org_a)
    url = f"/api/v1/capture-sessions/{session.public_id}/frames/"
    broker = _ClosingBroker()
    try:
        with web_server(tmp_path / "web.log", CELERY_BROKER_URL=broker.url) as server:
            before = broker.connections  # whatever the server did when it started
            response, content = _request(server.port, "POST", url, astronaut_jpeg(), **{
                "Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"})
            during = broker.connections - before
    finally:
        broker.close()
    assert response.status == 503, content
    # One attempt (and redis-py's own single retry at most), not a retry loop holding the request.
    assert 1 <= during <= 2, f"the request connected to the broker {during} times"
    error = json.loads(content)["error"]
    assert error["code"] == "broker_unavailable"
    assert error["details"]["retry_after_seconds"] > 0
    assert response.getheader("Retry-After") == str(error["details"]["retry_after_seconds"])
    frame = Frame.objects.get(session=session)
    assert (frame.status, frame.reason) == ("failed", "broker_unavailable")
    assert not redis.Redis.from_url(settings.REDIS_URL).exists(f"visage:frame:{frame.pk}")


# --- The database away where no view catches it (a middleware's own query) ---------------------------------------


class DatabaseGoneOnTheWayOut:
    """Stands for a middleware whose own query finds the database away after the view ran (the session save,
    the last-login update): the error is raised outside every view."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("path", ["/api/v1/", "/consent/my-data/x/"])
def test_a_database_error_raised_in_a_middleware_is_a_503_not_a_500(path: str, settings) -> None:
    settings.DEBUG = False
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.config.test_outages.DatabaseGoneOnTheWayOut"]
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"]
    if path.startswith("/api/"):
        assert response.json()["error"]["code"] == "service_unavailable"
    else:
        assert b"unavailable" in response.content
