"""Reads of the campaigns app."""

import functools
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import get_language_info

from accounts.models import Organization
from campaigns.conditions import uses_emotion_recognition
from campaigns.models import Campaign, Decision, Experiment, Rule, Variant
from config.rawsql import fetch_one, select_columns
from consent import derived
from consent.forms import derived_attributes_label
from consent.guards import ConsentDenied, DenialReason, require_consents
from consent.models import Purpose, Subject, purpose_labels
from consent.pages import SITE_LANGUAGES
from consent.selectors import notice_languages_published, retention_policy_get


def campaign_list(*, organization: Organization | None) -> QuerySet[Campaign]:
    """The organization's campaigns, newest first."""
    return Campaign.objects.for_organization(organization)


def _public_id(value: Any) -> str | None:
    """A value that can be a campaign's public id (a short string without NUL), else None."""
    max_length = Campaign._meta.get_field("public_id").max_length
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return None
    return value


@functools.cache
def _campaign_by_public_id_sql() -> str:
    return (
        f"SELECT {select_columns(Campaign)} FROM {Campaign._meta.db_table}"  # noqa: S608 - names from the model
        " WHERE organization_id = %s AND public_id = %s"
    )


def campaign_get(*, organization: Organization | None, public_id: Any) -> Campaign | None:
    """One of the organization's campaigns by public id, whatever its status (with its organization); None when
    missing, malformed or another organization's. SQL written once: every partner decision starts here."""
    key = _public_id(public_id)
    if key is None or organization is None:
        return None
    campaign = fetch_one(Campaign, _campaign_by_public_id_sql(), [organization.pk, key])
    if campaign is not None:
        campaign.organization = organization
    return campaign


def campaign_get_public(*, public_id: str) -> Campaign | None:
    """An active campaign by its public id (the id is the only key a visitor has)."""
    return (
        Campaign.objects.select_related("organization")
        .filter(public_id=public_id, status=Campaign.Status.RUNNING)
        .first()
    )


def campaign_get_by_public_id(*, public_id: str) -> Campaign | None:
    """A campaign by its public id whatever its status, for what outlives it (a visitor's "my data" link)."""
    return Campaign.objects.select_related("organization").filter(public_id=public_id).first()


def campaign_unavailable_status(*, public_id: str) -> int:
    """The HTTP status for a campaign id with no public page: 410 once it ended, else 404 (unknown or draft)."""
    ended = Campaign.objects.filter(public_id=public_id, status=Campaign.Status.ENDED).exists()
    return 410 if ended else 404


@dataclass(frozen=True)
class CampaignReadiness:
    """Whether a campaign's consent page can be shown to visitors, and if not, why, in plain words.

    `missing` blocks the page (and activation); `warnings` do not: a language without its own notice falls back to
    one that has it, and the page says so to the visitor."""

    missing: tuple[str, ...]
    warnings: tuple[str, ...]
    languages: tuple[str, ...]  # site languages with a published notice for the campaign's purposes

    @property
    def ready(self) -> bool:
        return not self.missing


def _purpose_names(purposes: Iterable[str]) -> str:
    return ", ".join(purpose_labels(list(purposes)))


def campaign_readiness_for(
    *, organization: Organization | None, purposes: Iterable[str], derived_attributes: Iterable[str] | None = None
) -> CampaignReadiness:
    """What a campaign of `organization` asking for `purposes` and deriving `derived_attributes` still lacks before
    visitors can see its consent page: a retention policy (the notice states it), and a published notice for
    exactly these purposes and this attribute choice in at least one language; each site language without one is
    a warning. Used by the admin (activation) and the public pages."""
    purposes = sorted(set(purposes))
    if organization is None:
        return CampaignReadiness(("The campaign has no organization.",), (), ())
    missing: list[str] = []
    if not purposes:
        missing.append("No consent purposes are chosen.")
    if retention_policy_get(organization=organization) is None:
        missing.append("The organization has no retention policy: set one under Consent › Retention policies.")
    chosen = derived.ALL_KEYS if derived_attributes is None else frozenset(derived_attributes) | derived.CORE_KEYS
    published = (
        set(notice_languages_published(organization=organization, purposes=purposes, derived_attributes=chosen))
        if purposes
        else set()
    )
    languages = tuple(code for code in SITE_LANGUAGES if code in published)
    warnings: list[str] = []
    if purposes and not languages:
        missing.append(
            f"No published notice for exactly these purposes ({_purpose_names(purposes)}) and what is derived "
            f"({derived_attributes_label(chosen)}) in any language: write one under Consent › Notice versions and "
            "publish it."
        )
    elif purposes:
        shown = get_language_info(languages[0])["name"]
        for code in SITE_LANGUAGES:
            if code not in published:
                name = get_language_info(code)["name"]
                warnings.append(
                    f"No published notice in {name} for these purposes: visitors who read {name} are shown the "
                    f"{shown} one, and told so."
                )
    return CampaignReadiness(tuple(missing), tuple(warnings), languages)


def campaign_readiness(*, campaign: Campaign) -> CampaignReadiness:
    """`campaign_readiness_for` of a saved campaign."""
    organization = campaign.organization if campaign.organization_id else None
    return campaign_readiness_for(
        organization=organization, purposes=campaign.purpose_list, derived_attributes=campaign.derived_attribute_set
    )


