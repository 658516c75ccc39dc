"""No biometric Celery task runs without the consent guard: the marker guards, and a scan of the real app
fails when any task named faceanalysis.* or routed to an analysis queue lacks it."""

import pytest
from celery import Celery

from config.celery import app as visage_app
from consent.biometric import consent_guarded, guard_spec, unguarded_biometric_tasks
from consent.guards import ConsentDenied
from consent.models import Grant, Purpose
from consent.services import consent_withdraw
from tests.factories import make_grant, make_notice, make_subject

calls: list[int] = []


def _probe_app() -> Celery:
    probe = Celery("probe", set_as_current=False)
    probe.conf.task_always_eager = True
    probe.conf.task_routes = {
        "probe.routed_unguarded": {"queue": "analysis_gpu"},
        "probe.analysis.*": {"queue": "analysis"},
    }

    @probe.task(shared=False, name="faceanalysis.guarded_probe")
    @consent_guarded(purpose=Purpose.FACE_ANALYSIS)
    def guarded_probe(*, organization_id: int, subject_id: int, frame_id: int, grant: Grant) -> dict:
        calls.append(frame_id)
        return {"frame": frame_id, "grant": grant.pk}

    @probe.task(shared=False, name="faceanalysis.unguarded_probe")
    def unguarded_probe(*, organization_id: int, subject_id: int) -> None:
        calls.append(-1)

    @probe.task(shared=False, name="probe.routed_unguarded")
    def routed_unguarded(*, organization_id: int, subject_id: int) -> None:
        calls.append(-2)

    @probe.task(shared=False, name="probe.analysis.by_pattern")
    def by_pattern() -> None:
        calls.append(-3)

    @probe.task(shared=False, name="probe.housekeeping")
    def housekeeping() -> None:
        calls.append(-4)

    return probe


def test_every_biometric_task_of_the_real_app_is_consent_guarded() -> None:
    assert unguarded_biometric_tasks(visage_app) == []


def test_the_scan_finds_unguarded_tasks_by_name_by_route_and_by_queue() -> None:
    assert unguarded_biometric_tasks(_probe_app()) == [
        "faceanalysis.unguarded_probe",
        "probe.analysis.by_pattern",
        "probe.routed_unguarded",
    ]


@pytest.mark.django_db
def test_guarded_task_runs_with_consent_and_gets_the_grant(org_a) -> None:
    task = _probe_app().tasks["faceanalysis.guarded_probe"]
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    calls.clear()
    result = task.apply(kwargs={"organization_id": org_a.pk, "subject_id": subject.pk, "frame_id": 7}).get()
    assert result == {"frame": 7, "grant": grant.pk}
    assert calls == [7]
    assert guard_spec(task).purpose == "face_analysis"


@pytest.mark.django_db
def test_guarded_task_body_never_runs_without_consent(org_a, org_b) -> None:
    task = _probe_app().tasks["faceanalysis.guarded_probe"]
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    consent_withdraw(organization=org_a, subject=subject, channel="my_data_page")
    calls.clear()
    withdrawn = task.apply(kwargs={"organization_id": org_a.pk, "subject_id": subject.pk, "frame_id": 8}).get()
    foreign = task.apply(kwargs={"organization_id": org_b.pk, "subject_id": subject.pk, "frame_id": 9}).get()
    assert withdrawn == {"status": "dropped", "reason": "withdrawn"}
    assert foreign == {"status": "dropped", "reason": "unknown_subject"}
    assert calls == []


@pytest.mark.django_db
def test_guarded_task_without_subject_arguments_fails_closed() -> None:
    task = _probe_app().tasks["faceanalysis.guarded_probe"]
    calls.clear()
    assert task.apply(kwargs={"frame_id": 1}).get() == {"status": "dropped", "reason": "unknown_subject"}
    assert calls == []


def test_marker_refuses_a_body_that_cannot_receive_the_grant() -> None:
    with pytest.raises(TypeError, match="grant"):

        @consent_guarded(purpose=Purpose.FACE_ANALYSIS)
        def no_grant(*, organization_id: int, subject_id: int) -> None: ...


def test_on_denied_decides_what_a_refused_task_returns() -> None:
    seen: list[ConsentDenied] = []

    @consent_guarded(purpose=Purpose.FACE_ANALYSIS, on_denied=lambda denial, kwargs: seen.append(denial) or "gone")
    def body(*, organization_id: int, subject_id: int, grant: Grant) -> str:
        return "ran"

    assert body(organization_id=None, subject_id=None) == "gone"
    assert seen[0].reason == "unknown_subject"


@pytest.mark.django_db
def test_expiry_task_is_scheduled_and_ends_expired_grants(org_a) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from consent.models import LedgerEntry

    entry = settings.CELERY_BEAT_SCHEDULE["consent-expire-grants"]
    visage_app.loader.import_default_modules()
    task = visage_app.tasks[entry["task"]]
    grant = make_grant(make_subject(org_a), make_notice(org_a))
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert task.apply().get() == 1
    grant.refresh_from_db()
    assert grant.end_reason == "expired"
    assert LedgerEntry.objects.filter(event="expired").count() == 1
    assert task.apply().get() == 0


@pytest.mark.django_db
def test_a_locked_guard_checks_consent_once_and_runs_the_body_in_the_same_transaction(org_a) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    grant = make_grant(make_subject(org_a), make_notice(org_a))
    seen: list[tuple[int, int]] = []
    outside = len(connection.atomic_blocks)  # the test's own transaction

    @consent_guarded(purpose=Purpose.FACE_ANALYSIS, locked=True)
    def body(*, organization_id: int, subject_id: int, grant: Grant) -> str:
        seen.append((len(connection.atomic_blocks), grant.pk))
        return "ran"

    with CaptureQueriesContext(connection) as queries:
        assert body(organization_id=org_a.pk, subject_id=grant.subject_id) == "ran"
    assert seen == [(outside + 1, grant.pk)]  # the guard's transaction, still open around the body
    checks = [q["sql"] for q in queries.captured_queries if "consent_grant" in q["sql"]]
    assert len(checks) == 1
    if connection.vendor == "postgresql":  # subject and grant stay locked for share until the body's commit
        assert checks[0].rstrip().endswith("FOR SHARE OF s, g SKIP LOCKED")

    consent_withdraw(organization=org_a, subject=grant.subject, channel="page")
    assert body(organization_id=org_a.pk, subject_id=grant.subject_id) == {"status": "dropped", "reason": "withdrawn"}
    assert len(seen) == 1
