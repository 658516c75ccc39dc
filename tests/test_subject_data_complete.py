"""Completeness by construction: a subject's export and its erasure walk the same registry as the purges
(consent.purging.purgers()). A subject with a long history in every table that points at a subject: the export
names every row of it and nothing of another subject's; after the erasure's purge no row of any table points at
the subject, no text or JSON column holds its public id but the allowed ones, and its ledger entries are cut with
the chain intact. A withdrawal of face analysis removes everything biometric in one purge run. A model added later
that points at a subject fails here until the world below has rows of it and a purger exports them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import models
from django.utils import timezone

from campaigns.decisions import decision_make, event_record
from campaigns.request_context import request_attributes
from campaigns.services import capture_session_open
from consent.data_export import EXPORT_FORMAT, subject_export_stream
from consent.data_requests import data_request_create
from consent.ledger import ledger_verify, subject_digest
from consent.models import (
    Channel,
    DataRequest,
    LedgerEntry,
    OutboxEvent,
    PurgePart,
    PurgeRequest,
    Subject,
)
from consent.purging import ERASURE_EVENT_TYPES, purgers
from consent.selectors import subject_get_by_access_token
from consent.services import (
    consent_grant,
    consent_withdraw,
    subject_access_token_rotate,
    subject_get_or_create_for_partner,
)
from faceanalysis.face_cache import face_signals_cache_put, face_signals_key
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.store import frame_store
from segments.models import SegmentMembership
from segments.services import segment_export, segment_match, segment_recompute, segment_save
from tests.faceanalysis.factories import make_campaign, make_published_notice
from tests.factories import make_experiment, make_variant
from tests.purges import make_face_data, run_owed_purges
from tests.test_purgers_cover_subject_data import _subject_data_models

ALL = ("face_analysis", "personalization", "partner_sharing")
BIOMETRIC = ("faceanalysis.FrameFeatures", "faceanalysis.FaceContext")


@dataclass
class LongHistory:
    """One organization with `subject` (a long history in every table) and `other` (some of the same)."""

    organization: object
    subject: Subject
    other: Subject
    token: str
    frame_ids: list[int]


def _history(organization, notice, campaign, second_campaign, *, partner_user_id: str, visitor: str,
             consent_again: bool) -> Subject:
    subject, _ = subject_get_or_create_for_partner(organization=organization, partner_user_id=partner_user_id)
    evidence = {"ip_prefix": "203.0.113.0/24", "user_agent_class": "browser/desktop"}
    consent_grant(organization=organization, subject=subject, notice=notice, purposes=ALL, channel="partner_api",
                  evidence=evidence)
    if consent_again:  # a withdrawal and a second grant: two grants of a purpose, a receipt, a longer ledger
        consent_withdraw(organization=organization, subject=subject, purposes=["personalization"],
                         channel=Channel.PARTNER_API)
        run_owed_purges()
        consent_grant(organization=organization, subject=subject, notice=notice, purposes=["personalization"],
                      channel="partner_api", evidence=evidence)
    for capture_campaign in (campaign, second_campaign) if consent_again else (campaign,):
        session, _ = capture_session_open(organization=organization, subject=subject, campaign=capture_campaign,
                                          source="browser_stream", media_ref="video-7")
        make_face_data(session, frames=3, smile=0.9)
        CaptureSession.objects.filter(pk=session.pk).update(aggregates={"frames": 3, "smile_mean": 0.9},
                                                            aggregates_updated_at=timezone.now())
    for n in range(3):
        decision = decision_make(campaign=campaign, visitor_id=f"{visitor}-{n:02d}", subject=subject,
                                 attributes=request_attributes(now=timezone.now()), channel="api")
        event_record(organization=organization, decision_public_id=decision.public_id, visitor_id=None, kind="click",
                     name="", value=None, currency="", client_event_id=f"{visitor}-click-{n}", occurred_at=None)
    return subject


def build_long_history(organization) -> LongHistory:
    notice = make_published_notice(organization, purposes=ALL)
    campaign = make_campaign(organization, purposes=("face_analysis",))
    make_variant(campaign, key="standard", default=True)
    make_variant(campaign, key="challenger")
    make_experiment(campaign, [("standard", 0.5), ("challenger", 0.5)], key="spring")
    second_campaign = make_campaign(organization, purposes=("face_analysis",))
    subject = _history(organization, notice, campaign, second_campaign, partner_user_id="long-history-user",
                       visitor="visitor-long-history", consent_again=True)
    other = _history(organization, notice, campaign, second_campaign, partner_user_id="other-user",
                     visitor="visitor-other-subject", consent_again=False)
    for key, definition in (
        ("linked", {"field": "subject.partner_linked", "op": "eq", "value": True}),
        ("smilers", {"field": "face.smile_share", "op": "gte", "value": 0.5}),
    ):
        segment = segment_save(organization=organization, key=key, name=key.title(), definition=definition)
        segment_recompute(segment_id=segment.pk)
    # An audience export that named both subjects, and a match of the partner's own id.
    segment_export(segment=segment, requested_by="api_key:bench")
    segment_match(segment=segment, partner_user_ids=["long-history-user"], requested_by="api_key:bench")
    token = subject_access_token_rotate(subject=subject)
    data_request_create(organization=organization, subject=subject, kind=DataRequest.Kind.EXPORT,
                        channel=Channel.MY_DATA_PAGE, requested_by="subject")
    # What Redis holds of the subject: a queued frame's bytes and the cached face signals.
    frame_ids = list(Frame.objects.filter(subject=subject).values_list("pk", flat=True))
    queued = list(Frame.objects.filter(subject=subject, status=Frame.Status.QUEUED).values_list("pk", flat=True))
    store = frame_store()
    store.discard(frame_ids)  # the in-process store outlives a test's rows: ids may hold an earlier test's bytes
    store.put_many({pk: b"not-an-image" for pk in queued}, 60)
    face_signals_cache_put(organization_id=organization.pk, subject_id=subject.pk, rows=[[1, 0.9]])
    return LongHistory(organization, Subject.objects.get(pk=subject.pk), other, token, frame_ids)


def _relations_to(model: type[models.Model], targets: set[type[models.Model]]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if f.is_relation and f.many_to_one and f.related_model in targets]


def rows_of(subject: Subject) -> dict[str, set[int]]:
    """Every row, per model pointing at a subject (directly or through another such row), that is this subject's."""
    labels = _subject_data_models()
    found: dict[type[models.Model], set[int]] = {Subject: {subject.pk}}
    changed = True
    while changed:
        changed = False
        for label in labels:
            model = apps.get_model(label)
            if model is Subject:
                continue
            query = models.Q(pk__in=[])
            for field in _relations_to(model, set(found)):
                query |= models.Q(**{f"{field.attname}__in": found[field.related_model]})
            pks = set(model.objects.filter(query).values_list("pk", flat=True))
            if pks - found.get(model, set()):
                found[model] = found.get(model, set()) | pks
                changed = True
    return {model._meta.label: pks for model, pks in found.items()} | {
        label: set() for label in labels if apps.get_model(label) not in found
    }


