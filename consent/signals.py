"""Signals the consent app sends; other apps listen, so consent never needs to know them."""

from django.dispatch import Signal

# Sent after commit whenever consent for some purposes of a subject ends, so that listeners purge what those
# purposes allowed (pending frames, derived features, segment memberships, decisions).
# Keyword arguments: organization_id: int, subject_id: int (Subject.pk), purposes: list[str],
# reason: "withdrawn" | "expired". Sender: consent.models.Grant.
consent_withdrawn = Signal()
