"""Writes of the campaigns app. Campaigns sit above face analysis: what a campaign asks of a capture session (it
is running, its camera's purposes, what it derives) is decided here and handed down as plain values."""

from accounts.models import Organization
from campaigns.models import Campaign
from consent.models import Subject
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession
from faceanalysis.services.capture import capture_session_start


def capture_session_open(
    *, organization: Organization, subject: Subject, campaign: Campaign, source: str, media_ref: str = ""
) -> tuple[CaptureSession, str]:
    """Open a capture session in a running campaign of the organization for a subject with live consent to every
    purpose the campaign's camera needs, under a notice naming every attribute it derives, and return it with its
    capture token (see `capture_session_start`). A campaign that ended opens none (409 `campaign_ended`)."""
    if subject.organization_id != organization.pk or campaign.organization_id != organization.pk:
        raise FaceAnalysisError("Not found.", code="not_found", status_code=404)
    if campaign.status == Campaign.Status.ENDED:
        raise FaceAnalysisError("The campaign has ended.", code="campaign_ended", status_code=409)
    return capture_session_start(
        organization=organization, subject=subject, campaign_id=campaign.pk,
        required_purposes=campaign.capture_purposes, derived_attributes=campaign.derived_attribute_set,
        source=source, media_ref=media_ref,
    )
