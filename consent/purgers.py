"""Consent's own purger (consent.purging): on erasure, what could tie a subject to a person.

Grants and the ledger stay: they are the proof that processing had a legal basis (GDPR art. 7(1)), they hold no
biometric data, and their evidence is minimal by construction (a network prefix and a user-agent class).

Retention (category "consent_records"): a grant that ended longer ago than the period (at least a year) is
deleted, unless rows derived under it still point at it (a grant replaced by a renewed consent backs the
features of its time until they reach their own period): the proof stays as long as what it proves. The ledger
stays whole: it is append-only (its triggers refuse deletes), holds no biometric value, and its entries' chain is
what makes every receipt, this run's included, verifiable."""

from datetime import datetime

from django.db.models import CASCADE, Exists, OuterRef, QuerySet

from consent.models import Grant, Subject
from consent.purging import PurgeOrder, Purger, RetentionTarget


def subject_pseudonyms_purge(order: PurgeOrder) -> dict[str, int]:
    """An erased subject's partner user id hash and "my data" token hash are blanked: no partner id finds it again
    and no link opens its page. Idempotent."""
    if not order.erasure or order.subject_id is None:
        return {}
    cleared = (
        Subject.objects.filter(organization_id=order.organization_id, pk=order.subject_id)
        .exclude(partner_ref_hash="", access_token_hash="")
        .update(partner_ref_hash="", access_token_hash="", access_token_issued_at=None)
    )
    return {"subject_pseudonyms_cleared": cleared}


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
)
