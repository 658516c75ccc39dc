"""Purge requests: recorded with the withdrawal, expiry or erasure that owes them, done part by part with one
receipt each, and never lost: a purger that fails leaves its part owed and visible until a later run does it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent import purging, tasks
from consent.guards import ConsentDenied, DenialReason, require_consent
from consent.models import Grant, LedgerEntry, PurgePart, PurgeRequest, Subject
from consent.services import grants_expire, subject_access_token_rotate, subject_erase
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.purgers import FACE_DATA_PURGER
from tests.faceanalysis.factories import make_capture_session, withdraw
from tests.purges import make_face_data, run_owed_purges

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_a(org_a) -> Client:
    from tests.factories import make_member

    client = Client()
    client.force_login(make_member(org_a, role="owner"))
    return client


def _receipts(request: PurgeRequest, purger: str | None = None) -> list[LedgerEntry]:
    entries = LedgerEntry.objects.filter(organization_id=request.organization_id, event=LedgerEntry.Event.PURGED)
    return [entry for entry in entries if entry.payload.get("request") == str(request.public_id)
            and purger in (None, entry.payload.get("purger"))]


FACE = "faceanalysis.face_data"


@pytest.fixture
def failing_face_purger():
    """The face-data purger fails until `.heal()` is called; the registry gets the real one back afterwards."""

    class Failing:
        calls = 0
        healthy = False

        def purge(self, order):
            self.calls += 1
            if not self.healthy:
                raise RuntimeError("the database said no")
            return FACE_DATA_PURGER.purge(order)

    failing = Failing()
    purging.purger_register(purging.Purger(
        name=FACE_DATA_PURGER.name, models=FACE_DATA_PURGER.models, purge=failing.purge,
        purposes=FACE_DATA_PURGER.purposes, retention=FACE_DATA_PURGER.retention,
    ))
    yield failing
    purging.purger_register(FACE_DATA_PURGER)


def test_a_withdrawal_whose_purger_fails_leaves_the_part_owed_and_the_next_beat_run_does_it(
    org_a, eager, failing_face_purger, django_capture_on_commit_callbacks, admin_client_a
) -> None:
    session, _ = make_capture_session(org_a)
    make_face_data(session)
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(session.subject)  # the withdrawal itself stands, whatever its purge does

    assert Grant.objects.get(subject=session.subject, purpose="face_analysis").end_reason == "withdrawn"
    (part,) = PurgePart.objects.filter(purger=FACE)
    assert (part.status, part.attempts, part.last_error) == ("owed", 1, "RuntimeError")
    assert FrameFeatures.objects.filter(subject=session.subject).count() == 3  # nothing half-done
    assert not _receipts(part.request, FACE)
    # The admin shows what is owed (segments' part, which did not fail, is done).
    page = admin_client_a.get(reverse("admin:consent_purgerequest_changelist")).content.decode()
    assert "1 of 2 done; owed: faceanalysis.face_data" in page

    # Beat before the part is stale sends nothing; once it is, the part is done.
    assert tasks.redispatch_owed_purges() == 0
    failing_face_purger.healthy = True
    PurgePart.objects.update(dispatched_at=timezone.now() - purging.REDISPATCH_AFTER - timedelta(seconds=1))
    assert tasks.redispatch_owed_purges() == 1

    part.refresh_from_db()
    assert (part.status, part.attempts, part.counts["features_purged"]) == ("done", 2, 3)
    assert not FrameFeatures.objects.filter(subject=session.subject).exists()
    assert not FaceContext.objects.filter(subject=session.subject).exists()
    (receipt,) = _receipts(part.request, FACE)
    assert receipt.sequence == part.receipt_sequence and receipt.payload["purger"] == "faceanalysis.face_data"
    assert PurgeRequest.objects.get().completed_at is not None
    page = admin_client_a.get(reverse("admin:consent_purgerequest_changelist")).content.decode()
    assert "2 of 2 done" in page
    # Once done, a part stays done: a late message or another run writes no second receipt.
    assert purging.purge_part_run(part_id=part.pk) == "already_done"
    assert tasks.redispatch_owed_purges() == 0
    assert len(_receipts(part.request, FACE)) == 1


def test_an_expiry_owes_a_purge_like_a_withdrawal(org_a, eager, django_capture_on_commit_callbacks) -> None:
    session, _ = make_capture_session(org_a)
    make_face_data(session)
    Grant.objects.filter(subject=session.subject, purpose="face_analysis").update(
        expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire() == 1
    request = PurgeRequest.objects.get()
    assert (request.reason, request.purpose_list) == ("consent_expired", ["face_analysis"])
    assert request.completed_at is not None and len(_receipts(request, FACE)) == 1
    assert {entry.payload["purger"] for entry in _receipts(request)} == {FACE, "segments.membership"}
    assert not FrameFeatures.objects.filter(subject=session.subject).exists()
    assert Frame.objects.filter(subject=session.subject, status="dropped", reason="consent_expired").count() == 1


def test_erasure_withdraws_marks_the_subject_and_every_purger_does_its_part(
    org_a, org_b, eager, django_capture_on_commit_callbacks
) -> None:
    session, _ = make_capture_session(org_a)
    make_face_data(session)
    kept, _ = make_capture_session(org_b)
    make_face_data(kept)
    subject = session.subject
    subject_access_token_rotate(subject=subject)

    with django_capture_on_commit_callbacks(execute=True):
        request = subject_erase(organization=org_a, subject=subject, channel="admin_paper")

    subject.refresh_from_db()
    assert subject.erased_at is not None and subject.access_token_hash == "" and subject.partner_ref_hash == ""
    assert not Grant.objects.filter(subject=subject, ended_at__isnull=True).exists()
    with pytest.raises(ConsentDenied) as denied:
        require_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="face_analysis")
    assert denied.value.reason == DenialReason.SUBJECT_ERASED
    request.refresh_from_db()
    assert request.reason == "subject_erased" and request.completed_at is not None
    parts = dict(request.parts.values_list("purger", "status"))
    assert parts == {"campaigns.decision_log": "done", "consent.subject": "done", "faceanalysis.face_data": "done",
                     "segments.membership": "done"}
    # One receipt per purger, and the erasure's last step (its grants deleted, the ledger cut after the receipts).
    assert len(_receipts(request)) == 5 and len(_receipts(request, "consent.erasure_finish")) == 1
    assert not Grant.objects.filter(subject_id=subject.pk).exists()
    for model in (CaptureSession, Frame, FrameFeatures, FaceContext):
        assert not model.objects.filter(subject_id=subject.pk).exists(), model
        assert model.objects.filter(subject_id=kept.subject_id).exists(), model  # another organization's stays
    # Erasing again does nothing.
    assert subject_erase(organization=org_a, subject=Subject.objects.get(pk=subject.pk), channel="admin_paper") is None
    assert PurgeRequest.objects.count() == 1


def test_a_part_another_run_holds_is_left_to_it(org_a, django_capture_on_commit_callbacks) -> None:
    session, _ = make_capture_session(org_a)
    withdraw(session.subject)
    part = PurgePart.objects.get(purger=FACE)
    assert run_owed_purges() == ["done", "done"]
    assert purging.purge_part_run(part_id=part.pk) == "already_done"
    assert purging.purge_part_run(part_id=part.pk + 1000) == "gone"


def test_derived_data_is_not_deletable_in_the_admin_and_a_campaign_with_sessions_is_protected(
    org_a, admin_client_a
) -> None:
    session, _ = make_capture_session(org_a)
    make_face_data(session)
    features = FrameFeatures.objects.filter(session=session).first()
    for model, pk in ((FrameFeatures, features.pk), (CaptureSession, session.pk), (Frame, features.frame_id)):
        url = reverse(f"admin:faceanalysis_{model._meta.model_name}_delete", args=[pk])
        assert admin_client_a.post(url, {"post": "yes"}).status_code == 403, model
    assert FrameFeatures.objects.filter(pk=features.pk).exists()
    url = reverse("admin:campaigns_campaign_delete", args=[session.campaign_id])
    response = admin_client_a.post(url, {"post": "yes"})
    assert CaptureSession.objects.filter(pk=session.pk).exists()
    assert response.status_code == 200 and "Cannot delete campaign" in response.content.decode()
    assert Client().get(reverse("admin:consent_purgerequest_changelist")).status_code == 302


def test_open_sessions_end_right_after_the_withdrawal_commits_before_any_worker_takes_the_part(
    org_a, django_capture_on_commit_callbacks, monkeypatch, settings
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker's job, on either stack
    monkeypatch.setattr(purging, "send_purge_parts", lambda part_ids: [])  # sent; no worker has it yet
    session, _ = make_capture_session(org_a)
    make_face_data(session)
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(session.subject)
    session.refresh_from_db()
    assert (session.ended_at is not None, session.end_reason) == (True, "consent_withdrawn")
    part = PurgePart.objects.get(purger=FACE)
    assert (part.status, part.counts) == ("owed", {"sessions_ended": 1})
    assert FrameFeatures.objects.filter(subject=session.subject).count() == 3  # the deletion is the worker's
    assert run_owed_purges() == ["done", "done"]
    part.refresh_from_db()
    assert part.counts == {"sessions_ended": 1, "frames_dropped": 1, "features_purged": 3, "contexts_purged": 1}
