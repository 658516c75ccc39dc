"""Every admin link a member is shown leads somewhere they may look: no bare 403 (or 500) behind a link, for
any role, from the index through the lists to each object's page and the links on it; and no page shows a
bare "None" for an empty value."""

from __future__ import annotations

import re
from collections import deque

import pytest
from django.test import Client

from accounts.models import Organization
from tests.faceanalysis.conftest import fake_engine  # noqa: F401  (a fixture: the FAKE engine, no model)
from tests.factories import make_api_key, make_campaign, make_grant, make_member, make_notice, make_subject

pytestmark = pytest.mark.django_db

HREF = re.compile(r'href="(/admin/[^"?#]*)')
NONE_SHOWN = re.compile(r">\s*None\s*<")
SKIP = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/", "/admin/r/")


def _populate(org: Organization) -> None:
    """One row of every kind a member's admin lists, with the foreign keys its pages link."""
    from faceanalysis.services.context import session_aggregates_refresh
    from faceanalysis.services.intake import IncomingFrame, frame_intake
    from faceanalysis.services.worker import frame_analyze
    from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session

    owner = make_member(org, role="owner")
    api_key, _ = make_api_key(org)
    api_key.created_by = owner
    api_key.save(update_fields=["created_by"])
    make_grant(make_subject(org), make_notice(org))
    from consent.data_requests import data_request_create

    for kind in ("export", "erasure"):
        subject = make_subject(org)
        make_grant(subject, make_notice(org))
        data_request_create(organization=org, subject=subject, kind=kind, channel="admin_paper",
                            requested_by=f"user:{owner.pk}")
    make_campaign(org)
    session, _ = make_capture_session(org)
    frames = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg") for _ in range(2)])
    frame_analyze(frame_id=frames[0].pk)
    session_aggregates_refresh(session_id=session.pk, grant=session.grant)


def _crawl(client: Client, *, limit: int = 400, showing_none: list[str] | None = None) -> dict[str, int]:
    """Status of every /admin/ page reachable by links from the index (each list's rows included); pages that
    show a bare "None" are added to `showing_none`."""
    seen: dict[str, int] = {}
    todo = deque(["/admin/"])
    while todo and len(seen) < limit:
        url = todo.popleft()
        if url in seen or url.startswith(SKIP) or url.endswith(("/delete/", "/history/")):
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            html = response.content.decode()
            todo.extend(HREF.findall(html))
            if showing_none is not None and NONE_SHOWN.search(html):
                showing_none.append(url)
    return seen


@pytest.mark.usefixtures("fake_engine")
@pytest.mark.parametrize("role", ["owner", "marketer", "analyst", "read_only"])
def test_no_admin_link_a_member_is_shown_answers_403(org_a, role: str) -> None:
    _populate(org_a)
    client = Client()
    client.force_login(make_member(org_a, role=role))
    showing_none: list[str] = []
    statuses = _crawl(client, showing_none=showing_none)
    assert len(statuses) > 5, statuses
    assert any(url.startswith("/admin/consent/datarequest/") and url.endswith("/change/") for url in statuses)
    assert {url: code for url, code in statuses.items() if code not in (200, 302)} == {}
    assert showing_none == []  # an empty value is an em dash


def test_a_marketer_sees_their_organization_read_only_and_no_other(org_a, org_b) -> None:
    client = Client()
    client.force_login(make_member(org_a, role="marketer"))
    page = client.get(f"/admin/accounts/organization/{org_a.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert org_a.name in html and 'name="name"' not in html  # shown, not editable
    assert client.post(f"/admin/accounts/organization/{org_a.pk}/change/", {"name": "Renamed", "slug": "x"}
                       ).status_code == 403
    assert client.get(f"/admin/accounts/organization/{org_b.pk}/change/", follow=True).content.decode().count(
        org_b.name) == 0
    org_a.refresh_from_db()
    assert org_a.name != "Renamed"
