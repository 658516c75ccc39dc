"""API rate limits: counted atomically (many threads pass exactly the limit), one bucket per caller and per
organization, never shared between organizations, 429 with Retry-After, and open when the cache is away.

Runs against Redis when REDIS_URL is set (the cache is RedisCache) and against local memory otherwise."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.settings import api_settings

from config.api import throttling
from config.api.throttling import PrincipalRateThrottle
from tests.conftest import api_client
from tests.faceanalysis.factories import make_capture_session
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def frozen_window(monkeypatch) -> Iterator[None]:
    """Every hit falls in one window: a test must not straddle a minute boundary and see two windows."""
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: 1_800_000_030.0), raising=False)
    yield


@pytest.fixture
def rates() -> Iterator[dict[str, str | None]]:
    """The throttle's rates, for this test only."""
    rates: dict[str, str | None] = {}
    PrincipalRateThrottle.THROTTLE_RATES = rates
    yield rates
    PrincipalRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_parallel_requests_pass_exactly_the_limit(org_a, frozen_window, rates) -> None:
    rates["principal"] = "1200/min"
    key, _ = make_api_key(org_a)
    request = SimpleNamespace(auth=key, user=AnonymousUser(), META={"REMOTE_ADDR": "203.0.113.9"})
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def hammer() -> None:
        throttle = PrincipalRateThrottle()
        start.wait()
        results = [throttle.allow_request(request, None) for _ in range(200)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 3200
    assert sum(allowed) == 1200


def test_capture_sessions_of_two_organizations_never_share_a_bucket(org_a, org_b, frozen_window, rates) -> None:
    rates["principal"] = "2/min"
    session_a, token_a = make_capture_session(org_a)
    session_b, token_b = make_capture_session(org_b)
    client_a, client_b = api_client(token_a), api_client(token_b)
    url = "/api/v1/capture-sessions/{}/"
    codes_a = [client_a.get(url.format(session_a.public_id)).status_code for _ in range(3)]
    assert codes_a == [200, 200, 429]
    # Before: every capture token counted as "user:None", one bucket for all of them.
    assert client_b.post(url.format(session_b.public_id) + "end/").status_code == 200


def test_two_capture_sessions_of_one_organization_have_their_own_buckets(org_a, frozen_window, rates) -> None:
    rates["principal"] = "2/min"
    first, first_token = make_capture_session(org_a)
    second, second_token = make_capture_session(org_a)
    url = "/api/v1/capture-sessions/{}/"
    assert [api_client(first_token).get(url.format(first.public_id)).status_code for _ in range(3)] == [
        200, 200, 429]
    assert api_client(second_token).get(url.format(second.public_id)).status_code == 200


def test_an_organizations_keys_together_have_a_ceiling_that_no_other_organization_shares(
    org_a, org_b, key_b, frozen_window, rates
) -> None:
    rates.update(principal="100/min", organization="3/min")
    one, two = api_client(make_api_key(org_a)[1]), api_client(make_api_key(org_a)[1])
    codes = [one.get("/api/v1/").status_code, two.get("/api/v1/").status_code, one.get("/api/v1/").status_code]
    assert codes == [200, 200, 200]
    refused = two.get("/api/v1/")
    assert refused.status_code == 429
    assert api_client(key_b).get("/api/v1/").status_code == 200


def test_throttled_answer_has_retry_after_header_and_seconds(key_a, frozen_window, rates) -> None:
    rates["principal"] = "1/min"
    client = api_client(key_a)
    assert client.get("/api/v1/").status_code == 200
    response = client.get("/api/v1/")
    assert response.status_code == 429
    # The frozen clock sits 30 s into its minute.
    assert response.json()["error"] == {
        "code": "throttled", "message": response.json()["error"]["message"],
        "details": {"retry_after_seconds": 30},
    }
    assert response["Retry-After"] == "30"


def test_anonymous_callers_cannot_escape_their_bucket_with_a_forwarded_header(org_a, frozen_window, rates) -> None:
    rates["principal"] = "2/min"
    client = api_client()
    url = "/api/v1/capture/sessions/"
    codes = [client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
             for i in range(3)]
    assert codes[:2] == [400, 400] and codes[2] == 429


def test_rate_limits_fail_open_with_one_warning_when_the_cache_is_away(key_a, settings, caplog, rates) -> None:
    rates["principal"] = "1/min"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD_REDIS,
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    client = api_client(key_a)
    with caplog.at_level(logging.WARNING, logger="visage.outage"):
        codes = [client.get("/api/v1/").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    warnings = [r for r in caplog.records if r.name == "visage.outage"]
    assert len(warnings) == 1
    assert "rate limits are not enforced" in warnings[0].getMessage()


def test_a_hanging_cache_costs_one_request_its_timeout_not_every_request(key_a, settings, rates) -> None:
    """A Redis that accepts connections and never answers (a socket that accepts and stays silent): the first
    request waits for it (redis-py's own retry included), then the cache is skipped for a few seconds, so the
    other requests never connect to it at all."""
    rates["principal"] = "100/min"
    accepted: list[socket.socket] = []
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        hanging.settimeout(0.1)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(hanging.accept()[0])
                except TimeoutError:
                    continue

        acceptor = threading.Thread(target=accept)
        acceptor.start()
        settings.CACHES = {"default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{hanging.getsockname()[1]}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }}
        client = api_client(key_a)
        try:
            codes = [client.get("/api/v1/").status_code for _ in range(6)]
        finally:
            stop.set()
            acceptor.join(5)
            for conn in accepted:
                conn.close()
    assert codes == [200] * 6
    # The first request's attempt and redis-py's one retry; none for the five requests after it.
    assert 1 <= len(accepted) <= 2, f"{len(accepted)} connections to the hanging cache for six requests"


def test_decisions_count_in_their_own_buckets_at_their_own_rate(org_a, frozen_window, rates) -> None:
    from tests.factories import make_campaign, make_variant

    rates.update({"principal": "2/min", "decisions_principal": "3/min"})
    campaign = make_campaign(org_a)
    make_variant(campaign, key="standard", default=True)
    _, raw = make_api_key(org_a)
    client = api_client(raw)
    body = {"campaign": campaign.public_id, "visitor_id": "visitor-throttled-0001"}
    decided = [client.post("/api/v1/decisions/", body, format="json").status_code for _ in range(4)]
    assert decided == [200, 200, 200, 429]  # the decisions' rate, not the API's 2/min
    # Page views did not eat the key's budget for the rest of the API, which keeps its own limit.
    assert [client.get("/api/v1/").status_code for _ in range(3)] == [200, 200, 429]
