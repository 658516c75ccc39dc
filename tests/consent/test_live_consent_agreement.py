"""Property: over random consent histories (granted, withdrawn, re-granted, expired, notice superseded or retired,
subject erased) every form of "is this consent live" gives one answer: the guard (`has_consents`, which runs
`require_consents`), the bulk form (`live_consent_subjects`, `live_grants`), and what is displayed (`grant_state`,
`consent_state`, the admin's state column and filter, the expression the filter uses).

Examples are bounded so the file runs in well under a minute on PostgreSQL and SQLite alike; the examples are
random per run, so each run also looks somewhere new."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Organization
from consent import derived
from consent.guards import (
    ConsentDenied,
    GrantState,
    grant_state,
    grant_state_expression,
    has_consent,
    has_consents,
    live_consent_subjects,
    live_grants,
    require_consent,
)
from consent.models import Grant, NoticeVersion, Purpose, Subject
from consent.selectors import consent_state, consent_state_map
from consent.services import (
    ConsentError,
    consent_grant,
    consent_withdraw,
    grants_expire,
    notice_retire,
    retention_policy_set,
    subject_erase,
)
from tests.factories import make_member, make_notice, make_organization, make_subject

pytestmark = pytest.mark.django_db

EXAMPLES = settings(
    max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

SUBJECTS = 3
PURPOSES = tuple(Purpose.values)
# The notices an organization offers: a purpose set and what the text names (None: every attribute).
NOTICE_KINDS = (
    (PURPOSES, None),
    (PURPOSES, ()),
    (("face_analysis",), ("expression",)),
    (("face_analysis", "personalization"), ("age", "gender")),
    (("personalization", "partner_sharing"), None),
)
# What a caller asks to derive: nothing said, core attributes only, optional ones, one the catalogue lacks.
WANTED_ATTRIBUTES = (None, (), ("face_position",), ("expression",), ("age",), ("age", "gender", "expression"),
                     ("mind_reading",))
VALIDITY_DAYS = (1, 3)
# Where the clock is read, in hours from the end of the history (None: the forms' own now).
AT_HOURS = (None, 36, 80)  # now; 1-day grants run out; all run out

subject_index = st.integers(min_value=0, max_value=SUBJECTS - 1)
kind_index = st.integers(min_value=0, max_value=len(NOTICE_KINDS) - 1)
purpose_sets = st.sets(st.sampled_from(PURPOSES), min_size=1)
steps = st.one_of(
    st.tuples(st.just("grant"), subject_index, kind_index, purpose_sets, st.sampled_from(VALIDITY_DAYS)),
    st.tuples(st.just("grant"), subject_index, kind_index, purpose_sets, st.sampled_from(VALIDITY_DAYS)),
    st.tuples(st.just("withdraw"), subject_index, st.none() | purpose_sets),
    st.tuples(st.just("publish"), kind_index, st.sampled_from(VALIDITY_DAYS)),
    st.tuples(st.just("retire"), kind_index, st.booleans()),
    st.tuples(st.just("expire"), st.integers(min_value=0, max_value=4)),
    st.tuples(st.just("erase"), subject_index, st.booleans()),
)
questions = st.tuples(
    st.sampled_from(AT_HOURS), purpose_sets, st.sampled_from(WANTED_ATTRIBUTES)
)


@dataclass
class History:
    """One organization, its subjects, and every notice version published per kind (oldest first)."""

    organization: Organization
    subjects: list[Subject]
    notices: dict[int, list[NoticeVersion]] = field(default_factory=dict)

    def publish(self, kind: int, validity_days: int) -> NoticeVersion:
        """A new version of this kind (the previous published one is superseded), granting `validity_days`."""
        retention_policy_set(
            organization=self.organization, feature_retention_days=365, grant_validity_days=validity_days
        )
        purposes, attributes = NOTICE_KINDS[kind]
        notice = make_notice(self.organization, purposes=purposes, derived_attributes=attributes)
        self.notices.setdefault(kind, []).append(notice)
        return notice

    def offered(self, kind: int, validity_days: int) -> NoticeVersion:
        current = [n for n in self.notices.get(kind, []) if _status(n) == NoticeVersion.Status.PUBLISHED]
        return current[-1] if current else self.publish(kind, validity_days)


def _status(notice: NoticeVersion) -> str:
    return NoticeVersion.objects.values_list("status", flat=True).get(pk=notice.pk)


def _play(history: History, step: tuple) -> None:
    action, *args = step
    organization = history.organization
    if action == "grant":
        index, kind, wanted, validity_days = args
        subject, notice = history.subjects[index], history.offered(kind, validity_days)
        purposes = sorted(wanted & set(notice.purpose_list)) or notice.purpose_list[:1]
        try:
            consent_grant(organization=organization, subject=subject, notice=notice, purposes=purposes,
                          channel="partner_api")
        except ConsentError as error:
            assert error.code == "subject_erased"
    elif action == "withdraw":
        index, purposes = args
        consent_withdraw(organization=organization, subject=history.subjects[index], purposes=purposes,
                         channel="my_data_page")
    elif action == "publish":
        history.publish(*args)
    elif action == "retire":
        kind, newest = args
        live = [n for n in history.notices.get(kind, []) if _status(n) != NoticeVersion.Status.RETIRED]
        if live:
            notice_retire(notice=live[-1] if newest else live[0])
    elif action == "expire":
        (days,) = args
        grants_expire(now=timezone.now() + timedelta(days=days))
    elif action == "erase":
        index, by_service = args
        subject = Subject.objects.get(pk=history.subjects[index].pk)
        if by_service:  # grants withdrawn, the subject marked, its purge recorded
            subject_erase(organization=organization, subject=subject, channel="admin_paper")
        else:  # only the column, grants left open: the forms must still all refuse
            Subject.objects.filter(pk=subject.pk).update(erased_at=timezone.now())


def _at(hours: int | None) -> datetime | None:
    return None if hours is None else timezone.now() + timedelta(hours=hours)


def _admin_view(history: History) -> tuple[dict[int, str], set[int]]:
    """The admin's grant list for an owner of the organization: the state column of every grant shown, and the
    grants its `state=active` filter keeps."""
    client = Client()
    client.force_login(make_member(history.organization, role="owner"))
    listed = client.get("/admin/consent/grant/")
    active = client.get("/admin/consent/grant/?state=active")
    assert listed.status_code == active.status_code == 200
    changelist = listed.context["cl"]
    assert changelist.result_count == Grant.objects.filter(organization=history.organization).count()
    column = {grant.pk: str(changelist.model_admin.state_display(grant)) for grant in changelist.queryset}
    return column, set(active.context["cl"].queryset.values_list("pk", flat=True))


def _assert_agree(
    history: History, *, at: datetime | None, purposes: set[str], wanted: tuple[str, ...] | None, label: str
) -> None:
    """The guard and the bulk form, for these purposes and attributes; and the display, where it can say: every
    purpose needed shows active, and the face-analysis grant's notice names what is wanted."""
    org_id = history.organization.pk
    bulk = set(live_consent_subjects(organization_id=org_id, purposes=purposes, at=at, derived_attributes=wanted)
               .values_list("pk", flat=True))
    needed = {*purposes, *(["face_analysis"] if wanted is not None else [])}
    for number, subject in enumerate(history.subjects):
        guard = has_consents(
            organization_id=org_id, subject_id=subject.pk, purposes=purposes, derived_attributes=wanted, at=at
        )
        by_purpose = {s.purpose: s for s in consent_state(organization=history.organization, subject=subject, at=at)}
        shown = all(by_purpose[p].state == GrantState.ACTIVE for p in needed)
        if wanted is not None and shown:
            shown = not set(wanted) - derived.parse(by_purpose["face_analysis"].grant.notice.derived_attributes)
        assert guard == (subject.pk in bulk) == shown, (
            f"{sorted(purposes)} / {wanted} of subject #{number} {label}: guard {guard}, bulk {subject.pk in bulk}, "
            f"shown {shown}"
        )


