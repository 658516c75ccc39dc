"""Property: whatever arrives at the intake endpoints (arbitrary JSON, multipart fields, raw bodies, content
types and headers, with a valid capture token, a valid key or garbage credentials) the answer is below 500;
a refusal is in the one error shape and leaves no frame row, no session and no bytes in the frame store.

Examples are bounded so the file runs in well under a minute on PostgreSQL and SQLite alike; the examples
are random per run, so each run also looks somewhere new."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from faceanalysis.models import CaptureSession, Frame
from tests.faceanalysis.conftest import clear_frame_store, stored_frame_count
from tests.faceanalysis.factories import (
    astronaut_jpeg,
    astronaut_rgb,
    encode,
    make_campaign,
    make_capture_session,
    make_consented_subject,
    make_video,
)
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

EXAMPLES = settings(
    max_examples=50, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

SMALL = astronaut_rgb()[:64, :64]
IMAGES = [astronaut_jpeg(quality=70), encode(SMALL, "PNG"), encode(SMALL, "WEBP")]
VIDEO = make_video(frames=3)
IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/jpg", "application/octet-stream", "image/gif",
               "image/svg+xml", "text/plain", "", "application/json", "multipart/form-data", "video/webm",
               "image/jpeg; charset=utf-8", "IMAGE/JPEG"]
VIDEO_TYPES = ["video/mp4", "video/webm", "video/quicktime", "video/x-matroska", "application/octet-stream", "",
               "image/jpeg", "multipart/form-data", "application/json"]

# Text a header or a form field can carry (no lone surrogates: those cannot be sent as UTF-8 at all).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**63, 2**64, -1, 0.5, 1e18, 1e308]),
)
number_text = st.one_of(
    numbers.map(str), text,
    st.sampled_from(["1e400", "inf", "-inf", "nan", "-0", "1_000", "0x1f", "9" * 25, str(2**31), "true", "[1]"]),
)
times = st.one_of(
    text, st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2024-13-01T00:00:00Z", "2024-01-01T00:00:00+99:00", "2024-02-30T00:00:00Z",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:00", "2026-11-30T10:00:00Z"]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
image_b64 = st.sampled_from(IMAGES).map(lambda data: base64.b64encode(data).decode())


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """A valid image (most often: refusals of its other fields are what is looked for), one cut short or with
    bytes flipped, or noise."""
    choice = draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))
    if choice == 0:
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(IMAGES)))
    if choice == 2:
        return bytes(data[: draw(st.integers(0, len(data)))])
    if choice == 3:
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _without_absent(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not ABSENT}


ABSENT = object()
frame_items = st.one_of(
    st.fixed_dictionaries({
        "data": st.one_of(image_b64, image_bytes().map(lambda b: base64.b64encode(b).decode()), json_values),
        "content_type": st.one_of(st.just(ABSENT), st.sampled_from(IMAGE_TYPES), json_values),
        "media_time_ms": st.one_of(st.just(ABSENT), numbers, number_text, json_values),
        "captured_at": st.one_of(st.just(ABSENT), times, json_values),
    }).map(_without_absent),
    json_values.filter(lambda value: not isinstance(value, dict)),
)
json_frame_bodies = st.one_of(
    st.fixed_dictionaries({"frames": st.lists(frame_items, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"frames": st.lists(frame_items, max_size=12)}),
    st.fixed_dictionaries({"frames": json_values}),
    json_values,
)
raw_json_texts = st.one_of(
    st.sampled_from(['{"frames": [{"data": "AAAA", "media_time_ms": 1e400}]}', '{"frames": [], "frames": 1}',
                     "[" * 5000 + "]" * 5000, '{"frames": [NaN]}', '{"frames": "\\u0000"}', '{"a": "\\ud800"}',
                     '{"frames": [{"data": "x"', "", "null"]),
    text,
)


@pytest.fixture
def intake(org_a, settings) -> dict[str, Any]:
    """One open session, its capture token, a partner key, and the credentials a request may carry."""
    settings.VISAGE_CAPTURE_MAX_FPS = 1_000_000  # every example falls in one second; the bound is tested elsewhere
    session, token = make_capture_session(org_a, source="video_upload")
    key = make_api_key(org_a)[1]
    return {
        "session": session,
        "credentials": _credentials(token, key),
    }


def _credentials(token: str, key: str) -> st.SearchStrategy[dict[str, str]]:
    """Valid credentials most of the time, so that the fields behind them are reached; garbage otherwise.
    (A drawn integer rather than one_of: Hypothesis favours small integers, and 0-3 are the valid ones.)"""
    valid = [{"HTTP_AUTHORIZATION": f"Bearer {token}"}, {"HTTP_X_CAPTURE_TOKEN": token},
             {"HTTP_AUTHORIZATION": f"Bearer {key}"}, {"HTTP_X_API_KEY": key}]
    garbage = st.one_of(
        st.just({}), text.map(lambda t: {"HTTP_AUTHORIZATION": t}),
        text.map(lambda t: {"HTTP_X_CAPTURE_TOKEN": "vcs_" + t}), text.map(lambda t: {"HTTP_X_API_KEY": t}),
    )
    return st.integers(0, 4).flatmap(lambda i: st.just(valid[i]) if i < 4 else garbage)


def _check(response, *, session: CaptureSession | None, frames_before: int, sessions_before: int) -> None:
    """Below 500; a refusal is in the error shape and wrote nothing; an acceptance wrote what it says."""
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
        assert isinstance(body["error"]["details"], dict | list), body
        assert Frame.objects.count() == frames_before
        assert CaptureSession.objects.count() == sessions_before
        assert stored_frame_count() == 0
    elif response.status_code == 202:
        ids = response.json()["frame_ids"]
        assert ids and Frame.objects.filter(session=session, public_id__in=ids).count() == len(ids)
        assert stored_frame_count() == len(ids)


def _send(method: str, url: str, *, session: CaptureSession | None = None, **request: Any) -> None:
    """One request in a savepoint that is rolled back, so examples cannot see each other's rows."""
    client = APIClient(raise_request_exception=False)
    with transaction.atomic():
        frames_before, sessions_before = Frame.objects.count(), CaptureSession.objects.count()
        response = client.generic(method, url, **request)
        _check(response, session=session, frames_before=frames_before, sessions_before=sessions_before)
        transaction.set_rollback(True)
    clear_frame_store()


