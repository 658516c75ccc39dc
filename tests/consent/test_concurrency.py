"""Racing consent decisions leave one consistent state and exactly one ledger entry per effective change."""

import threading
import time
import types
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from consent import guards as consent_guards
from consent import services as consent_services
from consent.guards import ConsentDenied, DenialReason, require_consent
from consent.ledger import ledger_append, ledger_verify
from consent.models import Grant, LedgerEntry
from consent.services import consent_grant, consent_withdraw, notice_retire
from tests.factories import make_grant, make_notice, make_organization, make_subject
from tests.races import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run with DATABASE_URL=postgres://... (see scripts/test).")


def test_two_racing_withdrawals_write_one_withdrawal() -> None:
    organization = make_organization()
    subject = make_subject(organization)
    make_grant(subject, make_notice(organization))

    def withdraw() -> list[Grant]:
        return consent_withdraw(organization=organization, subject=subject, channel="my_data_page")

    results = race(withdraw, withdraw)
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

    results = race(grant, withdraw)
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

    results = race(*[append_some] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    sequences = list(LedgerEntry.objects.filter(organization=organization).values_list("sequence", flat=True))
    assert sorted(sequences) == list(range(1, 21))
    assert ledger_verify(organization=organization).ok


# --- The guard answers from what is committed after it waited ----------------------------------------------------


class _Pause:
    """Holds one call of a service at a chosen point (inside its transaction, its locks held) until released."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        self._used = False

    def wrap(self, function: Callable[..., object]) -> Callable[..., object]:
        def paused(*args: object, **kwargs: object) -> object:
            if not self._used:
                self._used = True
                self.reached.set()
                self.release.wait(10)
            return function(*args, **kwargs)

        return paused


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for_lock_waiter(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _lock_waiters() == 0:
        assert time.monotonic() < deadline, "the guard never waited for the subject's lock"
        time.sleep(0.01)


def _guard_in_worker(subject_id: int, organization_id: int, results: list[object]) -> threading.Thread:
    """A worker's check, as the analysis task makes it: a transaction, the subject locked for share."""

    def run() -> None:
        try:
            with transaction.atomic():
                results.append(
                    require_consent(
                        organization_id=organization_id, subject_id=subject_id, purpose="face_analysis",
                        share_lock=True,
                    )
                )
        except Exception as exc:  # ConsentDenied is the expected answer; anything else fails the assertion
            results.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


def _in_thread(call: Callable[[], object], results: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(call())
        except Exception as exc:  # the assertion below shows it
            results.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


def _guard_answers_while_paused(
    pause: _Pause, holder: threading.Thread, subject, organization, meanwhile: Callable[[], None] = lambda: None
) -> list[object]:
    """Start `holder` (a consent change that stops at `pause` holding the subject's lock), ask the guard in a
    worker once it is paused, run `meanwhile` while the guard waits for the lock, then let the holder commit;
    the guard's answers."""
    holder.start()
    answers: list[object] = []
    worker = _guard_in_worker(subject.pk, organization.pk, answers)
    try:
        assert pause.reached.wait(10)
        worker.start()
        _wait_for_lock_waiter()
        meanwhile()
    finally:
        pause.release.set()
        holder.join(15)
        if worker.ident:
            worker.join(15)
    return answers


@pytest.mark.parametrize(
    "pause_at",
    ["after_locking_the_subject", "after_ending_the_grant"],
)
def test_guard_that_waited_for_a_withdrawal_refuses_once_it_commits(pause_at: str, monkeypatch) -> None:
    organization = make_organization()
    subject = make_subject(organization)
    make_grant(subject, make_notice(organization))
    pause = _Pause()
    if pause_at == "after_locking_the_subject":  # the first clock reading follows the subject's lock
        clock = types.SimpleNamespace(now=pause.wrap(timezone.now))
        monkeypatch.setattr(consent_services, "timezone", clock)
    else:  # the ledger entry is written after the grants were ended, before the commit
        monkeypatch.setattr(consent_services, "ledger_append", pause.wrap(consent_services.ledger_append))

    withdrawn: list[object] = []
    withdrawal = _in_thread(
        lambda: consent_withdraw(organization=organization, subject=subject, channel="my_data_page"), withdrawn
    )
    answers = _guard_answers_while_paused(pause, withdrawal, subject, organization)
    assert len(withdrawn) == 1 and not isinstance(withdrawn[0], Exception), withdrawn
    assert len(answers) == 1
    assert isinstance(answers[0], ConsentDenied), f"the guard answered {answers[0]!r} after the withdrawal committed"
    assert answers[0].reason == DenialReason.WITHDRAWN


def test_guard_that_waited_for_a_replacement_returns_the_new_grant(monkeypatch) -> None:
    organization = make_organization()
    notice = make_notice(organization)
    subject = make_subject(organization)
    old = make_grant(subject, notice)
    pause = _Pause()
    monkeypatch.setattr(consent_services, "ledger_append", pause.wrap(consent_services.ledger_append))
    granted: list[object] = []
    regrant = _in_thread(
        lambda: consent_grant(
            organization=organization, subject=subject, notice=notice, purposes=["face_analysis"], channel="partner_api"
        ),
        granted,
    )
    answers = _guard_answers_while_paused(pause, regrant, subject, organization)
    (new,) = granted[0]
    assert answers == [new] and new.pk != old.pk, answers


def _guard_answer_while_another_withdrawal_holds_the_subject(
    monkeypatch, organization, subject, meanwhile: Callable[[], None]
) -> object:
    """The guard's one answer for face analysis, asked while a withdrawal of personalization (which leaves the
    face-analysis grant alone) holds the subject's lock, and `meanwhile` runs once the guard waits for it."""
    pause = _Pause()
    monkeypatch.setattr(consent_services, "ledger_append", pause.wrap(consent_services.ledger_append))
    withdrawn: list[object] = []
    withdrawal = _in_thread(
        lambda: consent_withdraw(
            organization=organization, subject=subject, purposes=["personalization"], channel="my_data_page"
        ),
        withdrawn,
    )
    answers = _guard_answers_while_paused(pause, withdrawal, subject, organization, meanwhile=meanwhile)
    assert len(answers) == 1
    return answers[0]


def test_guard_that_waited_on_the_subject_sees_a_notice_retired_meanwhile(monkeypatch) -> None:
    organization = make_organization()
    notice = make_notice(organization, purposes=("face_analysis", "personalization"))
    subject = make_subject(organization)
    make_grant(subject, notice)
    answer = _guard_answer_while_another_withdrawal_holds_the_subject(
        monkeypatch, organization, subject, lambda: notice_retire(notice=notice)  # commits while the guard waits
    )
    assert isinstance(answer, ConsentDenied), f"the guard answered {answer!r} after the notice was retired"
    assert answer.reason == DenialReason.NOTICE_RETIRED


def test_guard_that_waited_past_the_grants_expiry_refuses_it(monkeypatch) -> None:
    organization = make_organization()
    notice = make_notice(organization, purposes=("face_analysis", "personalization"))
    subject = make_subject(organization)
    grant = make_grant(subject, notice, purposes=("face_analysis",))
    make_grant(subject, notice, purposes=("personalization",))
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    # The guard's clock: asked while the grant is still live, it moves past the expiry while the guard waits.
    later = timedelta()
    monkeypatch.setattr(consent_guards, "timezone", types.SimpleNamespace(now=lambda: timezone.now() + later))

    def run_past_the_expiry() -> None:
        nonlocal later
        later = timedelta(hours=2)

    answer = _guard_answer_while_another_withdrawal_holds_the_subject(
        monkeypatch, organization, subject, run_past_the_expiry
    )
    assert isinstance(answer, ConsentDenied), f"the guard answered {answer!r} after the grant expired"
    assert answer.reason == DenialReason.EXPIRED
