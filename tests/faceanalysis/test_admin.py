"""The capture-session admin: a session's page shows its aggregates to every member role of its organization
(and to nobody else), and an empty number is an em dash, never "None"."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from faceanalysis.models import CaptureSession, Frame
from faceanalysis.services.context import session_aggregates_refresh
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frame_analyze, frame_drop
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session
from tests.factories import make_member

pytestmark = pytest.mark.django_db

NONE_SHOWN = re.compile(r">\s*None\s*<")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _analysed_session(org, *, analysed: int = 3) -> CaptureSession:
    """A session with `analysed` frames analysed by the FAKE engine, one dropped for consent, one failed."""
    session, _ = make_capture_session(org)
    frames = frame_intake(
        session=session,
        frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg", media_time_ms=i * 400) for i in range(analysed + 2)],
    )
    for frame in frames[:analysed]:
        frame_analyze(frame_id=frame.pk)
    frame_drop(frame_id=frames[analysed].pk, reason="consent_withdrawn")
    Frame.objects.filter(pk=frames[analysed + 1].pk).update(status=Frame.Status.FAILED, reason="decode_error")
    if analysed:
        session_aggregates_refresh(session_id=session.pk, grant=session.grant)
    return session


def _row(html: str, label: str) -> str:
    """The value cell of the aggregates row with this label."""
    match = re.search(rf'<th scope="row">{re.escape(label)}</th><td>(.*?)</td>', html, re.S)
    assert match, (label, html[html.find('id="session-aggregates"'):][:3000])
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


@pytest.mark.parametrize("role", ["owner", "marketer", "analyst"])
def test_session_page_shows_the_sessions_aggregates_to_each_member_role(org_a, fake_engine, role: str) -> None:
    session = _analysed_session(org_a)
    html = _client(make_member(org_a, role=role)).get(
        reverse("admin:faceanalysis_capturesession_change", args=[session.pk])
    ).content.decode()
    assert 'id="session-aggregates"' in html
    # The FAKE engine's one face looks at the screen and smiles (0.8) with "happy" in every frame.
    assert _row(html, "Frames analysed") == "3"
    assert _row(html, "Frames counted") == "3"
    assert _row(html, "Attention share").startswith("100 %")
    assert _row(html, "Mean attention score") == "0.95"
    assert _row(html, "Smile share") == "100 %"
    assert _row(html, "happy") == "100 %" and _row(html, "neutral") == "0 %"
    assert _row(html, "Blink rate").startswith("—")  # under 10 s observed
    assert _row(html, "Quality rejections") == "0 % (0 of 3 analysed)"
    assert _row(html, "Analysed") == "3"
    assert _row(html, "Dropped (no consent)") == "1"
    assert _row(html, "Failed") == "1"
    latency = _row(html, "Latency p50 / p95 / max (ms)")
    assert re.fullmatch(r"\d+\.\d / \d+\.\d / \d+\.\d", latency), latency
    assert not NONE_SHOWN.search(html)


def test_another_organizations_session_page_shows_nothing_of_it(org_a, org_b, fake_engine) -> None:
    theirs = _analysed_session(org_b)
    response = _client(make_member(org_a, role="owner")).get(
        reverse("admin:faceanalysis_capturesession_change", args=[theirs.pk]), follow=True
    )
    assert "session-aggregates" not in response.content.decode()
    assert str(theirs.public_id) not in response.content.decode()


def test_empty_numbers_are_an_em_dash_not_none(org_a, fake_engine) -> None:
    """No frame analysed yet: no latency, no shares, no end time; the pages say "—"."""
    session = _analysed_session(org_a, analysed=0)
    client = _client(make_member(org_a, role="marketer"))
    listing = client.get(reverse("admin:faceanalysis_capturesession_changelist")).content.decode()
    stats = listing[listing.find('id="pipeline-stats"'):]
    assert "Latency p50 / p95 / p99 (ms)</th>\n        <td>— / — / —</td>" in stats
    assert not NONE_SHOWN.search(listing) and "None /" not in listing
    page = client.get(reverse("admin:faceanalysis_capturesession_change", args=[session.pk])).content.decode()
    assert _row(page, "Latency p50 / p95 / max (ms)") == "—"
    assert _row(page, "Attention share").startswith("—")
    assert _row(page, "Quality rejections") == "—"
    assert not NONE_SHOWN.search(page)
    failed = Frame.objects.get(session=session, status=Frame.Status.FAILED)
    frame_page = client.get(reverse("admin:faceanalysis_frame_change", args=[failed.pk])).content.decode()
    assert not NONE_SHOWN.search(frame_page)
    frames = client.get(reverse("admin:faceanalysis_frame_changelist")).content.decode()
    assert '<td class="field-finished_at nowrap">—</td>' in frames  # marked failed here without a finish time
