"""The cross-tenant matrix: every /api/v1/ endpoint is listed here, and a key of organization A must
never read, list or change a row of organization B through it. A new endpoint that is not listed
fails `test_every_api_endpoint_is_in_the_tenant_matrix`.

Each maker takes organization B and returns (url kwargs, marker): the kwargs address B's object, and
the marker is a string that must never appear in anything A receives.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Organization
from tests.factories import make_api_key

Maker = Callable[[Organization], tuple[dict[str, Any], str]]


@dataclass(frozen=True)
class TenantEndpoint:
    url_name: str
    methods: tuple[str, ...]
    make_foreign: Maker
    body: dict[str, Any] = field(default_factory=dict)


def _foreign_key(org: Organization) -> tuple[dict[str, Any], str]:
    api_key, _ = make_api_key(org)
    return {"prefix": api_key.prefix}, api_key.prefix


def _foreign_key_listed(org: Organization) -> tuple[dict[str, Any], str]:
    api_key, _ = make_api_key(org)
    return {}, api_key.prefix


# Endpoints that address one object: A gets the same 404 as for an object that does not exist.
OBJECT_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:key-detail", ("get",), _foreign_key),
    TenantEndpoint("api:key-revoke", ("post",), _foreign_key),
]

# Endpoints that list or summarise: B's marker never appears in A's answer.
LIST_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:root", ("get",), _foreign_key_listed),
    TenantEndpoint("api:key-list", ("get",), _foreign_key_listed),
]

# Endpoints that carry no tenant data at all.
NO_TENANT_DATA: set[str] = {"api:schema", "api:docs"}
