"""Writes of the campaigns app. Campaigns sit above face analysis: what a campaign asks of a capture session (it
is running, its camera's purposes, what it derives) is decided here and handed down as plain values."""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Organization
from campaigns.content import ContentError, FieldReader, content_replace, refuse_unknown, require_object
from campaigns.models import Campaign, Variant
from campaigns.selectors import campaign_emotion_rule_names, campaign_readiness, campaign_readiness_for
from consent.models import Subject
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession
from faceanalysis.services.capture import capture_session_start

logger = logging.getLogger(__name__)


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


# --- Campaign writes for the partner API ---------------------------------------------------------------------------

CAMPAIGN_FIELDS = frozenset({
    "name", "status", "goal", "setting_of_use", "required_purposes", "optional_purposes", "derived_attributes",
    "starts_at", "ends_at", "allowed_origins", "decision_ttl_seconds", "variants", "rules",
})
# What the API may move a campaign to from each status (the same status is always allowed: nothing changes).
# Ended is final; a campaign visitors have seen is paused rather than sent back to draft or the schedule.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    Campaign.Status.DRAFT: frozenset({Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.ENDED}),
    Campaign.Status.SCHEDULED: frozenset({Campaign.Status.DRAFT, Campaign.Status.RUNNING, Campaign.Status.PAUSED,
                                          Campaign.Status.ENDED}),
    Campaign.Status.RUNNING: frozenset({Campaign.Status.PAUSED, Campaign.Status.ENDED}),
    Campaign.Status.PAUSED: frozenset({Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.ENDED}),
    Campaign.Status.ENDED: frozenset(),
}
MAX_DECISION_TTL_SECONDS = 86400
MAX_ALLOWED_ORIGINS = 50
_ORIGIN = re.compile(r"^(https?)://([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
                     r"|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$")


def origin_normalise(value: str) -> str | None:
    """`value` as a browser's Origin (scheme://host[:port], lower case, no default port), or None when it is not
    one: no path (a lone trailing slash, as a copied address has, is dropped), query, fragment or credentials,
    http or https only."""
    text = value.strip().lower()
    match = _ORIGIN.match(text[:-1] if text.endswith("/") and text.count("/") == 3 else text)
    if match is None:
        return None
    scheme, host, port = match.groups()
    if port is not None:
        if not 0 < int(port) < 65536:
            return None
        if (scheme, int(port)) in (("http", 80), ("https", 443)):
            port = None
    return f"{scheme}://{host}" + (f":{int(port)}" if port else "")


def _choice(data: Mapping[str, Any], name: str, choices: type[models.TextChoices]) -> str:
    value = data[name]
    if not isinstance(value, str) or value not in choices.values:
        raise ContentError(name, f"Give one of: {', '.join(choices.values)}.")
    return value


def _string_list(data: Mapping[str, Any], name: str, *, max_items: int = 20) -> list[str]:
    value = data[name]
    if not isinstance(value, list) or len(value) > max_items:
        raise ContentError(name, f"Give a list of at most {max_items} strings.")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item or len(item) > 200:
            raise ContentError(f"{name}[{index}]", "Give a non-empty string of at most 200 characters.")
    return value


def _moment(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data[name]
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise ContentError(name, "Give an ISO 8601 date and time with its offset (2030-01-31T09:00:00Z), or null.")
    if timezone.is_naive(parsed):
        raise ContentError(name, "Give the time's UTC offset (Z or +01:00).")
    if not 1970 <= parsed.year <= 9998:  # the database's range, with room for any offset
        raise ContentError(name, "Give a year from 1970 to 9998.")
    return parsed


def _campaign_apply(campaign: Campaign, data: Mapping[str, Any]) -> None:
    """Put the scalar members of `data` on `campaign` (unsaved), each checked; not its status or content."""
    read = FieldReader(data, "")
    if "name" in data:
        campaign.name = read.text("name", max_length=200, blank=False)
    if "goal" in data:
        campaign.goal = _choice(data, "goal", Campaign.Goal)
    if "setting_of_use" in data:
        campaign.setting_of_use = _choice(data, "setting_of_use", Campaign.SettingOfUse)
    for name, attribute in (("required_purposes", "required_purposes"), ("optional_purposes", "optional_purposes"),
                            ("derived_attributes", "derived_attributes")):
        if name in data:
            setattr(campaign, attribute, ",".join(_string_list(data, name, max_items=40)))
    for name in ("starts_at", "ends_at"):
        if name in data:
            setattr(campaign, name, _moment(data, name))
    if "decision_ttl_seconds" in data:
        campaign.decision_ttl_seconds = read.integer("decision_ttl_seconds", low=0, high=MAX_DECISION_TTL_SECONDS)
    if "allowed_origins" in data:
        origins = _string_list(data, "allowed_origins", max_items=MAX_ALLOWED_ORIGINS)
        normalised: list[str] = []
        for index, origin in enumerate(origins):
            value = origin_normalise(origin)
            if value is None:
                raise ContentError(f"allowed_origins[{index}]", "Give an origin: scheme://host[:port], http or "
                                   "https, without path, query or credentials.")
            if value not in normalised:
                normalised.append(value)
        campaign.allowed_origins = "\n".join(normalised)
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        raise ContentError("ends_at", "A campaign ends after it starts.")
    try:
        campaign.clean()  # purposes and attributes, canonical
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise ContentError(field, messages[0]) from None


def _refuse_emotion_rules(campaign: Campaign) -> None:
    """A workplace or education setting cannot hold expression rules (EU AI Act Art. 5(1)(f))."""
    if not campaign.emotion_recognition_forbidden:
        return
    named = campaign_emotion_rule_names(campaign=campaign)
    if named:
        raise ContentError(
            "setting_of_use",
            f"Emotion recognition is forbidden at work and in education (EU AI Act Art. 5(1)(f)), and the "
            f"rule '{named[0]}' uses an expression condition: change or delete it first.",
        )


def _status_apply(campaign: Campaign, previous: str, wanted: str, purposes_changed: bool) -> None:
    """Move the saved campaign to `wanted` if the API allows it from `previous` and the campaign is ready."""
    if wanted != previous and wanted not in STATUS_TRANSITIONS[previous]:
        raise ContentError("status", f"A {previous} campaign cannot become {wanted}.",
                           code="status_transition_not_allowed", status_code=409)
    live = wanted in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)
    if wanted == Campaign.Status.SCHEDULED and campaign.starts_at is None:
        raise ContentError("starts_at", "A scheduled campaign needs starts_at.")
    if live and (wanted != previous or purposes_changed):
        readiness = campaign_readiness_for(
            organization=campaign.organization, purposes=campaign.purpose_list,
            derived_attributes=campaign.derived_attribute_set,
        )
        if not readiness.ready:
            raise ContentError("status", " ".join(readiness.missing), code="campaign_not_ready", status_code=409)
    if wanted in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED) and not (
        Variant.objects.filter(campaign=campaign, is_default=True).exists()
    ):
        raise ContentError("variants", "A campaign that can run needs a default variant.",
                           code="campaign_not_ready", status_code=409)
    if wanted != previous:
        campaign.status = wanted
        campaign.save(update_fields=["status"])


