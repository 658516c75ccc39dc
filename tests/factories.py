"""Plain typed makers for test data."""

import itertools

from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, membership_set, organization_create

_counter = itertools.count(1)


def make_organization(*, name: str = "Acme") -> Organization:
    n = next(_counter)
    return organization_create(name=f"{name} {n}", slug=f"{name.lower().replace(' ', '-')}-{n}")


def make_member(organization: Organization, *, role: str = Membership.Role.MARKETER, password: str = "pw-123456!"):
    user = get_user_model().objects.create_user(username=f"user{next(_counter)}", password=password)
    membership_set(user=user, organization=organization, role=role)
    return user


def make_api_key(organization: Organization, *, scopes: tuple[str, ...] = ("read", "write")) -> tuple[ApiKey, str]:
    return api_key_create(organization=organization, name=f"key {next(_counter)}", scopes=scopes)


# --- consent ------------------------------------------------------------------------------------------------------


def make_retention_policy(organization: Organization, *, feature_days: int = 365, grant_days: int = 365):
    from consent.services import retention_policy_set

    return retention_policy_set(
        organization=organization, feature_retention_days=feature_days, grant_validity_days=grant_days
    ).policy


def make_notice(
    organization: Organization,
    *,
    language: str = "en",
    purposes: tuple[str, ...] = ("face_analysis",),
    publish: bool = True,
    introduction: str = "",
    derived_attributes: tuple[str, ...] | None = None,
):
    """A notice version naming `derived_attributes` (None: all); published by default (with a retention policy
    created when missing)."""
    from consent.models import RetentionPolicy
    from consent.services import notice_draft_create, notice_publish

    if not RetentionPolicy.objects.filter(organization=organization).exists():
        make_retention_policy(organization)
    notice = notice_draft_create(
        organization=organization,
        language=language,
        purposes=purposes,
        controller_name=f"{organization.name} GmbH",
        controller_contact="privacy@example.test",
        introduction=introduction,
        derived_attributes=derived_attributes,
    )
    return notice_publish(notice=notice) if publish else notice


def make_subject(organization: Organization, *, partner_user_id: str | None = None):
    from consent.services import subject_create, subject_get_or_create_for_partner

    if partner_user_id is not None:
        return subject_get_or_create_for_partner(organization=organization, partner_user_id=partner_user_id)[0]
    return subject_create(organization=organization)


def make_grant(subject, notice, *, purposes: tuple[str, ...] | None = None, channel: str = "partner_api"):
    """Grants for a subject under a published notice; returns the first Grant."""
    from consent.services import consent_grant

    return consent_grant(
        organization=subject.organization,
        subject=subject,
        notice=notice,
        purposes=purposes or tuple(notice.purpose_list),
        channel=channel,
        evidence={"ip_prefix": "203.0.113.0/24", "user_agent_class": "browser/desktop"},
    )[0]


# --- campaigns ----------------------------------------------------------------------------------------------------


def make_campaign(
    organization: Organization,
    *,
    purposes: tuple[str, ...] = ("face_analysis",),
    optional: tuple[str, ...] = (),
    derived_attributes: tuple[str, ...] | None = None,
    status: str = "running",
):
    """A campaign whose camera needs `purposes`, offering `optional` as extras, deriving `derived_attributes`
    (None: all)."""
    from campaigns.models import Campaign
    from consent import derived

    campaign = Campaign(
        organization=organization,
        name=f"Campaign {next(_counter)}",
        required_purposes=",".join(purposes),
        optional_purposes=",".join(optional),
        derived_attributes=derived.canonical(derived.ALL_KEYS if derived_attributes is None else derived_attributes),
        status=status,
    )
    campaign.full_clean()
    campaign.save()
    return campaign


def campaign_admin_form(**fields) -> dict:
    """What the campaign admin page posts besides the fields a test sets: the schedule, goal, setting and decision
    fields at their defaults, and empty variant and rule inlines."""
    data: dict = {
        "goal": "conversion", "setting_of_use": "general", "starts_at_0": "", "starts_at_1": "", "ends_at_0": "",
        "ends_at_1": "", "allowed_origins": "", "decision_ttl_seconds": 60,
    }
    for prefix in ("variants", "rules"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MIN_NUM_FORMS": 0,
                     f"{prefix}-MAX_NUM_FORMS": 1000})
    return {**data, **fields}


def make_variant(campaign, *, key: str, default: bool = False, **content):
    """A variant of `campaign` (the default one with `default=True`), with `content` fields (headline, ...)."""
    from campaigns.models import Variant

    return Variant.objects.create(
        organization=campaign.organization, campaign=campaign, key=key, name=key.title(), is_default=default,
        **content,
    )


def make_rule(campaign, variant, condition: dict, *, priority: int = 100, name: str = "", enabled: bool = True):
    """A rule of `campaign` showing `variant` when `condition` (a tree, stored as given) matches."""
    from campaigns.models import Rule

    return Rule.objects.create(
        organization=campaign.organization, campaign=campaign, variant=variant, condition=condition,
        priority=priority, name=name or f"Rule {next(_counter)}", enabled=enabled,
    )


def make_experiment(campaign, arms: list[tuple[str, float | None]], *, key: str = "exp", kind: str = "ab",
                    start: bool = True, **fields):
    """An experiment of `campaign` through its service, arms as (variant key, weight), started unless told."""
    from campaigns.experiments import experiment_create, experiment_start

    data = {"key": key, "name": key.title(), "kind": kind, **fields,
            "arms": [{"variant": v, **({"weight": w} if w is not None else {})} for v, w in arms]}
    experiment = experiment_create(campaign=campaign, data=data)
    return experiment_start(experiment=experiment) if start else experiment
