"""Notices are frozen and hashed when published and say what the law needs; evidence stays minimal;
retention is capped; partner ids are kept only as a keyed hash."""

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from consent.evidence import truncate_ip, user_agent_class
from consent.models import NoticeImmutableError, NoticeVersion, RetentionPolicy
from consent.services import (
    ConsentError,
    notice_draft_copy,
    notice_draft_create,
    notice_publish,
    partner_ref_hash,
    retention_policy_set,
)
from tests.factories import make_notice, make_retention_policy

pytestmark = pytest.mark.django_db


def test_published_text_is_identified_by_the_sha256_of_its_exact_text(org_a) -> None:
    notice = make_notice(org_a)
    assert notice.status == "published" and notice.published_at is not None
    assert notice.text_hash == hashlib.sha256(notice.text.encode()).hexdigest()


@pytest.mark.parametrize("language", ["en", "de"])
def test_notice_states_controller_purposes_data_retention_recipients_rights_and_emotion_recognition(
    org_a, language
) -> None:
    make_retention_policy(org_a, feature_days=90, grant_days=180)
    draft = notice_draft_create(
        organization=org_a,
        language=language,
        purposes=["face_analysis", "partner_sharing"],
        controller_name="Shop GmbH",
        controller_contact="privacy@shop.test",
        recipients="Partner AG",
    )
    text = notice_publish(notice=draft).text
    expected = {
        "en": [
            "Shop GmbH",
            "privacy@shop.test",
            "Face analysis",
            "Sharing aggregates with a partner",
            "pixels",
            "never stored",
            "90 days",
            "180 days",
            "Partner AG",
            "withdraw",
            "erased",
            "export",
            "emotion recognition system is applied to you",
            "Article 50(3)",
        ],
        "de": [
            "Shop GmbH",
            "Gesichtsanalyse",
            "Weitergabe",
            "Pixel",
            "nie gespeichert",
            "90 Tage",
            "180 Tage",
            "Partner AG",
            "widerrufen",
            "löschen",
            "exportieren",
            "Emotionserkennungssystem",
            "Artikel 50",
        ],
    }[language]
    missing = [phrase for phrase in expected if phrase not in text]
    assert not missing, (missing, text)


def test_emotion_recognition_statement_only_when_expressions_are_analysed(org_a) -> None:
    make_retention_policy(org_a)
    draft = notice_draft_create(
        organization=org_a,
        language="en",
        purposes=["face_analysis"],
        controller_name="Shop",
        controller_contact="x@shop.test",
        derived_attributes=["age"],
    )
    text = notice_publish(notice=draft).text
    assert "emotion recognition" not in text.lower() and "Biometric categorisation" in text


def test_published_notice_is_immutable_and_kept(org_a) -> None:
    notice = NoticeVersion.objects.get(pk=make_notice(org_a).pk)
    notice.controller_name = "Someone else"
    with pytest.raises(NoticeImmutableError):
        notice.save()
    with pytest.raises(NoticeImmutableError):
        notice.delete()


def test_draft_is_editable_and_publishing_twice_is_refused(org_a) -> None:
    draft = make_notice(org_a, publish=False)
    draft.introduction = "Edited"
    draft.save()
    published = notice_publish(notice=draft)
    assert "Edited" in published.text
    with pytest.raises(ConsentError) as error:
        notice_publish(notice=published)
    assert error.value.code == "notice_not_draft"


def test_publishing_a_new_version_supersedes_the_old_one(org_a) -> None:
    first = make_notice(org_a)
    second = notice_publish(notice=notice_draft_copy(notice=first))
    first.refresh_from_db()
    assert first.status == "superseded" and second.status == "published" and second.version == 2
    assert first.text_hash != second.text_hash


def test_publishing_needs_a_retention_policy(org_b) -> None:
    draft = notice_draft_create(
        organization=org_b, language="en", purposes=["face_analysis"], controller_name="X", controller_contact="Y"
    )
    with pytest.raises(ConsentError) as error:
        notice_publish(notice=draft)
    assert error.value.code == "no_retention_policy"


def test_retention_is_capped_at_three_years_by_the_service_and_by_the_database(org_a) -> None:
    saved = retention_policy_set(organization=org_a, feature_retention_days=3 * 365 + 1, grant_validity_days=30)
    assert saved.policy.feature_retention_days == 3 * 365 and len(saved.warnings) == 1
    with pytest.raises(ValidationError):  # the consent's validity is no retention category: refused, not capped
        retention_policy_set(organization=org_a, grant_validity_days=3 * 365 + 1)
    RetentionPolicy.objects.filter(organization=org_a).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionPolicy.objects.create(organization=org_a, feature_retention_days=5000, grant_validity_days=30)


def test_partner_ref_hash_is_keyed_per_organization(org_a, org_b) -> None:
    a = partner_ref_hash(organization=org_a, partner_user_id="user-1")
    b = partner_ref_hash(organization=org_b, partner_user_id="user-1")
    assert a != b and len(a) == 64 and a != hashlib.sha256(b"user-1").hexdigest()


@pytest.mark.parametrize(
    ("raw", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("not an ip", ""),
        (None, ""),
    ],
)
def test_ip_is_truncated_to_its_network(raw, truncated) -> None:
    assert truncate_ip(raw) == truncated


@pytest.mark.parametrize(
    ("ua", "klass"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "browser/desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "browser/mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "browser/tablet"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "automated"),
        ("", "unknown"),
    ],
)
def test_user_agent_is_reduced_to_a_class(ua, klass) -> None:
    assert user_agent_class(ua) == klass


def test_grant_lasts_as_long_as_the_notice_it_was_given_under_says(org_a) -> None:
    from datetime import timedelta

    from tests.factories import make_grant, make_subject

    make_retention_policy(org_a, grant_days=30)
    notice = make_notice(org_a)
    retention_policy_set(organization=org_a, feature_retention_days=30, grant_validity_days=400)
    grant = make_grant(make_subject(org_a), notice)
    assert grant.expires_at - grant.granted_at == timedelta(days=30)