def export_document(history: LongHistory, subject: Subject | None = None) -> dict:
    subject = subject or history.subject
    return json.loads("".join(subject_export_stream(organization=history.organization, subject=subject)))


@pytest.mark.django_db
def test_the_world_has_rows_of_the_subject_in_every_table_that_points_at_one(org_a) -> None:
    history = build_long_history(org_a)
    empty = sorted(label for label, pks in rows_of(history.subject).items() if not pks)
    assert not empty, f"give the long history rows of {empty} (and a purger's export of them)"
    assert SegmentMembership.objects.filter(subject=history.subject, segment__face_based=True).exists()


@pytest.mark.django_db
def test_export_names_every_row_of_the_subject_and_nothing_of_another(org_a) -> None:
    history = build_long_history(org_a)
    document = export_document(history)
    assert document["format"] == EXPORT_FORMAT
    assert document["subject"]["id"] == str(history.subject.public_id)
    mine, theirs = rows_of(history.subject), rows_of(history.other)
    for label, pks in mine.items():
        exported = [row["id"] for row in document["sections"].get(label, [])]
        assert label in document["sections"], f"no purger exports {label}"
        assert sorted(exported) == sorted(pks), label
        assert not set(exported) & theirs[label], f"{label} of another subject in the export"
    assert str(history.other.public_id) not in json.dumps(document)
    history_events = {e["event"] for e in document["consent_history"]}
    assert {"granted", "withdrawn"} <= history_events
    assert all(e["notice_hash"] for e in document["consent_history"] if e["event"] in ("granted", "withdrawn"))
    assert document["purge_receipts"] and {e["event"] for e in document["purge_receipts"]} == {"purged"}
    assert [r["kind"] for r in document["data_requests"]] == ["export"]
    assert "access_token_hash" not in document["sections"]["consent.Subject"][0]
    assert "token_hash" not in document["sections"]["faceanalysis.CaptureSession"][0]


