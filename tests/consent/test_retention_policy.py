"""Retention policies with legal caps: every category's period is saved, a value above its cap is saved capped with a
warning that names the cap, Texas re-caps what is biometric; the admin page, the public schedule and the notice text
say the same schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from consent import retention
from consent.models import RetentionPolicy
from consent.notice_text import compose_notice_text
from consent.services import ConsentError, retention_policy_set
from tests.factories import make_member, make_notice, make_organization

pytestmark = pytest.mark.django_db

BIOMETRIC = [c for c in retention.CATEGORIES if c.biometric and c.key != "frame_bytes"]
RECORDS = [c for c in retention.CATEGORIES if not c.biometric]


def test_every_category_is_saved_by_its_field_name(org_a) -> None:
    periods = {c.field: c.minimum + 7 for c in retention.CATEGORIES}
    saved = retention_policy_set(organization=org_a, jurisdiction="us", grant_validity_days=90, **periods)
    policy = RetentionPolicy.objects.get(organization=org_a)
    assert saved.warnings == [] and saved.policy.pk == policy.pk
    assert {c.field: policy.period(c) for c in retention.CATEGORIES} == periods
    assert (policy.jurisdiction, policy.grant_validity_days) == ("us", 90)


def test_the_two_fields_of_existing_callers_leave_the_others_as_they_are(org_a) -> None:
    retention_policy_set(organization=org_a, face_context_retention_days=10)
    retention_policy_set(organization=org_a, feature_retention_days=30, grant_validity_days=180)
    policy = RetentionPolicy.objects.get(organization=org_a)
    assert (policy.feature_retention_days, policy.grant_validity_days, policy.face_context_retention_days) == (
        30, 180, 10)
    assert policy.decision_retention_days == retention.CATEGORY_BY_KEY["decisions"].default


def test_a_value_above_its_cap_is_saved_capped_with_a_warning_naming_the_cap(org_a) -> None:
    saved = retention_policy_set(organization=org_a, feature_retention_days=1200)
    assert saved.policy.feature_retention_days == 1095
    (warning,) = saved.warnings
    assert str(warning) == ("Per-frame face features: 1200 days asked, saved as 1095 "
                            "(BIPA 740 ILCS 14/15(a): three years)")


@pytest.mark.parametrize("category", retention.CATEGORIES, ids=lambda c: c.key)
@pytest.mark.parametrize("jurisdiction", [code for code, _ in retention.Jurisdiction.CHOICES])
def test_every_category_holds_its_cap_in_every_jurisdiction(org_a, category, jurisdiction) -> None:
    cap = retention.category_cap(category, jurisdiction)
    saved = retention_policy_set(organization=org_a, jurisdiction=jurisdiction, **{category.field: cap.value + 1})
    assert saved.policy.period(category) == cap.value
    assert [(w.category.key, w.saved, w.cap.name) for w in saved.warnings] == [(category.key, cap.value, cap.name)]
    assert cap.name in str(saved.warnings[0])
    exact = retention_policy_set(organization=org_a, jurisdiction=jurisdiction, **{category.field: cap.value})
    assert exact.warnings == [] and exact.policy.period(category) == cap.value


def test_frame_bytes_are_capped_at_minutes_whatever_is_asked(org_a) -> None:
    saved = retention_policy_set(organization=org_a, frame_bytes_seconds=86400)
    assert saved.policy.frame_bytes_seconds == retention.FRAME_BYTES_MAX_SECONDS
    assert "10 minutes" in str(saved.warnings[0])


def test_texas_recaps_the_biometric_categories_already_saved(org_a) -> None:
    retention_policy_set(organization=org_a, jurisdiction="us", **{c.field: 1000 for c in BIOMETRIC},
                         decision_retention_days=1000)
    saved = retention_policy_set(organization=org_a, jurisdiction="us_tx")
    assert {c.field: saved.policy.period(c) for c in BIOMETRIC} == {c.field: 365 for c in BIOMETRIC}
    assert saved.policy.decision_retention_days == 1000  # not biometric: no Texas cap
    assert sorted(w.category.key for w in saved.warnings) == sorted(c.key for c in BIOMETRIC)
    assert all(w.recapped and "Texas" in str(w) and "1000 days in force" in str(w) for w in saved.warnings)
    stored = RetentionPolicy.objects.get(organization=org_a)
    assert stored.jurisdiction == "us_tx" and stored.feature_retention_days == 365


@pytest.mark.parametrize(("field", "value"), [("feature_retention_days", 0), ("frame_bytes_seconds", 0),
                                              ("consent_record_retention_days", 364)])
def test_below_the_minimum_is_a_clear_error_and_nothing_is_saved(org_a, field, value) -> None:
    with pytest.raises(ConsentError) as error:
        retention_policy_set(organization=org_a, **{field: value})
    assert error.value.code == "retention_below_minimum" and "at least" in str(error.value)
    assert not RetentionPolicy.objects.filter(organization=org_a).exists()


def test_an_unknown_jurisdiction_or_period_is_refused(org_a) -> None:
    with pytest.raises(ConsentError):
        retention_policy_set(organization=org_a, jurisdiction="mars")
    with pytest.raises(TypeError):
        retention_policy_set(organization=org_a, pixel_retention_years=1)


# --- the admin ------------------------------------------------------------------------------------------------------


def _owner_client(organization) -> Client:
    client = Client()
    client.force_login(make_member(organization, role="owner"))
    return client


def _form(policy: RetentionPolicy, **changes) -> dict:
    data = {c.field: policy.period(c) for c in retention.CATEGORIES}
    data.update(jurisdiction=policy.jurisdiction, grant_validity_days=policy.grant_validity_days)
    return {**data, **changes}


def test_the_admin_page_shows_every_category_with_its_unit_and_caps(org_a) -> None:
    policy = retention_policy_set(organization=org_a).policy
    page = _owner_client(org_a).get(f"/admin/consent/retentionpolicy/{policy.pk}/change/").content.decode()
    for category in retention.CATEGORIES:
        assert f'name="{category.field}"' in page
    assert 'name="jurisdiction"' in page
    assert "In days, at least 1; at most 1095 (BIPA 740 ILCS 14/15(a): three years); at most 365 (Texas" in page
    assert "In seconds, at least 1; at most 600" in page


def test_saving_above_a_cap_in_the_admin_saves_capped_and_warns(org_a) -> None:
    policy = retention_policy_set(organization=org_a).policy
    response = _owner_client(org_a).post(
        f"/admin/consent/retentionpolicy/{policy.pk}/change/",
        _form(policy, feature_retention_days=1200, jurisdiction="eu"), follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Per-frame face features: 1200 days asked, saved as 1095 (BIPA 740 ILCS 14/15(a): three years)" in messages
    assert RetentionPolicy.objects.get(pk=policy.pk).feature_retention_days == 1095


def test_texas_in_the_admin_recaps_with_warnings_and_old_notices_are_named(org_a) -> None:
    make_notice(org_a)
    policy = RetentionPolicy.objects.get(organization=org_a)
    response = _owner_client(org_a).post(
        f"/admin/consent/retentionpolicy/{policy.pk}/change/",
        _form(policy, jurisdiction="us_tx", aggregate_retention_days=900), follow=True,
    )
    page = response.content.decode()
    assert "Session aggregates: 900 days asked, saved as 365 (Texas CUBI § 503.001(c)(3): one year)" in page
    assert "still state the previous schedule" in page
    policy.refresh_from_db()
    assert (policy.jurisdiction, policy.aggregate_retention_days) == ("us_tx", 365)


def test_below_the_minimum_in_the_admin_is_a_form_error(org_a) -> None:
    policy = retention_policy_set(organization=org_a).policy
    response = _owner_client(org_a).post(f"/admin/consent/retentionpolicy/{policy.pk}/change/",
                                         _form(policy, consent_record_retention_days=30))
    assert response.status_code == 200
    assert "consent_record_retention_days" in response.context["adminform"].form.errors
    assert RetentionPolicy.objects.get(pk=policy.pk).consent_record_retention_days == 6 * 365


def test_a_member_adds_the_policy_of_their_own_organization_capped(org_a) -> None:
    form = _form(RetentionPolicy(), jurisdiction="us_tx", face_context_retention_days=400)
    response = _owner_client(org_a).post("/admin/consent/retentionpolicy/add/", form, follow=True)
    assert response.status_code == 200
    policy = RetentionPolicy.objects.get(organization=org_a)
    assert policy.face_context_retention_days == 365 and policy.jurisdiction == "us_tx"


# --- the public schedule --------------------------------------------------------------------------------------------


def test_the_public_page_lists_every_category_in_force_in_both_languages(org_a, django_assert_max_num_queries) -> None:
    retention_policy_set(organization=org_a, jurisdiction="us_tx", face_context_retention_days=20,
                         frame_bytes_seconds=90)
    with django_assert_max_num_queries(2):  # the organization and its policy
        en = Client().get(f"/consent/o/{org_a.slug}/retention/?lang=en").content.decode()
    de = Client().get(f"/consent/o/{org_a.slug}/retention/?lang=de").content.decode()
    for category in retention.CATEGORIES:
        assert f'id="retention-{category.key}"' in en and f'id="retention-{category.key}"' in de
    assert "at most 20 days" in en and "höchstens 20 Tage" in de
    assert "at most 90 seconds" in en and "höchstens 90 Sekunden" in de
    assert "United States, Texas (CUBI: one year)" in en and "Vereinigte Staaten, Texas" in de
    assert "Texas CUBI § 503.001(c)(3): one year" in en and "Texas CUBI § 503.001(c)(3): ein Jahr" in de
    assert "No policy has been saved yet" not in en


def test_the_public_page_shows_the_frame_ttl_in_force_under_the_operators_ceiling(org_a, settings) -> None:
    settings.VISAGE_FRAME_TTL_SECONDS = 45
    retention_policy_set(organization=org_a, frame_bytes_seconds=300)
    assert "at most 45 seconds" in Client().get(f"/consent/o/{org_a.slug}/retention/").content.decode()


def test_without_a_saved_policy_the_page_shows_the_defaults_that_apply(org_a) -> None:
    page = Client().get(f"/consent/o/{org_a.slug}/retention/?lang=en").content.decode()
    assert "No policy has been saved yet: these are the defaults" in page
    assert f"at most {RetentionPolicy().feature_retention_days} days" in page
    assert Client().get("/consent/o/no-such-organization/retention/").status_code == 404


# --- the notice text ------------------------------------------------------------------------------------------------


def _compose(language: str, snapshot: dict) -> str:
    return compose_notice_text(
        language=language, version=1, purposes=["face_analysis"], controller_name="Shop", controller_contact="x@y",
        recipients="", introduction="", derived_attributes=set(), retention=snapshot,
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_published_notice_states_every_category_in_both_languages() -> None:
    organization = make_organization()
    periods = {c.field: c.minimum + 11 + i for i, c in enumerate(retention.CATEGORIES)}
    retention_policy_set(organization=organization, jurisdiction="us_tx", **periods)
    for language, heading, cap in (("en", "Retention schedule:", "Texas CUBI § 503.001(c)(3): one year"),
                                   ("de", "Aufbewahrungsfristen:", "Texas CUBI § 503.001(c)(3): ein Jahr")):
        text = make_notice(organization, language=language).text
        schedule = text[text.index(heading):text.index("\n\n", text.index(heading))]
        assert len(schedule.splitlines()) == 1 + len(retention.CATEGORIES) + 2  # + validity and the cap
        for value in periods.values():
            assert f" {value} " in schedule, (language, value)
        assert f"365 {'days' if language == 'en' else 'Tage'} " in schedule and cap in schedule
    assert "Aufbewahrungsfristen:" in text and "Sekunden" in text


def test_an_older_snapshot_with_two_periods_still_renders() -> None:
    for language in ("en", "de"):
        text = _compose(language, {"feature_retention_days": 30, "grant_validity_days": 365})
        assert " 30 " in text and " 365 " in text
        assert ("are kept as proof." in text) or ("als Nachweis aufbewahrt." in text)
        assert "Sekunden" not in text and "seconds" not in text


# --- the partner API ------------------------------------------------------------------------------------------------


def test_the_partner_api_gives_the_schedule_in_force_with_caps(client_a, org_a) -> None:
    defaults = client_a.get("/api/v1/consent/retention/").json()
    assert defaults["defaults"] is True and defaults["updated_at"] is None
    retention_policy_set(organization=org_a, jurisdiction="us_tx", feature_retention_days=200)
    body = client_a.get("/api/v1/consent/retention/").json()
    assert body["defaults"] is False and body["jurisdiction"] == "us_tx"
    by_key = {c["key"]: c for c in body["categories"]}
    assert list(by_key) == [c.key for c in retention.CATEGORIES]
    assert by_key["features"] == {
        "key": "features", "label": "Per-frame face features", "covers": by_key["features"]["covers"],
        "period": 200, "unit": "days", "biometric": True, "cap": 365,
        "cap_name": "Texas CUBI § 503.001(c)(3): one year",
    }
    assert by_key["frame_bytes"]["unit"] == "seconds" and by_key["events"]["biometric"] is False
