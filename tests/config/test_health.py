import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def test_healthz_answers_json_without_auth() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(settings) -> None:
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["status"] == "up"
    if settings.REDIS_URL:
        assert body["checks"]["redis"]["status"] == "up"
        assert body["checks"]["broker"]["status"] in {"up", "in_process"}
    else:
        assert body["checks"]["redis"]["status"] == "not_configured"


@pytest.mark.services
def test_readyz_is_503_and_names_redis_when_redis_is_down() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] == "down"
    assert response.json()["checks"]["database"]["status"] == "up"
