"""Operator views: the stats endpoint (scoped to the caller's organization) and the read-only admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from faceanalysis.models import Frame
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frame_analyze, frame_drop
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _pipeline(org, fake_engine) -> None:
    session, _ = make_capture_session(org)
    frames = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg") for _ in range(4)])
    frame_analyze(frame_id=frames[0].pk)
    frame_drop(frame_id=frames[1].pk, reason="consent_withdrawn")
    Frame.objects.filter(pk=frames[2].pk).update(status=Frame.Status.FAILED, reason="decode_error")


def test_stats_count_outcomes_by_reason_for_the_callers_organization(client_a, org_a, org_b, fake_engine) -> None:
    _pipeline(org_a, fake_engine)
    _pipeline(org_b, fake_engine)
    stats = client_a.get(reverse("api:analysis-stats")).json()
    assert stats["queued_now"] == 1
    assert stats["received_in_window"] == 4
    assert stats["dropped_for_consent"] == 1
    assert stats["failures_by_reason"] == {"decode_error": 1}
    assert stats["outcomes"]["analyzed"] == {"analyzed": 1}
    assert stats["analyzed_per_second_last_minute"] == round(1 / 60, 2)
    assert stats["latency_ms"]["samples"] == 1
    assert len(stats["recent_problems"]) == 2
    assert "broker_queue_depths" not in stats  # all tenants' load: operators (superusers) only


def test_stats_window_is_validated(client_a) -> None:
    assert client_a.get(reverse("api:analysis-stats"), {"window": "0"}).status_code == 400


def test_admin_shows_the_pipeline_to_a_member_and_sessions_are_read_only(org_a, fake_engine) -> None:
    _pipeline(org_a, fake_engine)
    client = Client()
    client.force_login(make_member(org_a, role="owner"))
    page = client.get(reverse("admin:faceanalysis_capturesession_changelist"))
    assert page.status_code == 200
    assert b"Dropped for consent" in page.content and b"Failed: decode_error" in page.content
    assert client.get(reverse("admin:faceanalysis_frame_add")).status_code == 403
    frames = client.get(reverse("admin:faceanalysis_frame_changelist"), {"status__exact": "dropped"})
    assert frames.status_code == 200
