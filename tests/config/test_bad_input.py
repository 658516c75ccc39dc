"""Bad input to the API outside intake and to the public pages: the consent and key endpoints check every
field's type and length, and a request no view can serve (NUL in the URL, a header or a cookie, a body Django
refuses to read) is a clear 4xx, in the error shape under /api/, never a 500 and never a write."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from consent.models import Grant, Subject
from tests.error_shape import is_error_body
from tests.factories import make_campaign, make_notice, make_subject

pytestmark = pytest.mark.django_db

BASE = "/api/v1/consent"


def assert_refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert is_error_body(body), body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def lenient_client(key_a) -> APIClient:
    """The org's key, with server errors answered as responses (as a real client would see them)."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_a}")
    return client


@pytest.mark.parametrize("value", [5, 5.5, True, None, [], ["user-1"], {"id": "user-1"}, "", "x" * 257])
def test_partner_user_id_of_the_wrong_type_or_length_is_400(value, lenient_client) -> None:
    response = lenient_client.post(f"{BASE}/subjects/", {"partner_user_id": value}, format="json")
    error = assert_refused(response, 400)
    assert "partner_user_id" in error["message"]
    assert not Subject.objects.exists()


@pytest.mark.parametrize("body", ['{"partner_user_id": "a\\u0000b"}', '{"partner_user_id": "\\ud83d"}',
                                  '{"partner_user_id": "a", "partner_user_id": "b"}'])
def test_partner_user_id_no_database_can_hold_or_two_of_them_is_400(body: str, lenient_client) -> None:
    response = lenient_client.generic("POST", f"{BASE}/subjects/", body, content_type="application/json")
    assert_refused(response, 400, "parse_error")
    assert not Subject.objects.exists()


def test_a_form_encoded_body_outside_intake_is_415_and_changes_nothing(lenient_client) -> None:
    """Bodies are JSON; a form (multipart here) is refused whole rather than read field by field."""
    response = lenient_client.post(f"{BASE}/subjects/", {"partner_user_id": "a\x00b"})
    assert_refused(response, 415, "unsupported_media_type")
    assert not Subject.objects.exists()


@pytest.fixture
def grant_body(org_a) -> dict:
    notice = make_notice(org_a)
    return {"purposes": ["face_analysis"], "notice_hash": notice.text_hash, "language": notice.language}


BAD_GRANT_FIELDS = {
    "purposes_string": {"purposes": "face_analysis"},
    "purposes_null_item": {"purposes": [None]},
    "purposes_nested": {"purposes": [["face_analysis"]]},
    "purposes_unknown": {"purposes": ["mind_reading"]},
    "purposes_too_many": {"purposes": ["face_analysis"] * 50},
    "purposes_empty": {"purposes": []},
    "notice_hash_number": {"notice_hash": 5},
    "notice_hash_short": {"notice_hash": "ab"},
    "language_list": {"language": ["en"]},
    "language_unknown": {"language": "xx"},
    "ip_address_bad": {"ip_address": "300.1.1.1"},
    "ip_address_number": {"ip_address": 3},
    "user_agent_number": {"user_agent": 3},
    "user_agent_too_long": {"user_agent": "x" * 1001},
}


@pytest.mark.parametrize("name", sorted(BAD_GRANT_FIELDS))
def test_grant_with_a_bad_field_is_400_and_writes_nothing(name: str, grant_body: dict, lenient_client, org_a) -> None:
    subject = make_subject(org_a)
    response = lenient_client.post(f"{BASE}/subjects/{subject.public_id}/grants/",
                                   {**grant_body, **BAD_GRANT_FIELDS[name]}, format="json")
    error = assert_refused(response, 400, "invalid")
    assert next(iter(BAD_GRANT_FIELDS[name])) in error["details"]
    assert not Grant.objects.exists()


@pytest.mark.parametrize("body", [{"purposes": [5]}, {"purposes": None}, {"purposes": "x"}, {"purposes": [{}]},
                                  {"purposes": ["face_analysis"] * 50}])
def test_withdraw_with_a_bad_field_is_400(body: dict, lenient_client, org_a) -> None:
    subject = make_subject(org_a)
    response = lenient_client.post(f"{BASE}/subjects/{subject.public_id}/withdraw/", body, format="json")
    assert_refused(response, 400, "invalid")


