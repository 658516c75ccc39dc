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


def _foreign_subject(org: Organization) -> tuple[dict[str, Any], str]:
    """A subject of B with a live grant, so that withdraw and history have something to leak."""
    from tests.factories import make_grant, make_notice, make_subject

    subject = make_subject(org, partner_user_id="shared-user-id")
    notice = make_notice(org)
    make_grant(subject, notice)
    # The grant body must name B's own notice for B's call to succeed; the maker fills it in.
    _grant_body.update(purposes=["face_analysis"], notice_hash=notice.text_hash, language=notice.language)
    return {"subject_id": str(subject.public_id)}, str(subject.public_id)


def _foreign_notice_listed(org: Organization) -> tuple[dict[str, Any], str]:
    from tests.factories import make_notice

    return {}, make_notice(org).text_hash


def _foreign_subject_listed(org: Organization) -> tuple[dict[str, Any], str]:
    kwargs, marker = _foreign_subject(org)
    return {}, marker


_grant_body: dict[str, Any] = {}

# Endpoints that address one object: A gets the same 404 as for an object that does not exist.
OBJECT_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:key-detail", ("get",), _foreign_key),
    TenantEndpoint("api:key-revoke", ("post",), _foreign_key),
    TenantEndpoint("api:consent-subject-detail", ("get",), _foreign_subject),
    TenantEndpoint("api:consent-subject-grant", ("post",), _foreign_subject, body=_grant_body),
    TenantEndpoint("api:consent-subject-withdraw", ("post",), _foreign_subject),
    TenantEndpoint("api:consent-subject-history", ("get",), _foreign_subject),
]

# Endpoints that list or summarise: B's marker never appears in A's answer.
LIST_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:root", ("get",), _foreign_key_listed),
    TenantEndpoint("api:key-list", ("get",), _foreign_key_listed),
    TenantEndpoint("api:consent-notice-list", ("get",), _foreign_notice_listed),
    TenantEndpoint("api:consent-subject-list", ("get",), _foreign_subject_listed),
]

# Endpoints that carry no tenant data at all.
NO_TENANT_DATA: set[str] = {"api:schema", "api:docs"}
