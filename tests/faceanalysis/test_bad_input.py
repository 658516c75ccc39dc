"""Every field, header and query parameter of the face-analysis endpoints is checked for type and range: a bad
value is a 400 in the error shape that names it, never a 500, and nothing is queued or opened for it."""

from __future__ import annotations

import base64
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from faceanalysis.models import CaptureSession, Frame
from tests.error_shape import is_error_body
from tests.faceanalysis.conftest import stored_frame_count
from tests.faceanalysis.factories import astronaut_jpeg, make_campaign, make_capture_session, make_consented_subject
from tests.faceanalysis.factories import make_video as _make_video

pytestmark = pytest.mark.django_db

JPEG = astronaut_jpeg()
JPEG_B64 = base64.b64encode(JPEG).decode()
VIDEO = _make_video(frames=4)
VIDEO_B64 = base64.b64encode(VIDEO).decode()


def token_client(token: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def frames_url(session: CaptureSession) -> str:
    return reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})


def video_url(session: CaptureSession) -> str:
    return reverse("api:capture-session-video", kwargs={"session_id": session.public_id})


def assert_refused(response, status: int = 400, code: str | None = None) -> dict:
    """A 4xx in the one error shape: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert is_error_body(body), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_nothing_queued(session: CaptureSession) -> None:
    """No frame row and no bytes in the frame store (each test starts with an empty store)."""
    assert list(Frame.objects.filter(session=session).values_list("pk", flat=True)) == []
    assert stored_frame_count() == 0


@pytest.fixture
def stream(org_a, settings) -> tuple[CaptureSession, APIClient]:
    settings.VISAGE_CAPTURE_MAX_FPS = 10_000  # many requests in one second here; the rate bound is tested elsewhere
    session, token = make_capture_session(org_a, source="video_upload")
    return session, token_client(token)


# --- media_time_ms and captured_at on a raw image body ---------------------------------------------------------

BAD_MEDIA_TIMES = [
    "1e400", "inf", "-inf", "nan", "Infinity", "2147483648", str(2**63), str(2**64), "9" * 30, "1e18", "-1", "-0.5",
    "true", "[1]", "{}", "0x10", "1_000", "12abc", "", " ", "+", ".", "1e", "--1", "\u0663", "\u00b2",
]


@pytest.mark.parametrize("value", [v for v in BAD_MEDIA_TIMES if v.strip()])
def test_media_time_header_out_of_range_or_not_a_number_is_400(value: str, stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg",
                              HTTP_X_MEDIA_TIME_MS=value)
    error = assert_refused(response, 400, "invalid_media_time")
    assert "media_time_ms" in error["message"]
    assert_nothing_queued(session)


@pytest.mark.parametrize(("value", "stored"), [("0", 0), ("1500", 1500), ("2147483647", 2147483647),
                                               ("1533.75", 1533), (" 42 ", 42), ("1.5e3", 1500)])
def test_media_time_header_in_range_is_stored(value: str, stored: int, stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg",
                              HTTP_X_MEDIA_TIME_MS=value)
    assert response.status_code == 202, response.content
    assert Frame.objects.get(session=session).media_time_ms == stored


BAD_CAPTURED_AT = [
    "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-02-30T00:00:00Z", "2023-02-29T12:00:00Z",
    "2024-01-01T25:00:00Z", "2024-01-01T23:61:00Z", "2024-01-01T00:00:00+99:00", "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00-25:30", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:00",
    "2024-01-01T00:00:00", "yesterday", "1700000000", "2024-01-01T00:00:00Z" + "0" * 80,
]


@pytest.mark.parametrize("value", BAD_CAPTURED_AT)
def test_impossible_captured_at_header_is_400(value: str, stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg",
                              HTTP_X_CAPTURED_AT=value)
    assert_refused(response, 400, "invalid_captured_at")
    assert_nothing_queued(session)


@pytest.mark.parametrize("value", ["2026-11-30T10:00:00.123Z", "2026-11-30T10:00:00+05:30",
                                   "2000-01-01T00:00:00-12:00"])
def test_captured_at_with_a_zone_is_stored(value: str, stream) -> None:
    from django.utils.dateparse import parse_datetime

    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg", HTTP_X_CAPTURED_AT=value)
    assert response.status_code == 202, response.content
    assert Frame.objects.get(session=session).captured_at == parse_datetime(value)


# --- JSON frames: every field of every item --------------------------------------------------------------------

BAD_JSON_ITEMS = {
    "content_type_number": ({"content_type": 5}, "invalid_content_type"),
    "content_type_list": ({"content_type": ["image/jpeg"]}, "invalid_content_type"),
    "content_type_object": ({"content_type": {"a": 1}}, "invalid_content_type"),
    "content_type_bool": ({"content_type": True}, "invalid_content_type"),
    "content_type_long": ({"content_type": "image/jpeg" + " " * 300}, "invalid_content_type"),
    "media_time_huge_float": ({"media_time_ms": 1e300}, "invalid_media_time"),
    "media_time_beyond_64_bits": ({"media_time_ms": 2**70}, "invalid_media_time"),
    "media_time_beyond_32_bits": ({"media_time_ms": 2**31}, "invalid_media_time"),
    "media_time_negative": ({"media_time_ms": -5}, "invalid_media_time"),
    "media_time_bool": ({"media_time_ms": True}, "invalid_media_time"),
    "media_time_object": ({"media_time_ms": {"a": 1}}, "invalid_media_time"),
    "media_time_list": ({"media_time_ms": [1]}, "invalid_media_time"),
    "media_time_string_inf": ({"media_time_ms": "inf"}, "invalid_media_time"),
    "captured_at_number": ({"captured_at": 5}, "invalid_captured_at"),
    "captured_at_list": ({"captured_at": ["2024-01-01T00:00:00Z"]}, "invalid_captured_at"),
    "captured_at_month_13": ({"captured_at": "2024-13-01T00:00:00Z"}, "invalid_captured_at"),
    "captured_at_offset_99h": ({"captured_at": "2024-01-01T00:00:00+99:00"}, "invalid_captured_at"),
    "captured_at_bool": ({"captured_at": False}, "invalid_captured_at"),
    "data_number": ({"data": 5}, "invalid_base64"),
    "data_not_base64": ({"data": "@@@@"}, "invalid_base64"),
    "data_null": ({"data": None}, "invalid_base64"),
}


@pytest.mark.parametrize("name", sorted(BAD_JSON_ITEMS))
def test_json_frame_field_of_the_wrong_type_or_range_is_400(name: str, stream) -> None:
    fields, code = BAD_JSON_ITEMS[name]
    session, client = stream
    response = client.post(frames_url(session), {"frames": [{"data": JPEG_B64, **fields}]}, format="json")
    assert_refused(response, 400, code)
    assert_nothing_queued(session)


BAD_JSON_DOCUMENTS = {
    "number_overflowing_to_infinity": '{"frames": [{"data": "DATA", "media_time_ms": 1e400}]}',
    "nan_literal": '{"frames": [{"data": "DATA", "media_time_ms": NaN}]}',
    "infinity_literal": '{"frames": [{"data": "DATA", "media_time_ms": -Infinity}]}',
    "integer_of_5000_digits": '{"frames": [{"data": "DATA", "media_time_ms": NINES}]}'.replace("NINES", "9" * 5000),
    "duplicate_keys": '{"frames": [], "frames": [{"data": "DATA"}]}',
    "duplicate_keys_in_an_item": '{"frames": [{"data": "DATA", "data": "DATA"}]}',
    "nested_100000_deep": "[" * 100_000 + "]" * 100_000,
    "nested_40_deep": '{"frames": ' + "[" * 40 + "]" * 40 + "}",
    "nul_in_a_string": '{"frames": [{"data": "DATA", "content_type": "image/jpeg\\u0000"}]}',
    "lone_surrogate": '{"frames": [{"data": "DATA", "content_type": "\\ud800"}]}',
    "truncated": '{"frames": [{"data": "DATA"',
    "top_level_list": "[]",
    "top_level_string": '"frames"',
    "top_level_number": "5",
    "top_level_null": "null",
    "frames_an_object": '{"frames": {}}',
    "frames_a_string": '{"frames": "x"}',
    "item_a_list": '{"frames": [[]]}',
    "empty_body": "",
}


@pytest.mark.parametrize("name", sorted(BAD_JSON_DOCUMENTS))
def test_malformed_json_document_is_400(name: str, stream) -> None:
    session, client = stream
    body = BAD_JSON_DOCUMENTS[name].replace("DATA", JPEG_B64)
    response = client.generic("POST", frames_url(session), body, content_type="application/json")
    assert_refused(response, 400)
    assert_nothing_queued(session)


def test_json_body_that_is_not_utf8_is_400(stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), b'{"frames": "\xff\xfe"}', content_type="application/json")
    assert_refused(response, 400)
    assert_nothing_queued(session)


@pytest.mark.parametrize("charset", ["bogus", "utf-7", "\u00ff"])
def test_json_in_an_unknown_or_odd_charset_is_a_4xx(charset: str, stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), b'{"frames": []}',
                              content_type=f"application/json; charset={charset}")
    assert 400 <= response.status_code < 500, response.content
    assert_refused(response, response.status_code)
    assert_nothing_queued(session)


# --- multipart fields ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "code"), [
    ("media_time_ms", "1e400", "invalid_media_time"),
    ("media_time_ms", "99999999999999999999999", "invalid_media_time"),
    ("media_time_ms", "-3", "invalid_media_time"),
    ("captured_at", "2024-13-01T00:00:00Z", "invalid_captured_at"),
    ("captured_at", "2024-01-01T00:00:00+99:00", "invalid_captured_at"),
])
def test_multipart_frame_value_out_of_range_is_400(field: str, value: str, code: str, stream) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    session, client = stream
    upload = SimpleUploadedFile("f.jpg", JPEG, content_type="image/jpeg")
    response = client.post(frames_url(session), {"frame": upload, field: value}, format="multipart")
    assert_refused(response, 400, code)
    assert_nothing_queued(session)


def test_multipart_with_more_fields_than_django_reads_is_400_in_the_shape(stream) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    session, client = stream
    fields = {f"f{i}": "1" for i in range(1100)}
    response = client.post(frames_url(session), {"frame": SimpleUploadedFile("f.jpg", JPEG, "image/jpeg"), **fields},
                           format="multipart")
    assert_refused(response, 400)
    assert_nothing_queued(session)


def test_multipart_with_a_broken_body_is_400(stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), b"--x\r\nContent-Disposition: form-da",
                              content_type="multipart/form-data; boundary=x")
    assert_refused(response, 400)
    assert_nothing_queued(session)


# --- video -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"content_type": 5}, {"content_type": ["video/webm"]}, {"sample_fps": True}, {"sample_fps": [1]},
    {"sample_fps": "1_0"}, {"sample_fps": "inf"}, {"sample_fps": "nan"}, {"sample_fps": 0}, {"sample_fps": -1},
    {"sample_fps": 1e308}, {"sample_fps": {"a": 1}}, {"video": 5}, {"video": None},
])
def test_video_json_field_of_the_wrong_type_or_range_is_400(fields: dict, stream) -> None:
    session, client = stream
    response = client.post(video_url(session), {"video": VIDEO_B64, **fields}, format="json")
    assert_refused(response, 400)
    assert_nothing_queued(session)


@pytest.mark.parametrize("value", ["abc", "1e400", "nan", "inf", "-1", "0", "1_0", "11", "0x1"])
def test_video_sample_fps_query_out_of_range_is_400(value: str, stream) -> None:
    session, client = stream
    response = client.generic("POST", f"{video_url(session)}?sample_fps={value}", VIDEO, content_type="video/webm")
    assert_refused(response, 400, "invalid_sample_fps")
    assert_nothing_queued(session)


def test_video_number_overflowing_in_json_is_400(stream) -> None:
    session, client = stream
    body = '{"video": "VIDEO", "sample_fps": 1e400}'.replace("VIDEO", VIDEO_B64)
    response = client.generic("POST", video_url(session), body, content_type="application/json")
    assert_refused(response, 400)
    assert_nothing_queued(session)


# --- query parameters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "0.01", "1e309", "nan", "inf", "-1", "abc", "3601", "1_0", ""])
def test_timeline_bucket_out_of_range_is_400(value: str, stream) -> None:
    session, client = stream
    url = reverse("api:capture-session-timeline", kwargs={"session_id": session.public_id})
    error = assert_refused(client.get(url, {"bucket": value}), 400, "invalid")
    assert "bucket" in error["details"]


@pytest.mark.parametrize("value", ["0", "86401", "1e309", "99999999999999999999", "abc", "1.5", "nan", ""])
def test_stats_window_out_of_range_is_400(value: str, client_a) -> None:
    error = assert_refused(client_a.get(reverse("api:analysis-stats"), {"window": value}), 400, "invalid")
    assert "window" in error["details"]


def test_stats_window_in_range_is_answered(client_a) -> None:
    assert client_a.get(reverse("api:analysis-stats"), {"window": "60"}).status_code == 200
    assert client_a.get(reverse("api:analysis-stats"), {"window": "60.0"}).status_code == 200


# --- opening sessions ------------------------------------------------------------------------------------------


@pytest.fixture
def start_fields(org_a) -> dict:
    subject, _ = make_consented_subject(org_a)
    return {"subject": str(subject.public_id), "campaign": make_campaign(org_a).public_id}


BAD_START_FIELDS = {
    "subject_number": {"subject": 5},
    "subject_bool": {"subject": True},
    "subject_list": {"subject": ["x"]},
    "subject_null": {"subject": None},
    "campaign_number": {"campaign": 5},
    "campaign_nul": {"campaign": "abc\x00"},
    "campaign_too_long": {"campaign": "x" * 33},
    "campaign_object": {"campaign": {"id": 1}},
    "source_unknown": {"source": "webcam"},
    "source_list": {"source": ["partner"]},
    "media_ref_nul": {"media_ref": "ad\x00"},
    "media_ref_too_long": {"media_ref": "x" * 201},
    "media_ref_number": {"media_ref": 7},
}


@pytest.mark.parametrize("name", sorted(BAD_START_FIELDS))
def test_partner_session_start_with_a_bad_field_is_400(name: str, start_fields: dict, client_a) -> None:
    response = client_a.post(reverse("api:capture-session-list"), {**start_fields, **BAD_START_FIELDS[name]},
                             format="json")
    if name.endswith("_nul"):  # the JSON parser refuses NUL in any string, before the serializer
        assert_refused(response, 400, "parse_error")
    else:
        error = assert_refused(response, 400, "invalid")
        assert next(iter(BAD_START_FIELDS[name])) in error["details"]
    assert not CaptureSession.objects.exists()


@pytest.mark.parametrize("fields", [{"campaign": "abc\x00"}, {"media_ref": "ad\x00"}, {"subject": "5"}])
def test_form_encoded_session_start_is_415_whatever_its_fields(fields: dict, start_fields: dict, client_a) -> None:
    response = client_a.post(reverse("api:capture-session-list"), {**start_fields, **fields})
    assert_refused(response, 415, "unsupported_media_type")
    assert not CaptureSession.objects.exists()


@pytest.mark.parametrize("fields", [
    {"access_token": ["x"]}, {"access_token": 5}, {"access_token": "a\x00b"}, {"access_token": "a" * 129},
    {"campaign": 5}, {"campaign": "c\x00"}, {"media_ref": "x" * 201}, {"source": 1},
])
def test_end_user_session_start_with_a_bad_field_is_400(fields: dict, org_a) -> None:
    body = {"access_token": "t" * 40, "campaign": make_campaign(org_a).public_id, **fields}
    response = APIClient().post(reverse("api:capture-session-start"), body, format="json")
    assert_refused(response, 400, "parse_error" if any("\x00" in str(v) for v in fields.values()) else "invalid")
    assert not CaptureSession.objects.exists()


def test_end_user_session_start_with_a_lone_surrogate_is_400(org_a) -> None:
    body = '{"access_token": "\\udc80abc", "campaign": "ID"}'.replace("ID", make_campaign(org_a).public_id)
    response = APIClient().generic("POST", reverse("api:capture-session-start"), body,
                                   content_type="application/json")
    assert_refused(response, 400)
    assert not CaptureSession.objects.exists()


# --- paths, headers and bodies that no view can serve ----------------------------------------------------------


def test_nul_in_a_session_id_is_404_not_a_query(client_a) -> None:
    for url in ["/api/v1/capture-sessions/%00/", "/api/v1/capture-sessions/a%00b/frames/",
                "/api/v1/capture-sessions/%00/timeline/?bucket=1"]:
        assert_refused(client_a.get(url), 404, "not_found")
    assert_refused(client_a.get("/api/v1/capture-sessions/?page=1%00"), 400, "malformed_request")


@pytest.mark.parametrize("header", ["HTTP_X_MEDIA_TIME_MS", "HTTP_X_CAPTURED_AT", "HTTP_X_CAPTURE_TOKEN",
                                    "HTTP_X_API_KEY", "HTTP_USER_AGENT"])
def test_nul_in_a_header_is_400(header: str, stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg", **{header: "1\x00"})
    assert_refused(response, 400, "malformed_request")
    assert_nothing_queued(session)


@pytest.mark.parametrize("authorization", [" ", "\t", "Bearer", "Bearer a b", "Bearer vsg_\u00e9", "Basic"])
def test_malformed_authorization_header_is_a_4xx(authorization: str, stream) -> None:
    session, _ = stream
    client = APIClient(raise_request_exception=False)
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg",
                              HTTP_AUTHORIZATION=authorization)
    assert response.status_code in (401, 403), response.content
    assert_refused(response, response.status_code)
    assert_nothing_queued(session)


def test_content_length_that_is_not_a_number_is_400(stream) -> None:
    session, client = stream
    response = client.generic("POST", frames_url(session), JPEG, content_type="image/jpeg", CONTENT_LENGTH="12abc")
    assert_refused(response, 400, "malformed_request")
    assert_nothing_queued(session)


def test_a_good_json_batch_still_passes_the_strict_parser(stream) -> None:
    session, client = stream
    body = json.dumps({"frames": [{"data": JPEG_B64, "content_type": "image/jpeg", "media_time_ms": 10,
                                   "captured_at": "2026-11-30T10:00:00Z"}, {"data": JPEG_B64, "media_time_ms": 20.5}]})
    response = client.generic("POST", frames_url(session), body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert stored_frame_count() == 2
    assert sorted(Frame.objects.filter(session=session).values_list("media_time_ms", flat=True)) == [10, 20]
