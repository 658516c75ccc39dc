"""`subject_meets` answers what `members_query(..., subject_id=...).exists()` answers, for every kind of leaf and at
any `now`, with the SQL built once per definition: the subject and the times move, the rest stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from consent.models import Grant, Purpose
from segments.compiler import SUBJECT, _one_subject_template, members_query, subject_meets
from segments.conditions import validate_definition
from segments.services import segment_recompute, segment_save
from tests.segments.factories import World

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = 86400

DEFINITIONS = {
    "four conditions": {"all": [
        {"field": "face.attention_share", "op": "gte", "value": 0.6, "window_seconds": 7 * DAY},
        {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 30 * DAY},
        {"field": "consent.partner_sharing", "op": "eq", "value": "active"},
        {"field": "subject.days_since_first_seen", "op": "lte", "value": 90},
    ]},
    "no clicks, new or withdrawn": {"any": [
        {"all": [{"field": "behaviour.clicks", "op": "eq", "value": 0, "window_seconds": 2 * DAY},
                 {"field": "subject.days_since_first_seen", "op": "between", "value": [1, 3]}]},
        {"field": "consent.partner_sharing", "op": "in", "value": ["withdrawn", "none"]},
    ]},
    "not smiling, gender, sessions": {"all": [
        {"not": {"field": "face.smile_share", "op": "gte", "value": 0.5, "window_seconds": DAY}},
        {"field": "face.gender", "op": "eq", "value": "female", "min_frames": 1},
        {"field": "face.sessions", "op": "gte", "value": 1, "window_seconds": 3 * DAY},
    ]},
}


def _world(org):
    world = World(org)
    subjects = []
    for i in range(6):
        subject = world.subject(created_at=NOW - timedelta(days=2 + 30 * i))
        session = world.session(subject, started_at=NOW - timedelta(days=i))
        for k in range(4):
            world.frame(session, at=NOW - timedelta(days=i, hours=k), looking=k < 3 - i % 2, smile=0.1 * i,
                        gender="female" if i % 3 else "male", gender_confidence=0.9)
        if i % 2 == 0:
            world.event(subject, "click", at=NOW - timedelta(days=i * 4))
        subjects.append(subject)
    Grant.objects.filter(subject=subjects[3], purpose=Purpose.PARTNER_SHARING).update(
        ended_at=NOW - timedelta(days=1), end_reason=Grant.EndReason.WITHDRAWN)
    subjects.append(world.subject(purposes=(), created_at=NOW - timedelta(days=2)))  # no grant at all
    return subjects


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_subject_meets_agrees_with_the_orm_query_for_each_subject_at_each_time(org_a, name) -> None:
    subjects = _world(org_a)
    tree = validate_definition(DEFINITIONS[name])
    answers = set()
    for now in (NOW, NOW + timedelta(hours=13), NOW + timedelta(days=5), NOW - timedelta(days=3)):
        for subject in subjects:
            expected = members_query(tree, organization_id=org_a.pk, now=now, subject_id=subject.pk).exists()
            assert subject_meets(tree, organization_id=org_a.pk, now=now, subject_id=subject.pk) is expected, (
                f"subject {subjects.index(subject)} at {now}")
            answers.add(expected)
    assert answers == {True, False}  # the world holds members and others of each definition


def test_subject_meets_builds_the_sql_once_per_definition_and_organization(org_a, org_b) -> None:
    subjects = _world(org_a)
    tree = validate_definition(DEFINITIONS["four conditions"])
    subject_meets(tree, organization_id=org_a.pk, now=NOW, subject_id=subjects[0].pk)
    built = _one_subject_template.cache_info().misses
    for subject in subjects:
        subject_meets(tree, organization_id=org_a.pk, now=NOW + timedelta(minutes=7), subject_id=subject.pk)
    assert _one_subject_template.cache_info().misses == built
    sql, slots = _one_subject_template(json.dumps(tree, sort_keys=True), org_a.pk, "default", None)
    assert sql and slots.count(SUBJECT) >= 4  # the SQL built once, not the ORM's answer each time
    assert not subject_meets(tree, organization_id=org_b.pk, now=NOW, subject_id=subjects[0].pk)
    assert _one_subject_template.cache_info().misses == built + 1  # another organization: its own SQL


def test_subject_meets_follows_a_named_segment_as_its_members_change(org_a) -> None:
    subjects = _world(org_a)
    clicks = {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 30 * DAY}
    clickers = segment_save(organization=org_a, key="clickers", name="Clickers", definition=clicks)
    tree = validate_definition({"field": "segment", "op": "in", "value": ["clickers"]},
                               segment_known=lambda key: key == "clickers")
    assert not subject_meets(tree, organization_id=org_a.pk, now=NOW, subject_id=subjects[0].pk)
    segment_recompute(segment_id=clickers.pk, now=NOW)
    assert subject_meets(tree, organization_id=org_a.pk, now=NOW, subject_id=subjects[0].pk)
    assert not subject_meets(tree, organization_id=org_a.pk, now=NOW, subject_id=subjects[1].pk)


def test_a_recompute_enters_the_new_members_and_exits_those_who_left(org_a) -> None:
    subjects = _world(org_a)  # clicks of subjects 0, 2, 4 at 0, 8 and 16 days before NOW
    clicks = {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 30 * DAY}
    clickers = segment_save(organization=org_a, key="clickers", name="Clickers", definition=clicks)
    first = segment_recompute(segment_id=clickers.pk, now=NOW)
    assert (first.entered, first.exited, first.size) == (3, 0, 3)
    World(org_a).event(subjects[1], "click", at=NOW + timedelta(days=19))
    later = segment_recompute(segment_id=clickers.pk, now=NOW + timedelta(days=20))  # subject 4's click is 36 days old
    assert (later.entered, later.exited, later.size) == (1, 1, 3)
    again = segment_recompute(segment_id=clickers.pk, now=NOW + timedelta(days=20))
    assert (again.entered, again.exited, again.size) == (0, 0, 3)
    open_ids = set(clickers.memberships.filter(exited_at__isnull=True).values_list("subject_id", flat=True))
    assert open_ids == {subjects[0].pk, subjects[1].pk, subjects[2].pk}
