import pytest
from django.urls import reverse

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from tests.conftest import api_client
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def test_api_root_with_a_key_names_the_keys_organization(client_a, org_a) -> None:
    response = client_a.get("/api/v1/")
    assert response.status_code == 200
    assert response.json()["organization"]["slug"] == org_a.slug


def test_api_root_without_a_key_is_401_in_the_error_shape() -> None:
    response = api_client().get("/api/v1/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer vsg_deadbeef_not-a-real-secret", "Unknown API key."),
        ("Bearer something-else", "Malformed API key."),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer a b", "Malformed Authorization header"),
    ],
)
def test_bad_keys_are_401_with_a_clear_message(header: str, message: str) -> None:
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith(message)


def test_revoked_key_is_401(org_a) -> None:
    api_key, raw = make_api_key(org_a)
    api_key_revoke(api_key=api_key)
    response = api_client(raw).get("/api/v1/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_key_is_stored_only_as_a_hash(org_a) -> None:
    api_key, raw = make_api_key(org_a)
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert raw not in str(row)
    assert raw.startswith(f"vsg_{api_key.prefix}_")


def test_x_api_key_header_works_too(org_a) -> None:
    _, raw = make_api_key(org_a)
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/", HTTP_X_API_KEY=raw)
    assert response.status_code == 200


def test_use_is_recorded_on_the_key(org_a) -> None:
    api_key, raw = make_api_key(org_a)
    api_client(raw).get("/api/v1/")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_read_only_key_cannot_write(org_a) -> None:
    api_key, raw = make_api_key(org_a, scopes=("read",))
    client = api_client(raw)
    assert client.get(reverse("api:key-list")).status_code == 200
    response = client.post(reverse("api:key-revoke", kwargs={"prefix": api_key.prefix}))
    assert response.status_code == 403
    assert "write" in response.json()["error"]["message"]
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_key_list_never_shows_secrets_or_hashes(client_a, org_a) -> None:
    api_key, raw = make_api_key(org_a)
    body = client_a.get(reverse("api:key-list")).content.decode()
    assert api_key.prefix in body
    assert raw not in body and api_key.key_hash not in body


def test_revoke_rotates_a_key_out_at_once(client_a, org_a) -> None:
    old, old_raw = make_api_key(org_a)
    response = client_a.post(reverse("api:key-revoke", kwargs={"prefix": old.prefix}))
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert api_client(old_raw).get("/api/v1/").status_code == 401


def test_member_session_authenticates_the_api(marketer_a, org_a) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(marketer_a)
    assert client.get("/api/v1/").json()["organization"]["slug"] == org_a.slug


def test_user_without_organization_gets_no_tenant_data(db) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    loner = get_user_model().objects.create_user(username="loner", password="x-123456!")
    client = APIClient()
    client.force_login(loner)
    response = client.get("/api/v1/keys/")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This account belongs to no organization."
