"""Consent's own purger (consent.purging): on erasure, what could tie a subject to a person.

The Subject row stays as a tombstone (erased_at set, its pseudonyms blanked), so that the guard refuses it for good
and a second erasure answers with the first. Its grants go once every other part of the erasure is done (the other
apps' rows point at them): consent.purging.erasure_finish, which also cuts the subject's public id from the ledger
after the last receipt. The ledger entries stay, cut: they are the proof that processing had a legal basis
(GDPR Art. 7(1), 17(3)(e)), and hold no biometric data; their evidence is minimal by construction (a network prefix
and a user-agent class).

Retention (category "consent_records"): a grant that ended longer ago than the period (at least a year) is
deleted, unless rows derived under it still point at it (a grant replaced by a renewed consent backs the
features of its time until they reach their own period): the proof stays as long as what it proves. The ledger
stays whole: it is append-only (its triggers refuse deletes), holds no biometric value, and its entries' chain is
what makes every receipt, this run's included, verifiable."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import CASCADE, Exists, OuterRef, QuerySet

from consent.data_export import export_rows
from consent.ledger import ledger_subject_cut
from consent.models import Grant, Subject
from consent.purging import ExportRow, PurgeOrder, Purger, RetentionTarget


def subject_pseudonyms_purge(order: PurgeOrder) -> dict[str, int]:
    """An erased subject's partner user id hash and "my data" token hash are blanked: no partner id finds it again
    and no link opens its page; the ledger entries so far lose its public id. Idempotent."""
    if not order.erasure or order.subject_id is None:
        return {}
    subjects = Subject.objects.filter(organization_id=order.organization_id, pk=order.subject_id)
    cleared = subjects.exclude(partner_ref_hash="", access_token_hash="").update(
        partner_ref_hash="", access_token_hash="", access_token_issued_at=None
    )
    cut = 0
    for subject in subjects:
        cut = ledger_subject_cut(organization=subject.organization, subject_ref=str(subject.public_id))
    return {"subject_pseudonyms_cleared": cleared, "ledger_entries_cut": cut}


def subject_consent_export(organization_id: int, subject_id: int) -> Iterator[ExportRow]:
    """The subject's row (no hashes: they are keys to it, not data about it) and its grants with notice hashes."""
    subject = Subject.objects.filter(organization_id=organization_id, pk=subject_id)
    yield from export_rows("consent.Subject", subject, omit=("partner_ref_hash", "access_token_hash"))
    yield from export_rows("consent.Grant", Grant.objects.filter(organization_id=organization_id,
                                                                 subject_id=subject_id))


def _ended_grants_expired(organization_id: int, before: datetime) -> QuerySet:
    grants = Grant.objects.filter(organization_id=organization_id, ended_at__lt=before)
    # Whatever points at a grant and would go with it (derived rows in the apps above, found through the model
    # registry, as consent imports none of them).
    for relation in Grant._meta.get_fields(include_hidden=True):
        if relation.auto_created and not relation.concrete and getattr(relation, "on_delete", None) is CASCADE:
            backing = relation.related_model._base_manager.filter(**{relation.field.name: OuterRef("pk")})
            grants = grants.exclude(Exists(backing))
    return grants


SUBJECT_PURGER = Purger(
    name="consent.subject",
    models=("consent.Subject", "consent.Grant"),
    purge=subject_pseudonyms_purge,
    retention=(RetentionTarget("consent_records", "consent.Grant", _ended_grants_expired, "ended_at"),),
    export=subject_consent_export,
)
