"""Fixtures shared by every test: tenants, members, keys and API clients."""

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import make_api_key, make_member, make_organization


def pytest_sessionstart(session: pytest.Session) -> None:
    """With VISAGE_REQUIRE_SERVICES=1 the run must be on PostgreSQL and Redis; never a silent fallback."""
    if os.environ.get("VISAGE_REQUIRE_SERVICES") != "1":
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(f"VISAGE_REQUIRE_SERVICES=1 but the database engine is {engine}", returncode=3)
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.exit(f"VISAGE_REQUIRE_SERVICES=1 but Redis at {settings.REDIS_URL!r} is unreachable: {exc}", 3)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters and cached state must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _forget_outages() -> None:
    """Outage warnings and skipped services are per process: each test sees the next outage at once."""
    from config.outage import reset_outage_reports

    reset_outage_reports()


@pytest.fixture
def eager(settings):
    """Tasks run in-process (after commit, in the request or test that queues them), as on the embedded default,
    whatever the stack."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def org_a(db):
    return make_organization(name="Org A")


@pytest.fixture
def org_b(db):
    return make_organization(name="Org B")


@pytest.fixture
def key_a(org_a) -> str:
    return make_api_key(org_a)[1]


@pytest.fixture
def key_b(org_b) -> str:
    return make_api_key(org_b)[1]


def api_client(raw_key: str | None = None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def client_a(key_a) -> APIClient:
    return api_client(key_a)


@pytest.fixture
def client_b(key_b) -> APIClient:
    return api_client(key_b)


@pytest.fixture
def marketer_a(org_a):
    return make_member(org_a, role="marketer")