def _campaign_write(campaign: Campaign, data: Any, *, previous_status: str) -> Campaign:
    data = require_object(data, "")
    refuse_unknown(data, CAMPAIGN_FIELDS, "")
    before = (campaign.purpose_list, campaign.derived_attribute_set, campaign.setting_of_use)
    wanted = _choice(data, "status", Campaign.Status) if "status" in data else previous_status
    with transaction.atomic():
        _campaign_apply(campaign, data)
        campaign.save()
        content_replace(campaign=campaign, variants=data.get("variants"), rules=data.get("rules"))
        if campaign.setting_of_use != before[2] and "rules" not in data:
            _refuse_emotion_rules(campaign)
        purposes_changed = (campaign.purpose_list, campaign.derived_attribute_set) != before[:2]
        _status_apply(campaign, previous_status, wanted, purposes_changed)
    return campaign


def campaign_create(*, organization: Organization, data: Any) -> Campaign:
    """A new campaign of `organization` from the partner API's body: name and required_purposes at least, a
    draft unless `status` says otherwise (then as a change from draft); may carry its `variants` and `rules`. The
    first problem is a ContentError with its path; nothing is written then."""
    data = require_object(data, "")
    for name in ("name", "required_purposes"):
        if name not in data:
            raise ContentError(name, "This field is required.")
    campaign = Campaign(organization=organization, status=Campaign.Status.DRAFT)
    return _campaign_write(campaign, data, previous_status=Campaign.Status.DRAFT)


def campaign_update(*, campaign: Campaign, data: Any) -> Campaign:
    """Change the members of `data` on one of the caller's campaigns, in one transaction: its fields; the whole
    of its `variants` and/or `rules` when given (campaigns.content.campaign_content_replace); its status along
    STATUS_TRANSITIONS, running and scheduled only when ready (campaign_readiness_for, a default variant). A
    setting that forbids emotion recognition is refused while expression rules remain. The first problem is a
    ContentError with its path; nothing is written then."""
    locked = Campaign.objects.select_for_update().filter(pk=campaign.pk)
    with transaction.atomic():
        current = locked.get()
        updated = _campaign_write(current, data, previous_status=current.status)
    campaign.refresh_from_db()
    return updated
@dataclass(frozen=True)
class ScheduleAdvance:
    """What one pass of the schedule did: campaign ids started, ended, and those due to start but not ready
    (they stay scheduled, and the next pass tries again)."""

    started: tuple[int, ...]
    ended: tuple[int, ...]
    not_ready: tuple[int, ...]


def campaign_schedules_advance(*, now: datetime) -> ScheduleAdvance:
    """Move campaigns along their schedule at `now`: a running or paused campaign whose `ends_at` has passed ends;
    a scheduled one whose `starts_at` has passed runs, if visitors could see its consent page
    (`campaign_readiness`), else it stays scheduled and is reported. A scheduled campaign whose whole window has
    passed ends without running. Idempotent: each transition is one UPDATE guarded by the status it leaves, so a
    second pass (or a concurrent one) changes nothing."""
    with transaction.atomic():
        ending = Campaign.objects.filter(ends_at__lte=now).filter(
            status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED]
        ).exclude(status=Campaign.Status.SCHEDULED, starts_at__isnull=True)
        ended = tuple(ending.values_list("pk", flat=True))
        Campaign.objects.filter(pk__in=ended, status__in=[
            Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED,
        ]).update(status=Campaign.Status.ENDED)
        due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, starts_at__lte=now).select_related(
            "organization"
        )
        ready: list[int] = []
        not_ready: list[int] = []
        for campaign in due:
            (ready if campaign_readiness(campaign=campaign).ready else not_ready).append(campaign.pk)
        if ready:
            Campaign.objects.filter(pk__in=ready, status=Campaign.Status.SCHEDULED).update(
                status=Campaign.Status.RUNNING
            )
    if not_ready:
        logger.warning("scheduled campaigns due to start are not ready and stay scheduled: %s", not_ready)
    return ScheduleAdvance(started=tuple(ready), ended=ended, not_ready=tuple(not_ready))
