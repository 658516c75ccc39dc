"""Capture sessions and their tokens: a session opens only with live consent to every purpose its campaign's
camera needs, keeps that choice, and is reached with a token that is stored hashed. What the campaign needs is
given as plain values (campaigns sits above this app and opens sessions through `campaigns.services`)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from accounts.tokens import token_hash
from consent import derived
from consent.guards import ConsentDenied, DenialReason, has_consent, require_consents
from consent.models import Grant, Purpose, Subject, purposes_key
from faceanalysis.errors import ConsentRequired, FaceAnalysisError
from faceanalysis.models import CaptureSession

CAPTURE_TOKEN_PREFIX = "vcs"  # noqa: S105 - a public prefix, not a secret


def _consent_required(denial: ConsentDenied) -> ConsentRequired:
    """The guard's refusal as the API's 403: its reason, and the purpose when it is not face analysis itself."""
    if denial.reason == DenialReason.NOTICE_DOES_NOT_COVER:
        message = (
            "The notice the subject consented under does not name everything this campaign derives from faces; "
            "the subject must consent again under the campaign's notice."
        )
    elif denial.purpose == Purpose.FACE_ANALYSIS:
        message = "The subject has no live consent to face analysis."
    else:
        message = f"The subject has no live consent to {denial.purpose}, which this campaign's camera needs."
    details = {"reason": denial.reason.value}
    if denial.purpose != Purpose.FACE_ANALYSIS:
        details["purpose"] = denial.purpose
    return ConsentRequired(message, details=details)


def _capture_consents(
    *, organization_id: int, subject_id: int, purposes: Iterable[str], derived_attributes: Iterable[str]
) -> dict[str, Grant]:
    """The live grant of every purpose capture needs, face analysis under a notice naming every attribute that
    will be derived (the consent guard decides); otherwise ConsentRequired with the guard's reason."""
    try:
        return require_consents(
            organization_id=organization_id, subject_id=subject_id, purposes={Purpose.FACE_ANALYSIS, *purposes},
            derived_attributes=derived_attributes,
        )
    except ConsentDenied as denial:
        raise _consent_required(denial) from None


def _session_consent(session: CaptureSession) -> Grant:
    """Consent for one more frame of a session: the campaign's required purposes and attributes at its start."""
    grants = _capture_consents(
        organization_id=session.organization_id, subject_id=session.subject_id,
        purposes=session.required_purpose_list, derived_attributes=session.derived_attribute_set,
    )
    return grants[Purpose.FACE_ANALYSIS]


def capture_session_start(
    *, organization: Organization, subject: Subject, campaign_id: int, required_purposes: Iterable[str],
    derived_attributes: Iterable[str], source: str, media_ref: str = "",
) -> tuple[CaptureSession, str]:
    """Open a capture session for a subject with live consent to face analysis and every purpose in
    `required_purposes`, under a notice naming every attribute in `derived_attributes`, and issue its capture
    token (returned once, stored hashed). The session keeps that choice: each frame is checked against it and
    derives nothing more. The token lets an end user's page post frames to this session only, read it and end it.

    The caller vouches for the campaign (`campaign_id` of `organization`, still running, and what its camera
    needs): `campaigns.services.capture_session_open` does."""
    if subject.organization_id != organization.pk:
        raise FaceAnalysisError("Not found.", code="not_found", status_code=404)
    if source not in CaptureSession.Source.values:
        raise FaceAnalysisError(f"Unknown source {source!r}.", code="invalid")
    required = purposes_key({Purpose.FACE_ANALYSIS.value, *required_purposes})
    attributes = derived.canonical(derived_attributes)
    grants = _capture_consents(
        organization_id=organization.pk, subject_id=subject.pk, purposes=required.split(","),
        derived_attributes=derived.parse(attributes),
    )
    grant = grants[Purpose.FACE_ANALYSIS]
    consented = [p for p in Purpose.values if p in grants or has_consent(
        organization_id=organization.pk, subject_id=subject.pk, purpose=p)]
    token = f"{CAPTURE_TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    session = CaptureSession.objects.create(
        organization=organization,
        subject=subject,
        campaign_id=campaign_id,
        grant=grant,
        purposes=purposes_key(consented),
        required_purposes=required,
        derived_attributes=attributes,
        source=source,
        media_ref=media_ref[:200],
        started_at=now,
        token_hash=token_hash(token),
        token_expires_at=now + timedelta(seconds=settings.VISAGE_CAPTURE_TOKEN_TTL_SECONDS),
    )
    return session, token


def capture_session_end(*, session: CaptureSession, reason: str = CaptureSession.EndReason.CLIENT) -> CaptureSession:
    """End a session: no more frames are accepted; frames already queued are still analysed. Idempotent."""
    if session.ended_at is None:
        now = timezone.now()
        CaptureSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=now, end_reason=reason)
        session.refresh_from_db(fields=["ended_at", "end_reason"])
    return session
