"""The one guard: a live, explicit grant for the purpose, or a clear refusal with its reason. Fails closed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.guards import ConsentDenied, DenialReason, has_consent, has_consents, require_consent, require_consents
from consent.models import Grant, Subject
from consent.services import consent_grant, consent_withdraw, notice_draft_copy, notice_publish, notice_retire
from tests.factories import make_grant, make_notice, make_subject

pytestmark = pytest.mark.django_db


def _require(subject: Subject, purpose: str = "face_analysis", **kwargs) -> Grant:
    return require_consent(organization_id=subject.organization_id, subject_id=subject.pk, purpose=purpose, **kwargs)


def _reason(call) -> DenialReason:
    with pytest.raises(ConsentDenied) as info:
        call()
    return info.value.reason


def test_live_grant_is_returned(org_a) -> None:
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    assert _require(subject) == grant
    assert has_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="face_analysis")


def test_no_grant_is_refused(org_a) -> None:
    subject = make_subject(org_a)
    assert _reason(lambda: _require(subject)) == DenialReason.NO_GRANT
    assert not has_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="face_analysis")


def test_grant_for_another_purpose_does_not_cover_this_one(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, purposes=("face_analysis", "personalization")), purposes=("face_analysis",))
    assert _reason(lambda: _require(subject, "personalization")) == DenialReason.NO_GRANT


def test_unknown_purpose_is_refused(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    assert _reason(lambda: _require(subject, "mind_reading")) == DenialReason.UNKNOWN_PURPOSE


def test_withdrawn_grant_is_refused(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    consent_withdraw(organization=org_a, subject=subject, channel="partner_api")
    assert _reason(lambda: _require(subject)) == DenialReason.WITHDRAWN


def test_expired_grant_is_refused_before_bookkeeping_catches_up(org_a) -> None:
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    later = grant.expires_at + timedelta(seconds=1)
    assert _reason(lambda: _require(subject, at=later)) == DenialReason.EXPIRED


def test_expired_grant_stays_refused_after_expiry_bookkeeping(org_a) -> None:
    from consent.services import grants_expire

    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert grants_expire() == 1
    assert _reason(lambda: _require(subject)) == DenialReason.EXPIRED


def test_grant_under_retired_notice_is_refused(org_a) -> None:
    subject = make_subject(org_a)
    notice = make_notice(org_a)
    make_grant(subject, notice)
    notice_retire(notice=notice)
    assert _reason(lambda: _require(subject)) == DenialReason.NOTICE_RETIRED


def test_grant_under_superseded_notice_stays_valid(org_a) -> None:
    subject = make_subject(org_a)
    notice = make_notice(org_a)
    grant = make_grant(subject, notice)
    notice_publish(notice=notice_draft_copy(notice=notice))
    assert _require(subject) == grant


def test_erased_subject_is_refused(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    Subject.objects.filter(pk=subject.pk).update(erased_at=timezone.now())
    assert _reason(lambda: _require(subject)) == DenialReason.SUBJECT_ERASED


def test_missing_subject_is_refused(org_a) -> None:
    assert (
        _reason(lambda: require_consent(organization_id=org_a.pk, subject_id=987654, purpose="face_analysis"))
        == DenialReason.UNKNOWN_SUBJECT
    )


@pytest.mark.parametrize("organization_id", [None, 0])
def test_no_organization_is_refused(org_a, organization_id) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    call = lambda: require_consent(organization_id=organization_id, subject_id=subject.pk, purpose="face_analysis")  # noqa: E731
    assert _reason(call) == DenialReason.UNKNOWN_SUBJECT


def test_subject_of_another_organization_is_refused_like_a_missing_one(org_a, org_b) -> None:
    subject_b = make_subject(org_b)
    make_grant(subject_b, make_notice(org_b))
    call = lambda: require_consent(organization_id=org_a.pk, subject_id=subject_b.pk, purpose="face_analysis")  # noqa: E731
    assert _reason(call) == DenialReason.UNKNOWN_SUBJECT


def test_regrant_after_withdrawal_is_allowed_again(org_a) -> None:
    subject = make_subject(org_a)
    notice = make_notice(org_a)
    make_grant(subject, notice)
    consent_withdraw(organization=org_a, subject=subject, channel="my_data_page")
    grant = consent_grant(
        organization=org_a, subject=subject, notice=notice, purposes=["face_analysis"], channel="consent_page"
    )[0]
    assert _require(subject) == grant


def test_every_denial_reason_is_covered_by_a_test() -> None:
    """A new reason without a test here fails this."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    missing = [reason.name for reason in DenialReason if f"DenialReason.{reason.name}" not in source]
    assert not missing, missing


