"""Frame bytes live at most their organization's frame_bytes_seconds (consent.retention), never above the
operator's ceiling (VISAGE_FRAME_TTL_SECONDS) nor Visage's hard maximum; the in-flight copy never extends that, and
the expiry sweep counts with the same TTL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.retention import FRAME_BYTES_MAX_SECONDS
from consent.selectors import frame_bytes_ttl_seconds
from consent.services import retention_policy_set
from faceanalysis import store as store_module
from faceanalysis.models import Frame
from faceanalysis.selectors import capture_session_for_token, frame_ttl_seconds
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frames_expire
from faceanalysis.store import MemoryFrameStore, RedisFrameStore, frame_store
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session

pytestmark = pytest.mark.django_db


def test_the_ttl_is_the_policy_under_the_operators_ceiling_and_the_hard_maximum(settings) -> None:
    settings.VISAGE_FRAME_TTL_SECONDS = 300
    assert frame_bytes_ttl_seconds(45) == 45
    assert frame_bytes_ttl_seconds(None) == 120  # no policy: the category's default
    assert frame_bytes_ttl_seconds(500) == 300  # the operator's ceiling
    settings.VISAGE_FRAME_TTL_SECONDS = 7200
    assert frame_bytes_ttl_seconds(600) == FRAME_BYTES_MAX_SECONDS
    assert frame_bytes_ttl_seconds(None) == 120


def test_a_session_read_by_its_capture_token_carries_the_ttl_and_needs_no_query_more(
    org_a, django_assert_num_queries
) -> None:
    retention_policy_set(organization=org_a, frame_bytes_seconds=42)
    session, token = make_capture_session(org_a)
    with django_assert_num_queries(1):
        found = capture_session_for_token(token=token)
        assert frame_ttl_seconds(session=found) == 42
    with django_assert_num_queries(1):  # a session read otherwise (an API key's call): one query a request
        assert frame_ttl_seconds(session=session) == 42


def test_a_policy_change_applies_to_the_next_request(org_a) -> None:
    session, token = make_capture_session(org_a)
    retention_policy_set(organization=org_a, frame_bytes_seconds=15)
    assert frame_ttl_seconds(session=capture_session_for_token(token=token)) == 15


def test_the_memory_store_keeps_the_taken_copy_no_longer_than_the_queued_one(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    memory = MemoryFrameStore(ttl_seconds=300)
    memory.put_many({1: b"bytes"}, 10)
    clock[0] += 8
    assert memory.take(1) == b"bytes"
    clock[0] += 1
    assert memory.take(1) == b"bytes"  # the redelivery finds the parked copy
    clock[0] += 1.5
    assert memory.take(1) is None and not memory.exists(1)  # 10 s after intake, in flight or not


def _redis_store() -> RedisFrameStore:
    store = frame_store()
    if not isinstance(store, RedisFrameStore):
        pytest.fail("Needs the Redis frame store: run with REDIS_URL (see docs/data-rights.md).")
    return store


@pytest.mark.services
def test_a_policy_of_n_seconds_gives_redis_keys_that_live_at_most_n(org_a) -> None:
    store = _redis_store()
    retention_policy_set(organization=org_a, frame_bytes_seconds=37)
    session, token = make_capture_session(org_a)
    (frame,) = frame_intake(session=capture_session_for_token(token=token),
                            frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
    queued = f"{store.prefix}{frame.pk}"
    assert 0 < store.client.pttl(queued) <= 37_000
    assert store.take(frame.pk) is not None
    inflight = f"{queued}:inflight"
    assert not store.client.exists(queued)
    assert 0 < store.client.pttl(inflight) <= 37_000  # parked for what is left, not a fresh TTL
    assert store.take(frame.pk) is not None  # a redelivery takes the parked copy ...
    assert store.client.pttl(inflight) <= 37_000  # ... without extending it


@pytest.mark.services
def test_the_cap_holds_whatever_the_operator_configures(org_a, settings) -> None:
    settings.VISAGE_FRAME_TTL_SECONDS = 86400
    store_module._store_for.cache_clear()
    try:
        store = _redis_store()
        retention_policy_set(organization=org_a, frame_bytes_seconds=10**6)  # saved capped at 600
        session, _ = make_capture_session(org_a)
        (frame,) = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
        assert 0 < store.client.pttl(f"{store.prefix}{frame.pk}") <= FRAME_BYTES_MAX_SECONDS * 1000
        settings.VISAGE_FRAME_TTL_SECONDS = 5  # the operator's ceiling under the policy
        store_module._store_for.cache_clear()
        (frame,) = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
        assert 0 < frame_store().client.pttl(f"{store.prefix}{frame.pk}") <= 5000
    finally:
        frame_store().discard(list(Frame.objects.values_list("pk", flat=True)))
        store_module._store_for.cache_clear()


def test_the_sweep_expires_frames_past_their_organizations_ttl_only(org_a, org_b) -> None:
    retention_policy_set(organization=org_a, frame_bytes_seconds=10)
    retention_policy_set(organization=org_b, frame_bytes_seconds=120)
    frames = {}
    for organization in (org_a, org_b):
        session, _ = make_capture_session(organization)
        (frames[organization.pk],) = frame_intake(session=session,
                                                  frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])
    Frame.objects.update(received_at=timezone.now() - timedelta(seconds=30))
    frame_store().discard([f.pk for f in frames.values()])  # both gone from the store
    assert frames_expire() == 1  # org A's 10 s are over; org B's frame may still be on its way
    assert Frame.objects.get(pk=frames[org_a.pk].pk).status == Frame.Status.EXPIRED
    assert Frame.objects.get(pk=frames[org_b.pk].pk).status == Frame.Status.QUEUED