@EXAMPLES
@given(data=st.data())
def test_frames_endpoint_never_answers_5xx_to_a_raw_body_and_its_headers(intake, data: st.DataObject) -> None:
    session = intake["session"]
    url = reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})
    credentials = data.draw(intake["credentials"], label="credentials")
    body = data.draw(image_bytes(), label="body")
    # Small integers first: a type intake takes for any image, then anything.
    content_type = data.draw(st.integers(0, 3).flatmap(lambda i: [
        st.just("application/octet-stream"), st.sampled_from(IMAGE_TYPES[:4]), st.sampled_from(IMAGE_TYPES), text,
    ][i]), label="content_type")
    headers = {
        name: value for name, value in data.draw(st.fixed_dictionaries({
            "HTTP_X_MEDIA_TIME_MS": st.one_of(st.none(), number_text),
            "HTTP_X_CAPTURED_AT": st.one_of(st.none(), times),
            "HTTP_X_REQUEST_ID": st.one_of(st.none(), text),
        }), label="headers").items() if value is not None
    }
    _send("POST", url, session=session, data=body, content_type=content_type, **credentials, **headers)


@EXAMPLES
@given(data=st.data())
def test_frames_endpoint_never_answers_5xx_to_a_json_body(intake, data: st.DataObject) -> None:
    session = intake["session"]
    url = reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})
    credentials = data.draw(intake["credentials"], label="credentials")
    if data.draw(st.integers(0, 4), label="raw") == 0:
        body = data.draw(raw_json_texts, label="body").encode("utf-8")
        content_type = data.draw(st.sampled_from(["application/json", "application/json; charset=latin-1"]))
    else:
        body = json.dumps(data.draw(json_frame_bodies, label="body")).encode()
        content_type = "application/json"
    _send("POST", url, session=session, data=body, content_type=content_type, **credentials)