@pytest.mark.django_db
def test_every_model_that_points_at_a_subject_is_exported_by_its_purger(org_a) -> None:
    """The export's side of the coverage test: each purger exports every model it claims, and nothing else; a
    model that points at a subject and that no purger exports fails here."""
    history = build_long_history(org_a)
    exported: dict[str, set[str]] = {}
    for purger in purgers():
        assert purger.export is not None, f"purger {purger.name} exports nothing"
        exported[purger.name] = {label for label, _ in purger.export(org_a.pk, history.subject.pk)}
        assert exported[purger.name] == set(purger.models), purger.name
    missing = _subject_data_models() - set().union(*exported.values())
    assert not missing, f"no purger exports {sorted(missing)}"


def _text_and_json_columns(model: type[models.Model]) -> tuple[list[models.Field], list[models.Field]]:
    texts = [f for f in model._meta.concrete_fields
             if isinstance(f, models.CharField | models.TextField | models.UUIDField) and not f.is_relation]
    jsons = [f for f in model._meta.concrete_fields if isinstance(f, models.JSONField)]
    return texts, jsons


def _allowed(row: models.Model, subject: Subject, erasure: PurgeRequest) -> bool:
    """What may still name the erased subject: its tombstone, the proof that the request was received and
    handled, and the feed's notice to the partner to erase it too."""
    if isinstance(row, Subject):
        return row.pk == subject.pk
    if isinstance(row, PurgeRequest | DataRequest):
        return True
    if isinstance(row, OutboxEvent):
        return row.type in ERASURE_EVENT_TYPES or (
            row.type == OutboxEvent.Type.PURGE_DONE and row.payload.get("request") == str(erasure.public_id))
    return False


def scan_for(subject: Subject, erasure: PurgeRequest) -> list[str]:
    """Every row of every table that still points at the subject or holds its public id, but the allowed."""
    public_id = str(subject.public_id)
    found: list[str] = []
    for model in apps.get_models():
        for field in _relations_to(model, {Subject}):
            rows = model._base_manager.filter(**{field.attname: subject.pk})
            found += [f"{model._meta.label}.{field.name} #{r.pk}" for r in rows if not _allowed(r, subject, erasure)]
        texts, jsons = _text_and_json_columns(model)
        for field in texts:
            value = uuid.UUID(public_id) if isinstance(field, models.UUIDField) else public_id
            rows = model._base_manager.filter(**{field.attname: value})
            found += [f"{model._meta.label}.{field.name} #{r.pk}" for r in rows if not _allowed(r, subject, erasure)]
        if jsons:
            for row in model._base_manager.all().iterator():
                for field in jsons:
                    if public_id in json.dumps(getattr(row, field.attname)) and not _allowed(row, subject, erasure):
                        found.append(f"{model._meta.label}.{field.name} #{row.pk}")
    return found


