"""A key of organization A never reads, lists or changes a row of organization B, on any endpoint."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import api_client
from tests.factories import make_api_key
from tests.tenancy import LIST_ENDPOINTS, NO_TENANT_DATA, OBJECT_ENDPOINTS, TenantEndpoint


def _api_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace == "api" and pattern.name:
                names.add(f"api:{pattern.name}")

    walk(get_resolver().url_patterns, None)
    return names


def _with_scopes(endpoint: TenantEndpoint, organization):
    """A client whose key has the endpoint's extra scopes too; None when it needs none."""
    if not endpoint.scopes:
        return None
    return api_client(make_api_key(organization, scopes=("read", "write", *endpoint.scopes))[1])


def test_every_api_endpoint_is_in_the_tenant_matrix() -> None:
    listed = {e.url_name for e in OBJECT_ENDPOINTS + LIST_ENDPOINTS} | NO_TENANT_DATA
    missing = _api_url_names() - listed
    assert not missing, f"Add these endpoints to tests/tenancy.py: {sorted(missing)}"


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=lambda e: e.url_name)
def test_foreign_object_is_not_found_like_a_missing_one(endpoint: TenantEndpoint, client_a, org_a, org_b) -> None:
    kwargs, marker = endpoint.make_foreign(org_b)
    client_a = _with_scopes(endpoint, org_a) or client_a
    for method in endpoint.methods:
        response = getattr(client_a, method)(reverse(endpoint.url_name, kwargs=kwargs), endpoint.body, format="json")
        assert response.status_code == 404, (method, response.content)
        assert response.json()["error"]["code"] == "not_found"
        assert marker not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=lambda e: e.url_name)
def test_foreign_rows_never_appear_in_lists(endpoint: TenantEndpoint, client_a, org_b) -> None:
    kwargs, marker = endpoint.make_foreign(org_b)
    for method in endpoint.methods:
        response = getattr(client_a, method)(reverse(endpoint.url_name, kwargs=kwargs), format="json")
        assert response.status_code == 200, response.content
        assert marker not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=lambda e: e.url_name)
def test_owner_reaches_its_own_object(endpoint: TenantEndpoint, client_b, org_b) -> None:
    """The other side of the matrix: the same call with B's own key succeeds, so the 404 above means isolation."""
    kwargs, _ = endpoint.make_foreign(org_b)
    client_b = _with_scopes(endpoint, org_b) or client_b
    for method in endpoint.methods:
        response = getattr(client_b, method)(reverse(endpoint.url_name, kwargs=kwargs), endpoint.body, format="json")
        assert response.status_code < 300, (method, response.content)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint", [e for e in LIST_ENDPOINTS if e.url_name != "api:root"], ids=lambda e: e.url_name
)
def test_owner_sees_its_own_rows_in_lists(endpoint: TenantEndpoint, client_b, org_b) -> None:
    """The other side: B's own key sees the marker, so its absence for A means isolation."""
    kwargs, marker = endpoint.make_foreign(org_b)
    response = client_b.get(reverse(endpoint.url_name, kwargs=kwargs), format="json")
    assert marker in response.content.decode()