@pytest.mark.parametrize("body", ["[]", '"x"', "5", "null"])
def test_withdraw_body_that_is_not_an_object_is_400(body: str, lenient_client, org_a) -> None:
    subject = make_subject(org_a)
    response = lenient_client.generic("POST", f"{BASE}/subjects/{subject.public_id}/withdraw/", body,
                                      content_type="application/json")
    assert_refused(response, 400)


@pytest.mark.parametrize("url", [
    "/api/v1/keys/%00/", "/api/v1/keys/a%00/revoke/", f"{BASE}/subjects/%00/", f"{BASE}/subjects/%00/history/",
])
def test_nul_in_an_api_path_is_404_not_a_query(url: str, lenient_client) -> None:
    """No resource has a NUL in its id: the same 404 as any unknown id, before a query could fail on it."""
    method = lenient_client.post if url.endswith("revoke/") else lenient_client.get
    assert_refused(method(url), 404, "not_found")


@pytest.mark.parametrize("url", [f"{BASE}/subjects/?page=%00", f"{BASE}/notices/?page_size=%00", "/api/v1/?x=%00"])
def test_nul_in_an_api_query_string_is_400(url: str, lenient_client) -> None:
    assert_refused(lenient_client.get(url), 400, "malformed_request")


@pytest.mark.parametrize("authorization", [" ", "Bearer", "Bearer vsg_a\u00e9", "Bearer a b c"])
def test_malformed_authorization_is_401(authorization: str) -> None:
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/", HTTP_AUTHORIZATION=authorization)
    assert_refused(response, 401)


def test_api_key_header_with_nul_is_400() -> None:
    client = APIClient(raise_request_exception=False)
    assert_refused(client.get("/api/v1/", HTTP_X_API_KEY="vsg_abc\x00"), 400, "malformed_request")


def test_body_larger_than_django_reads_is_413_in_the_shape(lenient_client) -> None:
    response = lenient_client.generic("POST", f"{BASE}/subjects/", b'{"partner_user_id": "' + b"a" * (13 << 20) + b'"}',
                                      content_type="application/json")
    assert_refused(response, 413, "request_too_large")
    assert not Subject.objects.exists()


def test_multipart_frames_with_more_fields_than_django_reads_is_400_in_the_shape(org_a) -> None:
    from faceanalysis.models import Frame
    from tests.faceanalysis.factories import make_capture_session

    session, token = make_capture_session(org_a)
    boundary = "BoUnDaRy"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n' for i in range(1200))
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.generic("POST", f"/api/v1/capture-sessions/{session.public_id}/frames/",
                              parts + f"--{boundary}--\r\n", content_type=f"multipart/form-data; boundary={boundary}")
    assert_refused(response, 400, "malformed_request")
    assert not Frame.objects.filter(session=session).exists()


# --- public pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/c/%00/", "/c/%00/capture/", "/consent/o/{slug}/notices/%00/",
                                  "/consent/my-data/%00/"])
def test_nul_in_a_page_path_is_an_html_404(path: str, org_a) -> None:
    response = APIClient(raise_request_exception=False).get(path.format(slug=org_a.slug))
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


@pytest.mark.parametrize("path", ["/c/%00/capture/session/", "/consent/my-data/%00/withdraw/"])
def test_nul_in_a_page_form_path_is_404(path: str) -> None:
    response = APIClient(raise_request_exception=False).post(path, {"purpose": "all"})
    assert response.status_code == 404


def test_nul_in_a_page_query_string_is_a_plain_400(org_a) -> None:
    campaign = make_campaign(org_a)
    response = APIClient(raise_request_exception=False).get(f"/c/{campaign.public_id}/?lang=%00")
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_session_cookie_with_an_escaped_nul_is_400_not_a_session_query(org_a) -> None:
    """A quoted cookie may carry octal escapes that Django decodes into a NUL; the session table is then queried
    with it unless the request is refused first."""
    campaign = make_campaign(org_a)
    client = APIClient(raise_request_exception=False)
    for path in [f"/c/{campaign.public_id}/", f"/c/{campaign.public_id}/capture/"]:
        response = client.get(path, HTTP_COOKIE='sessionid="abc\\000defgh12345678"')
        assert response.status_code == 400, path


def test_ordinary_page_and_api_requests_still_pass(org_a, client_a) -> None:
    campaign = make_campaign(org_a)
    assert APIClient().get(f"/c/{campaign.public_id}/capture/?lang=de&x=%25001").status_code == 403  # no consent
    assert client_a.get("/api/v1/?q=%2500").status_code == 200
