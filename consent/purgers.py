"""Consent's own purger (consent.purging): on erasure, what could tie a subject to a person.

Grants and the ledger stay: they are the proof that processing had a legal basis (GDPR art. 7(1)), they hold no
biometric data, and their evidence is minimal by construction (a network prefix and a user-agent class)."""

from consent.models import Subject
from consent.purging import PurgeOrder, Purger


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


SUBJECT_PURGER = Purger(
    name="consent.subject",
    models=("consent.Subject", "consent.Grant"),
    purge=subject_pseudonyms_purge,
)
