import json

import pytest
from rest_framework.test import APIClient

from tests.error_shape import is_error_body

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_json_404() -> None:
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "details": {}}}


def test_unknown_page_path_stays_html_404() -> None:
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


def test_validation_errors_name_the_field_first() -> None:
    from rest_framework.exceptions import ValidationError

    from config.api.errors import api_exception_handler

    response = api_exception_handler(ValidationError({"purpose": ["Unknown purpose."]}), {})
    assert response.status_code == 400
    assert response.data == {
        "error": {
            "code": "invalid",
            "message": "purpose: Unknown purpose.",
            "details": {"purpose": ["Unknown purpose."]},
            "path": "purpose",
        }
    }


def test_a_validation_error_names_the_path_of_its_first_nested_member() -> None:
    from rest_framework.exceptions import ValidationError

    from config.api.errors import api_exception_handler

    nested = {"variants": [{}, {"cta_url": ["Enter a valid URL."]}]}
    assert api_exception_handler(ValidationError(nested), {}).data["error"]["path"] == "variants[1].cta_url"
    whole = api_exception_handler(ValidationError(["Send an object."]), {}).data["error"]
    assert "path" not in whole


def test_wrong_method_is_405_in_the_error_shape(client_a) -> None:
    response = client_a.delete("/api/v1/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.fixture
def tight_throttle():
    """Two calls a minute per principal, for this test only."""
    from rest_framework.settings import api_settings

    from config.api.throttling import PrincipalRateThrottle

    PrincipalRateThrottle.THROTTLE_RATES = {"principal": "2/min"}
    yield
    PrincipalRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_throttled_key_gets_429_with_retry_after(client_a, tight_throttle) -> None:
    codes = [client_a.get("/api/v1/").status_code for _ in range(2)]
    response = client_a.get("/api/v1/")
    assert codes == [200, 200]
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert response.json()["error"]["details"]["retry_after_seconds"] > 0


def test_throttle_counts_per_key(client_a, client_b, tight_throttle) -> None:
    a = [client_a.get("/api/v1/").status_code for _ in range(3)]
    assert a == [200, 200, 429]
    assert client_b.get("/api/v1/").status_code == 200


UNKNOWN_API_PATHS = [
    "/api/",
    "/api/v2/",
    "/api/v1/no-such-thing/",
    "/api/v1/keys/no-such-prefix/deeper/",
    "/api/v1/consent/subjects/not-a-uuid/nowhere/",
    "/api/v1/capture-sessions/../../admin/",
    "/api/v1/%E2%9C%93/",
    "/api/v1/no-slash",
]


def _assert_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert is_error_body(body)
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("path", UNKNOWN_API_PATHS)
def test_unknown_api_paths_are_json_404_with_and_without_a_key(settings, key_a, path, debug) -> None:
    """Also under DEBUG (config.settings.local), where Django would answer with its technical HTML 404 page."""
    from tests.conftest import api_client

    settings.DEBUG = debug
    for client in (APIClient(), api_client(key_a), api_client("vk_not-a-real-key")):
        for method in ("get", "post", "put", "delete"):
            body = _assert_shape(getattr(client, method)(path), 404, "not_found")
            assert path.strip("/") not in body["error"]["message"]  # the request is never echoed


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_wrong_method_and_missing_slash_are_in_the_error_shape_under_debug(settings, client_a, debug) -> None:
    settings.DEBUG = debug
    body = _assert_shape(client_a.put("/api/v1/keys/"), 405, "method_not_allowed")
    assert "PUT" in body["error"]["message"]
    _assert_shape(client_a.delete("/api/v1/schema/"), 405, "method_not_allowed")
    # A POST without the trailing slash: no redirect that drops the body, no DEBUG RuntimeError (a 500).
    body = _assert_shape(client_a.post("/api/v1/keys", {"name": "x"}, format="json"), 404, "not_found")
    assert body["error"]["details"] == {"did_you_mean": "/api/v1/keys/"}


def test_plain_django_errors_under_api_are_reshaped_and_pages_are_left_alone(rf) -> None:
    from django.http import HttpResponse, HttpResponseNotAllowed

    from config.api.middleware import ApiErrorShapeMiddleware

    def answer(response):
        return ApiErrorShapeMiddleware(lambda request: response)

    not_allowed = answer(HttpResponseNotAllowed(["GET", "POST"]))(rf.patch("/api/v1/anything/"))
    body = _assert_shape(not_allowed, 405, "method_not_allowed")
    assert body["error"]["details"] == {"allowed": ["GET", "POST"]} and not_allowed["Allow"] == "GET, POST"
    csrf = answer(HttpResponse("<h1>Forbidden (403)</h1> CSRF verification failed", status=403))
    _assert_shape(csrf(rf.post("/api/v1/keys/")), 403, "permission_denied")
    crash = answer(HttpResponse("<html>Traceback ... SECRET_KEY</html>", status=500))(rf.get("/api/v1/"))
    assert b"SECRET_KEY" not in _assert_shape(crash, 500, "server_error") and b"SECRET" not in crash.content
    page = HttpResponse("<h1>Not found</h1>", status=404)
    assert answer(page)(rf.get("/c/nope/")) is page


def test_a_reshaped_error_keeps_the_headers_the_inner_middleware_set(settings) -> None:
    """Under DEBUG Django's HTML 404 is rewritten into the error shape; the security headers stay."""
    settings.DEBUG = True
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert int(response.get("Content-Length", len(response.content))) == len(response.content)
