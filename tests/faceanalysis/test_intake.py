"""Frame intake over the API: partner keys and capture tokens, 202 with ids, and every refusal a clear 4xx
(or 503) with nothing queued."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from faceanalysis.models import CaptureSession, Frame
from faceanalysis.store import frame_store
from tests.conftest import api_client
from tests.faceanalysis.factories import (
    astronaut_jpeg,
    astronaut_rgb,
    encode,
    make_campaign,
    make_capture_session,
    make_consented_subject,
    make_video,
    withdraw,
)

pytestmark = pytest.mark.django_db


def frames_url(session: CaptureSession) -> str:
    return reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post_image(client: APIClient, session: CaptureSession, data: bytes, content_type: str = "image/jpeg", **extra):
    return client.generic("POST", frames_url(session), data, content_type=content_type, **extra)


def assert_nothing_queued(session: CaptureSession) -> None:
    assert not Frame.objects.filter(session=session).exists()


def test_partner_starts_a_session_and_gets_a_capture_token(client_a, org_a) -> None:
    subject, _ = make_consented_subject(org_a)
    campaign = make_campaign(org_a)
    response = client_a.post(
        reverse("api:capture-session-list"),
        {"subject": str(subject.public_id), "campaign": campaign.public_id, "source": "partner", "media_ref": "ad-7"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["capture_token"].startswith("vcs_")
    assert body["purposes"] == ["face_analysis", "personalization"]
    session = CaptureSession.objects.get(public_id=body["id"])
    assert session.token_hash and body["capture_token"] not in str(CaptureSession.objects.values().get(pk=session.pk))


def test_session_cannot_start_without_face_analysis_consent(client_a, org_a) -> None:
    subject, _ = make_consented_subject(org_a, purposes=("personalization",))
    response = client_a.post(
        reverse("api:capture-session-list"),
        {"subject": str(subject.public_id), "campaign": make_campaign(org_a).public_id},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "consent_required", "message": "The subject has no live consent to face analysis.",
        "details": {"reason": "no_grant"},
    }


def test_partner_cannot_start_a_session_for_another_organizations_subject(client_a, org_b, org_a) -> None:
    subject, _ = make_consented_subject(org_b)
    response = client_a.post(
        reverse("api:capture-session-list"),
        {"subject": str(subject.public_id), "campaign": make_campaign(org_a).public_id},
        format="json",
    )
    assert response.status_code == 404
    assert not CaptureSession.objects.exists()


def test_end_user_page_starts_a_session_with_the_subjects_access_token(org_a) -> None:
    from consent.services import subject_access_token_rotate

    subject, _ = make_consented_subject(org_a)
    access_token = subject_access_token_rotate(subject=subject)
    campaign = make_campaign(org_a)
    response = APIClient().post(
        reverse("api:capture-session-start"),
        {"access_token": access_token, "campaign": campaign.public_id, "media_ref": "trailer-1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "browser_stream" and body["media_ref"] == "trailer-1"
    detail = token_client(body["capture_token"]).get(
        reverse("api:capture-session-detail", kwargs={"session_id": body["id"]})
    )
    assert detail.status_code == 200 and detail.json()["id"] == body["id"]


def test_end_user_session_start_refuses_a_forged_access_token(org_a) -> None:
    response = APIClient().post(
        reverse("api:capture-session-start"),
        {"access_token": "forged", "campaign": make_campaign(org_a).public_id},
        format="json",
    )
    assert response.status_code == 401
    assert not CaptureSession.objects.exists()


def test_frame_posted_with_capture_token_is_accepted_with_202_and_ids(
    org_a, fake_engine, eager, django_capture_on_commit_callbacks
) -> None:
    session, token = make_capture_session(org_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(token_client(token), session, astronaut_jpeg(), HTTP_X_MEDIA_TIME_MS="1500")
    assert response.status_code == 202, response.content
    frame = Frame.objects.get(public_id=response.json()["frame_ids"][0])
    assert frame.media_time_ms == 1500 and frame.content_type == "image/jpeg"
    assert (frame.width, frame.height) == (512, 512)
    # Eager: analysed in-process after commit, by the FAKE engine here.
    assert frame.status == Frame.Status.ANALYZED
    assert not frame_store().exists(frame.pk)


def test_batch_of_frames_in_multipart_and_json(
    client_a, org_a, fake_engine, eager, django_capture_on_commit_callbacks
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    session, _ = make_capture_session(org_a)
    files = [SimpleUploadedFile(f"f{i}.jpg", astronaut_jpeg(), content_type="image/jpeg") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(frames_url(session), {"frame": files, "media_time_ms": ["0", "200", "400"]},
                                 format="multipart")
    assert response.status_code == 202, response.content
    assert len(response.json()["frame_ids"]) == 3
    png = encode(astronaut_rgb(), "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(
            frames_url(session),
            {"frames": [{"data": base64.b64encode(png).decode(), "content_type": "image/png", "media_time_ms": 600}]},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert sorted(Frame.objects.filter(session=session).values_list("media_time_ms", flat=True)) == [0, 200, 400, 600]
    assert fake_engine.images == 4


def test_capture_token_opens_only_its_own_session(org_a) -> None:
    session, token = make_capture_session(org_a)
    other, _ = make_capture_session(org_a)
    client = token_client(token)
    assert post_image(client, other, astronaut_jpeg()).status_code == 404
    assert client.get(reverse("api:capture-session-detail", kwargs={"session_id": other.public_id})).status_code == 404
    # ... and nothing else of the organization.
    assert client.get(reverse("api:capture-session-list")).status_code == 403
    assert client.get(reverse("api:analysis-stats")).status_code == 403
    assert_nothing_queued(other)


def test_capture_token_finds_its_session_in_one_query_with_only_the_aggregates_deferred(
    org_a, django_assert_num_queries
) -> None:
    from faceanalysis.selectors import capture_session_for_token

    session, token = make_capture_session(org_a)
    with django_assert_num_queries(1):
        found = capture_session_for_token(token=token)
        assert found is not None and found.pk == session.pk
        assert found.get_deferred_fields() == {"aggregates"}
        assert (found.public_id, found.subject_id, found.organization_id, found.source, found.started_at) == (
            session.public_id, session.subject_id, session.organization_id, session.source, session.started_at
        )
    assert capture_session_for_token(token=token + "x") is None
    assert capture_session_for_token(token="") is None


def test_expired_capture_token_is_refused(org_a) -> None:
    from django.utils import timezone

    session, token = make_capture_session(org_a)
    CaptureSession.objects.filter(pk=session.pk).update(token_expires_at=timezone.now())
    response = post_image(token_client(token), session, astronaut_jpeg())
    assert response.status_code == 401
    assert_nothing_queued(session)


def test_session_of_another_organization_is_not_found(client_a, org_b) -> None:
    session, _ = make_capture_session(org_b)
    response = post_image(client_a, session, astronaut_jpeg())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert_nothing_queued(session)


def test_ended_session_refuses_frames_with_409(org_a) -> None:
    session, token = make_capture_session(org_a)
    client = token_client(token)
    ended = client.post(reverse("api:capture-session-end", kwargs={"session_id": session.public_id}))
    assert ended.status_code == 200 and ended.json()["end_reason"] == "client"
    response = post_image(client, session, astronaut_jpeg())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_ended"
    assert_nothing_queued(session)


def test_withdrawn_consent_refuses_frames_with_403(org_a) -> None:
    session, token = make_capture_session(org_a)
    withdraw(session.subject)
    response = post_image(token_client(token), session, astronaut_jpeg())
    # The withdrawal ended the session; the answer still speaks of consent, so pages stop the camera.
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "consent_required"
    assert response.json()["error"]["details"]["reason"] == "withdrawn"
    assert_nothing_queued(session)


def test_browser_stream_past_its_time_limit_refuses_frames(org_a, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from faceanalysis.models import CaptureSession

    session, token = make_capture_session(org_a)
    assert session.source == CaptureSession.Source.BROWSER_STREAM
    settings.VISAGE_CAPTURE_MAX_SECONDS = 60
    CaptureSession.objects.filter(pk=session.pk).update(started_at=timezone.now() - timedelta(seconds=75))
    response = post_image(token_client(token), session, astronaut_jpeg())
    assert response.status_code == 409
    assert "time limit of 60 seconds" in response.json()["error"]["message"]
    assert_nothing_queued(session)


def test_consent_guard_runs_at_intake(org_a, settings) -> None:
    from consent.models import Grant

    session, token = make_capture_session(org_a)
    # Consent gone without the cascade having run (e.g. a grant that just expired): the guard still says no.
    Grant.objects.filter(subject=session.subject, purpose="face_analysis").update(expires_at="2000-01-01T00:00:00Z")
    response = post_image(token_client(token), session, astronaut_jpeg())
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"reason": "expired"}
    assert_nothing_queued(session)


def test_frame_rate_bound_answers_429(org_a, settings, monkeypatch) -> None:
    from faceanalysis.services import intake

    settings.VISAGE_CAPTURE_MAX_FPS = 2
    now = intake.current_second()
    monkeypatch.setattr(intake, "current_second", lambda: now)  # every request in the same second
    session, token = make_capture_session(org_a)
    client = token_client(token)
    codes = [post_image(client, session, astronaut_jpeg()).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert Frame.objects.filter(session=session).count() == 2
    refused = post_image(client, session, astronaut_jpeg())
    assert refused.json()["error"]["code"] == "frame_rate_exceeded" and refused["Retry-After"] == "1"
    monkeypatch.setattr(intake, "current_second", lambda: now + 1)  # the next second has its own budget
    assert post_image(client, session, astronaut_jpeg()).status_code == 202


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds a single tiny compressed row: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(
        b"IEND", b"")


def _animated_png() -> bytes:
    from PIL import Image

    frames = [Image.fromarray(astronaut_rgb()[:64, :64]), Image.fromarray(astronaut_rgb()[64:128, :64])]
    import io

    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _animated_webp() -> bytes:
    from PIL import Image

    frames = [Image.fromarray(astronaut_rgb()[:64, :64]), Image.fromarray(astronaut_rgb()[64:128, :64])]
    import io

    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


BAD_FRAMES = {
    "zero_bytes": (b"", "image/jpeg", 400, "empty_frame"),
    "truncated_jpeg": (astronaut_jpeg()[:20000], "image/jpeg", 400, "truncated_image"),
    "truncated_png": (encode(astronaut_rgb(), "PNG")[:30000], "image/png", 400, "truncated_image"),
    "text_named_jpeg": (b"hello, this is not an image\n" * 10, "image/jpeg", 415, "unsupported_media_type"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "image/svg+xml", 415,
            "unsupported_media_type"),
    "declared_png_is_jpeg": (astronaut_jpeg(), "image/png", 415, "content_type_mismatch"),
    "decompression_bomb_png": (_png_header_only(50000, 50000), "image/png", 413, "too_many_pixels"),
    "animated_png": (_animated_png(), "image/png", 415, "animated_image"),
    "animated_webp": (_animated_webp(), "image/webp", 415, "animated_image"),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frame_is_a_clear_4xx_and_nothing_is_queued(name: str, org_a) -> None:
    data, content_type, status, code = BAD_FRAMES[name]
    session, token = make_capture_session(org_a)
    response = post_image(token_client(token), session, data, content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert_nothing_queued(session)


def test_oversized_upload_is_refused_before_it_is_read(org_a, settings) -> None:
    session, token = make_capture_session(org_a)
    response = post_image(token_client(token), session, b"\xff\xd8\xff" + b"\x00" * (40 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert_nothing_queued(session)


def test_frame_over_the_byte_limit_is_413(org_a, settings) -> None:
    settings.VISAGE_FRAME_MAX_BYTES = 10_000
    session, token = make_capture_session(org_a)
    response = post_image(token_client(token), session, astronaut_jpeg())
    assert response.status_code == 413
    assert_nothing_queued(session)


def test_one_bad_frame_in_a_batch_refuses_the_whole_batch(client_a, org_a) -> None:
    session, _ = make_capture_session(org_a)
    good = base64.b64encode(astronaut_jpeg()).decode()
    bad = base64.b64encode(astronaut_jpeg()[:5000]).decode()
    response = client_a.post(frames_url(session), {"frames": [{"data": good}, {"data": bad}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["index"] == 1
    assert_nothing_queued(session)


def test_store_down_answers_503_and_writes_nothing(org_a, monkeypatch) -> None:
    from faceanalysis.services import intake
    from faceanalysis.store import FrameStoreUnavailable

    class DownStore:
        """A FAKE store whose Redis is down."""

        def put_many(self, frames, ttl_seconds):
            raise FrameStoreUnavailable("ConnectionError")

    monkeypatch.setattr(intake, "frame_store", lambda: DownStore())
    session, token = make_capture_session(org_a)
    response = post_image(token_client(token), session, astronaut_jpeg())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "frame_store_unavailable"
    assert "unavailable" in response.json()["error"]["message"]
    assert_nothing_queued(session)


def test_video_is_sampled_into_frames_with_media_time(client_a, org_a, fake_engine, eager) -> None:
    session, _ = make_capture_session(org_a, source="video_upload")
    url = reverse("api:capture-session-video", kwargs={"session_id": session.public_id})
    response = client_a.generic("POST", f"{url}?sample_fps=2", make_video(frames=10, fps=5), content_type="video/webm")
    assert response.status_code == 202, response.content
    times = sorted(Frame.objects.filter(session=session).values_list("media_time_ms", flat=True))
    assert times == [0, 600, 1000, 1600]
    assert set(Frame.objects.filter(session=session).values_list("origin", flat=True)) == {"video"}


def test_mp4_video_is_accepted(client_a, org_a, fake_engine, eager) -> None:
    session, _ = make_capture_session(org_a, source="video_upload")
    url = reverse("api:capture-session-video", kwargs={"session_id": session.public_id})
    response = client_a.generic("POST", url, make_video(codec="libx264", container="mp4"), content_type="video/mp4")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    ("name", "data", "content_type", "code"),
    [
        ("broken_container", make_video()[:3000], "video/webm", "no_video_frames"),
        ("not_a_video", b"\x1a\x45\xdf\xa3" + b"garbage" * 100, "video/webm", "broken_video"),
        ("empty", b"", "video/webm", "empty_video"),
        ("text", b"just text" * 50, "video/mp4", "unsupported_media_type"),
    ],
)
def test_bad_video_is_a_clear_4xx_and_nothing_is_queued(name, data, content_type, code, client_a, org_a) -> None:
    session, _ = make_capture_session(org_a, source="video_upload")
    url = reverse("api:capture-session-video", kwargs={"session_id": session.public_id})
    response = client_a.generic("POST", url, data, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"]["code"] == code
    assert_nothing_queued(session)


def test_read_scope_key_cannot_post_frames(org_a) -> None:
    from tests.factories import make_api_key

    session, _ = make_capture_session(org_a)
    response = post_image(api_client(make_api_key(org_a, scopes=("read",))[1]), session, astronaut_jpeg())
    assert response.status_code == 403
    assert_nothing_queued(session)


def test_real_redis_store_that_is_down_answers_503(org_a, settings) -> None:
    import socket

    from faceanalysis import store

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.VISAGE_FRAME_STORE_URL = f"redis://127.0.0.1:{port}/0"
    store._store_for.cache_clear()
    try:
        session, token = make_capture_session(org_a)
        response = post_image(token_client(token), session, astronaut_jpeg())
    finally:
        store._store_for.cache_clear()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "frame_store_unavailable"
    assert_nothing_queued(session)


def test_single_frame_intake_costs_three_queries(org_a, django_assert_num_queries) -> None:
    """The capture token's session, the consent guard and one INSERT: no transaction, no savepoint, no other
    read. A new query on this path shows here before it shows in the intake benchmark."""
    session, token = make_capture_session(org_a)
    client = token_client(token)
    with django_assert_num_queries(3) as captured:
        response = post_image(client, session, astronaut_jpeg())
    assert response.status_code == 202, response.content
    sql = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    assert sql == ["SELECT", "SELECT", "INSERT"]
    assert "consent_grant" in captured.captured_queries[1]["sql"]


def test_consent_guard_is_asked_on_every_intake_request(org_a, monkeypatch) -> None:
    from consent import guards

    calls = []
    real = guards.require_consent

    def counting(**kwargs):
        calls.append(kwargs["subject_id"])
        return real(**kwargs)

    session, token = make_capture_session(org_a)
    client = token_client(token)
    monkeypatch.setattr(guards, "require_consent", counting)
    assert [post_image(client, session, astronaut_jpeg()).status_code for _ in range(3)] == [202, 202, 202]
    assert calls == [session.subject_id] * 3


def test_store_down_during_a_batch_writes_none_of_its_frames(client_a, org_a, monkeypatch) -> None:
    from faceanalysis.services import intake
    from faceanalysis.store import FrameStoreUnavailable

    class DownStore:
        """A FAKE store whose Redis is down."""

        def put_many(self, frames, ttl_seconds):
            raise FrameStoreUnavailable("ConnectionError")

    monkeypatch.setattr(intake, "frame_store", lambda: DownStore())
    session, _ = make_capture_session(org_a)
    good = base64.b64encode(astronaut_jpeg()).decode()
    response = client_a.post(frames_url(session), {"frames": [{"data": good}] * 3}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "frame_store_unavailable"
    assert_nothing_queued(session)
