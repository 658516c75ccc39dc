"""Consent's part of the demo: a retention policy and a published English and German notice."""

from typing import Any

from accounts.models import Organization
from consent import derived
from consent.models import Purpose, RetentionPolicy
from consent.selectors import notice_get_published
from consent.services import notice_draft_create, notice_publish, retention_policy_set

DEMO_PURPOSES = (Purpose.FACE_ANALYSIS, Purpose.PERSONALIZATION)
DEMO_INTRODUCTIONS = {
    "en": "Demo Shop would like to tailor this page to you by analysing your face through your camera.",
    "de": "Demo Shop möchte diese Seite an Sie anpassen, indem Ihr Gesicht über Ihre Kamera analysiert wird.",
}


def seed_demo_consent(sender: Any, organization: Organization, **kwargs: Any) -> None:
    """Idempotent: a retention policy and a published notice per language for the demo purposes."""
    if not RetentionPolicy.objects.filter(organization=organization).exists():
        retention_policy_set(organization=organization, feature_retention_days=30, grant_validity_days=365)
    for language, introduction in DEMO_INTRODUCTIONS.items():
        if notice_get_published(
            organization=organization, language=language, purposes=DEMO_PURPOSES, derived_attributes=derived.ALL_KEYS
        ):
            continue
        draft = notice_draft_create(
            organization=organization,
            language=language,
            purposes=DEMO_PURPOSES,
            controller_name=f"{organization.name}, Musterstraße 1, 10115 Berlin",
            controller_contact="privacy@demo.test",
            recipients="",
            introduction=introduction,
        )
        notice_publish(notice=draft)
