"""Marketers see only their own organization's rows in the admin; the organization is always shown."""

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiKey, Organization
from tests.factories import make_api_key, make_member

pytestmark = pytest.mark.django_db


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_marketer_sees_only_own_organizations_keys(org_a, org_b) -> None:
    mine, _ = make_api_key(org_a)
    theirs, _ = make_api_key(org_b)
    owner = make_member(org_a, role="owner")
    html = _logged_in(owner).get("/admin/accounts/apikey/").content.decode()
    assert mine.prefix in html
    assert theirs.prefix not in html
    assert org_a.name in html  # the organization column


def test_foreign_object_change_page_is_not_reachable(org_a, org_b) -> None:
    theirs, _ = make_api_key(org_b)
    owner = make_member(org_a, role="owner")
    response = _logged_in(owner).get(f"/admin/accounts/apikey/{theirs.pk}/change/", follow=True)
    assert theirs.prefix not in response.content.decode()


def test_key_created_in_admin_is_shown_once_and_belongs_to_the_members_organization(org_a) -> None:
    owner = make_member(org_a, role="owner")
    response = _logged_in(owner).post(
        "/admin/accounts/apikey/add/", {"name": "shop backend", "scopes": ["read"]}, follow=True
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="shop backend")
    assert api_key.organization == org_a
    assert api_key.scopes == ["read"]
    assert f"vsg_{api_key.prefix}_" in response.content.decode()


def test_marketer_role_cannot_manage_keys(org_a) -> None:
    marketer = make_member(org_a, role="marketer")
    assert _logged_in(marketer).get("/admin/accounts/apikey/").status_code == 403


def test_marketer_sees_only_own_organization(org_a, org_b) -> None:
    owner = make_member(org_a, role="owner")
    html = _logged_in(owner).get("/admin/accounts/organization/").content.decode()
    assert org_a.name in html and org_b.name not in html


def test_seed_demo_prints_a_working_key_and_login(capsys) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    raw_key = next(word for word in out.split() if word.startswith("vsg_"))
    from tests.conftest import api_client

    assert api_client(raw_key).get("/api/v1/").json()["organization"]["slug"] == "demo"
    assert "marketer / visage-demo" in out
    assert Client().login(username="marketer", password="visage-demo")
    call_command("seed_demo")  # running it again is fine
    assert Organization.objects.filter(slug="demo").count() == 1