@EXAMPLES
@given(history_steps=st.lists(steps, min_size=1, max_size=14), asked=st.lists(questions, min_size=1, max_size=4))
def test_guard_bulk_form_and_display_agree_over_random_histories(
    history_steps: list[tuple], asked: list[tuple]
) -> None:
    organization = make_organization(name="Agree")
    history = History(organization, [make_subject(organization) for _ in range(SUBJECTS)])
    for step in history_steps:
        _play(history, step)
    org_id = organization.pk
    subjects = history.subjects
    grants = list(Grant.objects.filter(organization=organization).select_related("subject", "notice"))

    # Per purpose, at each clock: the guard, the bulk form, each grant's state, and the selector's state.
    for hours in AT_HOURS:
        at = _at(hours)
        expression = dict(
            Grant.objects.filter(organization=organization)
            .annotate(shown=grant_state_expression(at=at)).values_list("pk", "shown")
        )
        assert expression == {g.pk: grant_state(g, at=at).value for g in grants}
        states = {s.pk: {p.purpose: p for p in consent_state(organization=organization, subject=s, at=at)}
                  for s in subjects}
        for subject in subjects:  # the narrow form decisions read agrees with it, state for state
            assert consent_state_map(organization=organization, subject=subject, at=at) == {
                purpose: state.state.value for purpose, state in states[subject.pk].items()
            }
        for purpose in PURPOSES:
            bulk = set(live_consent_subjects(organization_id=org_id, purposes=[purpose], at=at)
                       .values_list("pk", flat=True))
            live = set(live_grants(organization_id=org_id, purpose=purpose, at=at).values_list("pk", flat=True))
            for subject in subjects:
                guard = has_consent(organization_id=org_id, subject_id=subject.pk, purpose=purpose, at=at)
                shown = {g.pk for g in grants if g.subject_id == subject.pk and g.purpose == purpose
                         and grant_state(g, at=at) == GrantState.ACTIVE}
                selector = states[subject.pk][purpose]
                assert guard == (subject.pk in bulk) == bool(shown) == (selector.state == GrantState.ACTIVE), (
                    f"{purpose} of subject #{subjects.index(subject)} at {hours} h: guard {guard}, bulk "
                    f"{subject.pk in bulk}, shown {shown}, selector {selector.state} after {history_steps}"
                )
                assert shown == {g.pk for g in grants if g.pk in live and g.subject_id == subject.pk}
                assert not guard or selector.grant.pk in shown

    # What the face-analysis grant's notice names, for every attribute choice a caller may ask for.
    for hours in (None, 36):
        for wanted in WANTED_ATTRIBUTES:
            _assert_agree(history, at=_at(hours), purposes={"face_analysis"}, wanted=wanted, label=f"at {hours} h")
    # Several purposes and attributes at once.
    for hours, purposes, wanted in asked:
        _assert_agree(history, at=_at(hours), purposes=purposes, wanted=wanted, label=f"at {hours} h")

    # The admin, now: its column says "active" exactly for the grants the guard would return, and so does its filter.
    column, filtered = _admin_view(history)
    guarded = set()
    for subject in subjects:
        for purpose in PURPOSES:
            with contextlib.suppress(ConsentDenied):
                guarded.add(require_consent(organization_id=org_id, subject_id=subject.pk, purpose=purpose).pk)
    assert {pk for pk, state in column.items() if state == GrantState.ACTIVE} == guarded == filtered
    assert set(column) == {g.pk for g in grants}


