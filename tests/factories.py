"""Plain typed makers for test data."""

import itertools

from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, membership_set, organization_create

_counter = itertools.count(1)


def make_organization(*, name: str = "Acme") -> Organization:
    n = next(_counter)
    return organization_create(name=f"{name} {n}", slug=f"{name.lower().replace(' ', '-')}-{n}")


def make_member(organization: Organization, *, role: str = Membership.Role.MARKETER, password: str = "pw-123456!"):
    user = get_user_model().objects.create_user(username=f"user{next(_counter)}", password=password)
    membership_set(user=user, organization=organization, role=role)
    return user


def make_api_key(organization: Organization, *, scopes: tuple[str, ...] = ("read", "write")) -> tuple[ApiKey, str]:
    return api_key_create(organization=organization, name=f"key {next(_counter)}", scopes=scopes)
