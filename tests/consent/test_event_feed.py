"""The partner event feed (GET /api/v1/events/): oldest first after a cursor, filtered by type, strictly the
caller's organization; a consumer that passes `next` back sees every event exactly once, in order."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import reverse

from consent.models import OutboxEvent
from consent.outbox import event_emit
from consent.services import consent_withdraw
from tests.conftest import api_client
from tests.factories import make_api_key, make_grant, make_notice, make_organization, make_subject

URL = "/api/v1/events/"


def _emit(organization, count: int, type: str = OutboxEvent.Type.PURGE_DONE) -> None:
    for n in range(count):
        event_emit(organization=organization, type=type, payload={"n": n})


@pytest.mark.django_db
def test_grant_and_withdrawal_appear_in_the_feed_with_subject_and_payload(client_a, org_a) -> None:
    subject = make_subject(org_a)
    notice = make_notice(org_a)
    make_grant(subject, notice)
    consent_withdraw(organization=org_a, subject=subject, channel="partner_api")
    body = client_a.get(URL).json()
    assert [e["type"] for e in body["results"]] == ["consent.granted", "consent.withdrawn"]
    granted, withdrawn = body["results"]
    assert granted["subject"] == withdrawn["subject"] == str(subject.public_id)
    assert granted["data"]["notice_hash"] == notice.text_hash and granted["data"]["purposes"] == ["face_analysis"]
    assert withdrawn["data"]["purposes"] == ["face_analysis"]
    assert [granted["id"], withdrawn["id"]] == ["1", "2"] and body["next"] == "2" and body["has_more"] is False
    assert set(granted) == {"id", "type", "occurred_at", "subject", "data"}


@pytest.mark.django_db
def test_pages_follow_the_cursor_newest_last(client_a, org_a) -> None:
    _emit(org_a, 5)
    first = client_a.get(URL, {"limit": 2}).json()
    assert [e["data"]["n"] for e in first["results"]] == [0, 1] and first["has_more"] is True
    second = client_a.get(URL, {"limit": 2, "after": first["next"]}).json()
    assert [e["data"]["n"] for e in second["results"]] == [2, 3] and second["has_more"] is True
    third = client_a.get(URL, {"limit": 2, "after": second["next"]}).json()
    assert [e["data"]["n"] for e in third["results"]] == [4] and third["has_more"] is False
    empty = client_a.get(URL, {"after": third["next"]}).json()
    assert empty == {"results": [], "next": third["next"], "has_more": False}  # poll again from the same cursor


@pytest.mark.django_db
def test_type_filter_takes_one_or_several_types(client_a, org_a) -> None:
    _emit(org_a, 2, OutboxEvent.Type.PURGE_DONE)
    _emit(org_a, 1, OutboxEvent.Type.EXPORT_READY)
    _emit(org_a, 1, OutboxEvent.Type.ERASURE_DONE)
    only = client_a.get(URL, {"type": "export.ready"}).json()
    assert [e["type"] for e in only["results"]] == ["export.ready"] and only["next"] == "3"
    several = client_a.get(URL, {"type": "export.ready,erasure.done"}).json()
    assert [e["type"] for e in several["results"]] == ["export.ready", "erasure.done"]


@pytest.mark.django_db
def test_unknown_type_is_a_400_listing_the_known_ones(client_a) -> None:
    response = client_a.get(URL, {"type": "consent.granted,segment.entered"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_event_type" and error["path"] == "type"
    assert error["details"]["unknown"] == ["segment.entered"]
    assert set(error["details"]["known"]) == set(OutboxEvent.Type.values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [{"after": "-1"}, {"after": "abc"}, {"after": "1.5"}, {"after": ""}, {"after": "9" * 25},
     {"after": str(2**63)}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"type": ""},
     {"type": "consent.granted,"}],
)
def test_bad_cursor_limit_or_type_is_a_400_in_the_error_shape(client_a, query) -> None:
    response = client_a.get(URL, query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"invalid", "unknown_event_type"}


@pytest.mark.django_db
def test_a_repeated_cursor_is_a_400(client_a) -> None:
    assert client_a.get(f"{URL}?after=1&after=2").status_code == 400


@pytest.mark.django_db
def test_limit_up_to_1000(client_a, org_a) -> None:
    _emit(org_a, 3)
    assert len(client_a.get(URL, {"limit": 1000}).json()["results"]) == 3


@pytest.mark.django_db
def test_sequences_are_per_organization_and_the_feed_shows_only_the_callers(client_a, org_a, org_b) -> None:
    _emit(org_b, 3, OutboxEvent.Type.EXPORT_READY)
    _emit(org_a, 1)
    body = client_a.get(URL).json()
    assert [(e["id"], e["type"]) for e in body["results"]] == [("1", "purge.done")]
    assert client_a.get(URL, {"type": "export.ready"}).json()["results"] == []


@pytest.mark.django_db
def test_a_key_without_read_scope_is_refused(org_a) -> None:
    _, raw = make_api_key(org_a, scopes=("decide",))
    response = api_client(raw).get(URL)
    assert response.status_code == 403
    assert api_client().get(URL).status_code == 401


@pytest.mark.django_db
def test_the_url_name_is_the_feed() -> None:
    assert reverse("api:events") == URL


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_consumer_polling_while_events_commit_sees_each_exactly_once_in_order() -> None:
    """Writers hold their transaction open a random while after numbering an event, as a slow request does; a
    consumer polls with the stored cursor meanwhile. The feed's numbering in commit order means no event is
    skipped (committed late under a lower number) or repeated."""
    if connection.vendor != "postgresql":
        pytest.fail("Concurrent commits need PostgreSQL: run with DATABASE_URL=postgres://...")
    organization = make_organization()
    _, raw = make_api_key(organization)
    writers, per_writer = 4, 25
    done = threading.Event()
    seen: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            rng = random.Random(writer)
            for n in range(per_writer):
                with transaction.atomic():
                    event_emit(organization=organization, type=OutboxEvent.Type.PURGE_DONE,
                               payload={"writer": writer, "n": n})
                    time.sleep(rng.random() * 0.01)
        except BaseException as error:  # the assertion below shows it
            errors.append(error)
        finally:
            connection.close()

    def consume() -> None:
        client, cursor = api_client(raw), "0"
        try:
            while True:
                finished = done.is_set()  # read before the poll: a poll after the last commit ends the walk
                body = client.get(URL, {"after": cursor, "limit": 7}).json()
                seen.extend((int(e["id"]), e["data"]["writer"], e["data"]["n"]) for e in body["results"])
                cursor = body["next"]
                if finished and not body["has_more"]:
                    return
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    consumer.join(timeout=60)
    assert not errors, errors
    sequences = [s for s, _, _ in seen]
    assert sequences == list(range(1, writers * per_writer + 1))  # every one, once, in order
    assert sorted((w, n) for _, w, n in seen) == [(w, n) for w in range(writers) for n in range(per_writer)]
    for writer in range(writers):  # each writer's events in the order it committed them
        assert [n for _, w, n in seen if w == writer] == list(range(per_writer))