def test_one_query_answers_a_live_grant_and_a_refusal_still_names_its_reason(
    org_a, django_assert_num_queries
) -> None:
    """The common yes costs one query; every no goes through the checks that name the reason."""
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    with django_assert_num_queries(1):
        assert _require(subject).pk == grant.pk
    Subject.objects.filter(pk=subject.pk).update(erased_at=timezone.now())
    assert _reason(lambda: _require(subject)) == DenialReason.SUBJECT_ERASED


def test_live_grant_comes_back_whole_with_every_field_loaded(org_a, django_assert_num_queries) -> None:
    """The one-query yes is written as SQL: it must return the same row, nothing deferred (no lazy query later)."""
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    with django_assert_num_queries(1):
        found = _require(subject)
        assert found.get_deferred_fields() == set()
        loaded = {f.attname: getattr(found, f.attname) for f in Grant._meta.concrete_fields}
    assert loaded == {f.attname: getattr(grant, f.attname) for f in Grant._meta.concrete_fields}
    assert not found._state.adding and found._state.db == "default"


def test_live_grant_of_another_subject_or_organization_is_not_returned(org_a, org_b) -> None:
    subject, other = make_subject(org_a), make_subject(org_a)
    make_grant(other, make_notice(org_a))
    assert _reason(lambda: _require(subject)) == DenialReason.NO_GRANT
    assert _reason(
        lambda: require_consent(organization_id=org_b.pk, subject_id=other.pk, purpose="face_analysis")
    ) == DenialReason.UNKNOWN_SUBJECT


# --- several purposes together, and what the notice names ------------------------------------------------------

TWO = ("face_analysis", "personalization")


def _require_all(subject: Subject, purposes=TWO, **kwargs) -> dict[str, Grant]:
    return require_consents(organization_id=subject.organization_id, subject_id=subject.pk, purposes=purposes, **kwargs)


def test_every_purpose_live_together_returns_each_grant(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, purposes=TWO))
    grants = _require_all(subject)
    assert set(grants) == set(TWO) and {g.purpose for g in grants.values()} == set(TWO)
    assert has_consents(organization_id=org_a.pk, subject_id=subject.pk, purposes=TWO)


def test_one_of_two_purposes_is_not_enough_and_names_the_missing_one(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, purposes=TWO), purposes=("face_analysis",))
    with pytest.raises(ConsentDenied) as info:
        _require_all(subject)
    assert info.value.reason == DenialReason.NO_GRANT and info.value.purpose == "personalization"
    assert not has_consents(organization_id=org_a.pk, subject_id=subject.pk, purposes=TWO)


def test_withdrawing_either_purpose_ends_the_pair(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, purposes=TWO))
    consent_withdraw(organization=org_a, subject=subject, purposes=["personalization"], channel="partner_api")
    with pytest.raises(ConsentDenied) as info:
        _require_all(subject)
    assert info.value.reason == DenialReason.WITHDRAWN and info.value.purpose == "personalization"


def test_notice_that_does_not_name_an_attribute_does_not_cover_deriving_it(org_a) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, derived_attributes=("age",)))
    assert _require_all(subject, ("face_analysis",), derived_attributes={"gaze", "age"})
    with pytest.raises(ConsentDenied) as info:
        _require_all(subject, ("face_analysis",), derived_attributes={"gaze", "gender"})
    assert info.value.reason == DenialReason.NOTICE_DOES_NOT_COVER and info.value.purpose == "face_analysis"
