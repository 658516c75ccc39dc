import pytest
from rest_framework.test import APIClient

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
        }
    }


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