def test_bulk_form_joins_into_other_queries(org_a, org_b) -> None:
    """The bulk form is a queryset other queries take in (`subject__in`, `Exists`), scoped to one organization."""
    notice = make_notice(org_a, purposes=("face_analysis", "personalization"), derived_attributes=("expression",))
    both, one, erased = (make_subject(org_a) for _ in range(3))
    for subject, purposes in ((both, ["face_analysis", "personalization"]), (one, ["face_analysis"]),
                              (erased, ["face_analysis", "personalization"])):
        consent_grant(organization=org_a, subject=subject, notice=notice, purposes=purposes, channel="partner_api")
    Subject.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    other = make_subject(org_b)
    consent_grant(organization=org_b, subject=other, notice=make_notice(org_b), purposes=["face_analysis"],
                  channel="partner_api")

    everything = live_consent_subjects(organization_id=org_a.pk, purposes=["face_analysis", "personalization"])
    joined = Grant.objects.filter(subject__in=everything, purpose="personalization")
    assert list(joined.values_list("subject_id", flat=True)) == [both.pk]
    face = live_consent_subjects(organization_id=org_a.pk, purposes=["face_analysis"])
    assert set(face.values_list("pk", flat=True)) == {both.pk, one.pk}
    assert not live_consent_subjects(organization_id=org_a.pk, purposes=["face_analysis"],
                                     derived_attributes=["age"]).exists()
    assert not live_consent_subjects(organization_id=None, purposes=["face_analysis"]).exists()
    assert not live_consent_subjects(organization_id=org_a.pk, purposes=["mind_reading"]).exists()
    with pytest.raises(ValueError):
        live_consent_subjects(organization_id=org_a.pk, purposes=[])
    # The guard refuses consent to nothing too, rather than calling it all there is.
    assert not has_consents(organization_id=org_a.pk, subject_id=both.pk, purposes=[])