@EXAMPLES
@given(data=st.data())
def test_frames_endpoint_never_answers_5xx_to_multipart_fields(intake, data: st.DataObject) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    session = intake["session"]
    url = reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})
    files = [
        SimpleUploadedFile(f"f{i}", payload, content_type=ctype)
        for i, (payload, ctype) in enumerate(data.draw(st.lists(
            st.tuples(image_bytes(), st.sampled_from(IMAGE_TYPES)), max_size=11), label="files"))
    ]
    name = data.draw(st.integers(0, 3).map(lambda i: ["frame", "frames", "video", "file"][i]), label="name")
    fields: dict[str, Any] = {name: files}
    fields.update(data.draw(st.fixed_dictionaries({
        "media_time_ms": st.lists(number_text, max_size=12), "captured_at": st.lists(times, max_size=12),
    }), label="fields"))
    fields.update(data.draw(st.dictionaries(text.filter(bool), text, max_size=3), label="extra"))
    body = encode_multipart(BOUNDARY, fields)
    if data.draw(st.booleans(), label="truncate"):
        body = body[: data.draw(st.integers(0, len(body)), label="cut")]
    credentials = data.draw(intake["credentials"], label="credentials")
    _send("POST", url, session=session, data=body, content_type=MULTIPART_CONTENT, **credentials)


@EXAMPLES
@given(data=st.data())
def test_video_endpoint_never_answers_5xx(intake, data: st.DataObject) -> None:
    session = intake["session"]
    url = reverse("api:capture-session-video", kwargs={"session_id": session.public_id})
    query = data.draw(st.one_of(st.just(""), number_text.map(lambda v: "?" + _query({"sample_fps": v}))),
                      label="query")
    credentials = data.draw(intake["credentials"], label="credentials")
    video = data.draw(st.integers(0, 2).flatmap(lambda i: [
        st.just(VIDEO), st.integers(0, len(VIDEO)).map(lambda n: VIDEO[:n]), st.binary(max_size=200),
    ][i]), label="video")
    if data.draw(st.booleans(), label="as_json"):
        body = data.draw(st.one_of(
            st.fixed_dictionaries({
                "video": st.just(base64.b64encode(video).decode()),
                "sample_fps": st.one_of(st.just(ABSENT), numbers, number_text, json_values),
                "content_type": st.one_of(st.just(ABSENT), st.sampled_from(VIDEO_TYPES), json_values),
            }).map(_without_absent),
            json_values,
        ), label="body")
        _send("POST", url + query, session=session, data=json.dumps(body), content_type="application/json",
              **credentials)
    else:
        content_type = data.draw(st.integers(0, 3).flatmap(lambda i: [
            st.just("video/webm"), st.just("application/octet-stream"), st.sampled_from(VIDEO_TYPES), text,
        ][i]), label="content_type")
        _send("POST", url + query, session=session, data=video, content_type=content_type, **credentials)


@EXAMPLES
@given(data=st.data())
def test_session_start_endpoints_never_answer_5xx(intake, org_a, data: st.DataObject) -> None:
    subject, _ = make_consented_subject(org_a)
    campaign = make_campaign(org_a)
    known = {"subject": str(subject.public_id), "campaign": campaign.public_id, "access_token": "t" * 43}
    fields = data.draw(st.dictionaries(
        st.sampled_from(["subject", "campaign", "source", "media_ref", "access_token", "other"]),
        st.one_of(json_values, st.sampled_from(list(known.values()) + ["partner", "browser_stream", "x" * 201])),
        max_size=6,
    ), label="fields")
    if data.draw(st.integers(0, 3), label="fill_in_known") < 3:  # mostly: the other fields are valid
        fields = {**known, **fields}
    url = data.draw(st.sampled_from([reverse("api:capture-session-list"), reverse("api:capture-session-start")]))
    credentials = data.draw(intake["credentials"], label="credentials")
    _send("POST", url, data=json.dumps(fields), content_type="application/json", **credentials)


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
