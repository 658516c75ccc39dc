"""Reactions to other apps' signals."""

from typing import Any

from django.dispatch import receiver

from consent.models import Purpose
from consent.signals import consent_withdrawn
from faceanalysis.services.purge import subject_face_data_purge


@receiver(consent_withdrawn, dispatch_uid="faceanalysis.purge_on_withdrawal")
def purge_on_withdrawal(
    sender: Any, *, organization_id: int, subject_id: int, purposes: list[str], reason: str = "withdrawn",
    **kwargs: Any,
) -> None:
    """Consent to face analysis ended (withdrawn or expired): drop pending frames, purge features, end sessions."""
    if Purpose.FACE_ANALYSIS in purposes:
        subject_face_data_purge(organization_id=organization_id, subject_id=subject_id, reason=f"consent_{reason}")