def redis_left(history: LongHistory) -> list[str]:
    store = frame_store()
    left = [f"frame {pk}" for pk in history.frame_ids if store.exists(pk)]
    key = face_signals_key(organization_id=history.organization.pk, subject_id=history.subject.pk)
    return left + ([key] if cache.get(key) is not None else [])


def _erase(history: LongHistory, capture_on_commit):
    outcome = data_request_create(organization=history.organization, subject=history.subject,
                                  kind=DataRequest.Kind.ERASURE, channel=Channel.MY_DATA_PAGE, requested_by="subject")
    assert outcome.created and outcome.request.state == DataRequest.State.IN_PROGRESS
    with capture_on_commit(execute=True):  # the parts' after-commit steps: the frame bytes' discard
        assert set(run_owed_purges()) == {"done"}
    return outcome.request


@pytest.mark.django_db
def test_after_erasure_no_row_points_at_the_subject_but_the_cut_ledger(org_a, django_capture_on_commit_callbacks
                                                                        ) -> None:
    history = build_long_history(org_a)
    assert scan_for(history.subject, PurgeRequest()), "the scan must find the subject before the erasure"
    before = set(LedgerEntry.objects.filter(subject_digest=subject_digest(str(history.subject.public_id)))
                 .values_list("pk", flat=True))
    request = _erase(history, django_capture_on_commit_callbacks)

    request.refresh_from_db()
    assert request.state == DataRequest.State.DONE and request.completed_at is not None
    assert not PurgePart.objects.filter(request=request.purge_request, status=PurgePart.Status.OWED).exists()
    assert scan_for(history.subject, request.purge_request) == []
    assert redis_left(history) == []
    cut = LedgerEntry.objects.filter(subject_digest=subject_digest(str(history.subject.public_id)))
    assert before <= set(cut.values_list("pk", flat=True)) and not cut.exclude(subject_ref="").exists()
    assert ledger_verify(organization=org_a).ok
    tombstone = Subject.objects.get(pk=history.subject.pk)
    assert tombstone.erased_at is not None and not tombstone.partner_ref_hash and not tombstone.access_token_hash
    assert subject_get_by_access_token(token=history.token) is None
    # The other subject keeps everything.
    assert all(rows_of(history.other).values())


@pytest.mark.django_db
def test_a_second_erasure_answers_with_the_first(org_a, django_capture_on_commit_callbacks) -> None:
    history = build_long_history(org_a)
    first = _erase(history, django_capture_on_commit_callbacks)
    again = data_request_create(organization=org_a, subject=Subject.objects.get(pk=history.subject.pk),
                                kind=DataRequest.Kind.ERASURE, channel=Channel.PARTNER_API, requested_by="api_key:x")
    assert not again.created and again.request.pk == first.pk
    assert DataRequest.objects.filter(subject_id=history.subject.pk, kind="erasure").count() == 1


@pytest.mark.django_db
def test_withdrawal_of_face_analysis_removes_everything_biometric_in_one_purge_run(
    org_a, django_capture_on_commit_callbacks
) -> None:
    history = build_long_history(org_a)
    subject = history.subject
    consent_withdraw(organization=org_a, subject=subject, purposes=["face_analysis"], channel=Channel.MY_DATA_PAGE)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = run_owed_purges()
    assert outcomes and set(outcomes) == {"done"}
    assert not PurgePart.objects.filter(status=PurgePart.Status.OWED).exists()
    for label in BIOMETRIC:
        assert not apps.get_model(label).objects.filter(subject=subject).exists(), label
    assert not CaptureSession.objects.filter(subject=subject).exclude(aggregates={}).exists()
    assert not SegmentMembership.objects.filter(subject=subject, segment__face_based=True).exists()
    assert redis_left(history) == []
    # The other subject's face data stays, and the non-biometric rest of this subject's.
    assert FrameFeatures.objects.filter(subject=history.other).exists()
    assert FaceContext.objects.filter(subject=history.other).exists()
    assert Frame.objects.filter(subject=subject).exists()
    assert timezone.now() - Subject.objects.get(pk=subject.pk).created_at < timedelta(hours=1)
