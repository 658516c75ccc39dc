"""Racing consent decisions leave one consistent state and exactly one ledger entry per effective change."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from consent.ledger import ledger_append, ledger_verify
from consent.models import Grant, LedgerEntry
from consent.services import consent_grant, consent_withdraw
from tests.factories import make_grant, make_notice, make_organization, make_subject

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run with DATABASE_URL=postgres://... (see scripts/test).")


def _race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at the same moment, each in its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # the assertion below shows it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_racing_withdrawals_write_one_withdrawal() -> None:
    organization = make_organization()
    subject = make_subject(organization)
    make_grant(subject, make_notice(organization))

    def withdraw() -> list[Grant]:
        return consent_withdraw(organization=organization, subject=subject, channel="my_data_page")

    results = _race(withdraw, withdraw)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r) for r in results) == [0, 1]
    assert LedgerEntry.objects.filter(organization=organization, event="withdrawn").count() == 1
    assert Grant.objects.get(subject=subject).end_reason == "withdrawn"
    assert ledger_verify(organization=organization).ok


def test_racing_grant_and_withdrawal_end_in_one_consistent_state() -> None:
    organization = make_organization()
    notice = make_notice(organization)
    subject = make_subject(organization)
    make_grant(subject, notice)

    def grant() -> list[Grant]:
        return consent_grant(
            organization=organization, subject=subject, notice=notice, purposes=["face_analysis"], channel="partner_api"
        )

    def withdraw() -> list[Grant]:
        return consent_withdraw(organization=organization, subject=subject, channel="partner_api")

    results = _race(grant, withdraw)
    assert not [r for r in results if isinstance(r, Exception)], results
    open_grants = Grant.objects.filter(subject=subject, ended_at__isnull=True).count()
    # The withdrawal's purge receipt follows it on commit; the decisions are what raced.
    ledger = LedgerEntry.objects.filter(organization=organization).exclude(event="purged").order_by("sequence")
    events = list(ledger.values_list("event", flat=True))
    # Whichever ran second decides: grant last -> one open grant; withdrawal last -> none open.
    assert events[-2:] in (["granted", "withdrawn"], ["withdrawn", "granted"])
    assert open_grants == (1 if events[-1] == "granted" else 0)
    assert events.count("withdrawn") == 1 and events.count("granted") == 2
    assert ledger_verify(organization=organization).ok


def test_concurrent_appends_keep_one_unbroken_chain() -> None:
    organization = make_organization()

    def append_some() -> None:
        for _ in range(5):
            ledger_append(organization=organization, event="shown")

    results = _race(*[append_some] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    sequences = list(LedgerEntry.objects.filter(organization=organization).values_list("sequence", flat=True))
    assert sorted(sequences) == list(range(1, 21))
    assert ledger_verify(organization=organization).ok