def capture_refusal(*, campaign: Campaign, subject: Subject | None) -> tuple[str, str] | None:
    """Why the campaign's camera is not offered to `subject` (the guard's reason and the purpose it is missing), or
    None: every purpose the camera needs is live, under a notice naming what the campaign derives. Reads only."""
    if subject is None:
        return DenialReason.NO_GRANT.value, Purpose.FACE_ANALYSIS.value
    try:
        require_consents(
            organization_id=campaign.organization_id, subject_id=subject.pk, purposes=campaign.capture_purposes,
            derived_attributes=campaign.derived_attribute_set,
        )
    except ConsentDenied as denial:
        return denial.reason.value, denial.purpose
    return None


def campaign_with_content(*, campaign: Campaign) -> Campaign:
    """`campaign` with its variants and rules (and each rule's variant) fetched in two queries."""
    return (
        Campaign.objects.filter(pk=campaign.pk)
        .prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("-is_default", "key")),
            Prefetch("rules", queryset=Rule.objects.select_related("variant").order_by("priority", "id")),
        )
        .get()
    )


def campaign_emotion_rule_names(*, campaign: Campaign) -> list[str]:
    """The names of the campaign's rules (in the order they are tried) that use emotion recognition: what a
    workplace or education setting cannot hold (EU AI Act Art. 5(1)(f))."""
    rules = rule_list(campaign=campaign).select_related(None).only("name", "condition")
    return [rule.name for rule in rules if uses_emotion_recognition(rule.condition)]


def variant_list(*, campaign: Campaign | None) -> QuerySet[Variant]:
    """A campaign's variants, the default first; none for None."""
    if campaign is None:
        return Variant.objects.none()
    return Variant.objects.filter(campaign=campaign, organization_id=campaign.organization_id).order_by(
        "-is_default", "key"
    )


def variant_get(*, campaign: Campaign | None, key: Any) -> Variant | None:
    """A campaign's variant by key; None when missing or malformed."""
    if not isinstance(key, str) or not key or len(key) > 64:
        return None
    return variant_list(campaign=campaign).filter(key=key).first()


def rule_list(*, campaign: Campaign | None) -> QuerySet[Rule]:
    """A campaign's rules in the order they are tried (priority, then id); none for None."""
    if campaign is None:
        return Rule.objects.none()
    return (
        Rule.objects.filter(campaign=campaign, organization_id=campaign.organization_id)
        .select_related("variant")
        .order_by("priority", "id")
    )


def rule_get(*, campaign: Campaign | None, rule_id: Any) -> Rule | None:
    """A campaign's rule by id; None when missing or malformed."""
    if not isinstance(rule_id, int) or isinstance(rule_id, bool) or not 0 < rule_id < 2**63:
        return None
    return rule_list(campaign=campaign).filter(pk=rule_id).first()


def campaign_origin_allowed_anywhere(*, origin: str) -> bool:
    """Whether `origin` is among the allowed origins of a campaign that has not ended (for a CORS preflight, which
    names no campaign); the request that follows is held to its own campaign's list."""
    if not origin or len(origin) > 300 or "\n" in origin:
        return False
    candidates = Campaign.objects.exclude(status=Campaign.Status.ENDED).filter(allowed_origins__contains=origin)
    return any(origin in campaign.allowed_origin_list for campaign in candidates.only("allowed_origins")[:50])


def decision_get_public(*, public_id: Any) -> Decision | None:
    """A decision by its public id with its campaign and organization, for the snippet's events (the id and the
    visitor id are what the page has); None when missing or malformed."""
    try:
        key = uuid.UUID(str(public_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return Decision.objects.select_related("campaign__organization").filter(public_id=key).first()


def decision_get(*, organization: Organization | None, public_id: Any) -> Decision | None:
    """One of the organization's decisions by public id; None when missing, malformed or another's."""
    if organization is None:
        return None
    try:
        key = uuid.UUID(str(public_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return Decision.objects.filter(organization_id=organization.pk, public_id=key).first()


def experiment_list(*, campaign: Campaign | None) -> QuerySet[Experiment]:
    """A campaign's experiments, newest first, with their phases; none for None."""
    if campaign is None:
        return Experiment.objects.none()
    return (
        Experiment.objects.filter(campaign=campaign, organization_id=campaign.organization_id)
        .select_related("campaign").prefetch_related("phases").order_by("-created_at", "-pk")
    )


def experiment_get(*, campaign: Campaign | None, key: Any) -> Experiment | None:
    """A campaign's experiment by key; None when missing or malformed."""
    if not isinstance(key, str) or not key or len(key) > 64:
        return None
    return experiment_list(campaign=campaign).filter(key=key).first()


def experiment_current(*, campaign: Campaign | None) -> Experiment | None:
    """The experiment a campaign's results show by default: the running one, else the latest that ever ran (has
    a phase), else the latest, else None."""
    experiments = experiment_list(campaign=campaign)
    return (
        experiments.filter(status=Experiment.Status.RUNNING).first()
        or experiments.filter(phases__isnull=False).distinct().first()
        or experiments.first()
    )


PHASE_NUMBER = re.compile(r"^[0-9]{1,6}$")  # ASCII digits only: int() refuses other Unicode digits ("²")


def phase_number_parse(raw: str | None) -> int | None:
    """A phase number from a query parameter: None when absent or empty; ValueError when it is not one."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or not PHASE_NUMBER.match(raw):
        raise ValueError("not a phase number")
    return int(raw)
