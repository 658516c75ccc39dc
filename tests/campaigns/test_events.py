"""Events on decisions: attributed to the decision's variant, rule, subject and campaign; one per client event id,
also when two posts race; validated; never on another organization's or another visitor's decision."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from campaigns.decisions import DecisionError, decision_make, event_record
from campaigns.models import Decision, Event
from campaigns.request_context import request_attributes
from tests.factories import make_campaign, make_organization, make_rule, make_variant

VISITOR = "visitor-0123456789abcdef"


def _decision(organization, *, subject=None) -> Decision:
    campaign = make_campaign(organization)
    make_variant(campaign, key="standard", default=True)
    phones = make_variant(campaign, key="phones")
    make_rule(campaign, phones, {"field": "request.device", "op": "eq", "value": "mobile"})
    return decision_make(
        campaign=campaign, visitor_id=VISITOR, subject=subject, channel="snippet",
        attributes=request_attributes(user_agent="Mozilla/5.0 (iPhone) Mobile", now=timezone.now()),
    )


def record(decision: Decision, *, organization=None, visitor_id=None, kind="conversion", name="purchase",
           value=Decimal("49.90"), currency="EUR", client_event_id="evt-1", occurred_at=None):
    return event_record(
        organization=organization or decision.organization, decision_public_id=decision.public_id,
        visitor_id=visitor_id, kind=kind, name=name, value=value, currency=currency,
        client_event_id=client_event_id, occurred_at=occurred_at,
    )


@pytest.mark.django_db
def test_an_event_is_attributed_to_the_decisions_variant_and_rule(org_a) -> None:
    decision = _decision(org_a)
    event, created = record(decision)
    assert created
    event.refresh_from_db()
    assert (event.variant, event.rule, event.campaign_id) == (decision.variant, decision.rule, decision.campaign_id)
    assert event.variant.key == "phones" and event.rule is not None
    assert (event.value, event.currency, event.organization_id) == (Decimal("49.9000"), "EUR", org_a.pk)


@pytest.mark.django_db
def test_a_second_post_with_the_same_client_event_id_records_nothing(org_a) -> None:
    decision = _decision(org_a)
    first, created = record(decision)
    again, created_again = record(decision, kind="click", value=None, currency="")
    assert created and not created_again and again.pk == first.pk and again.kind == "conversion"
    other, created_other = record(decision, client_event_id="evt-2", kind="click", value=None, currency="")
    assert created_other and other.pk != first.pk
    assert Event.objects.count() == 2


@pytest.mark.django_db
def test_unknown_foreign_and_another_visitors_decisions_are_the_same_404(org_a, org_b) -> None:
    decision = _decision(org_a)
    for kwargs in ({"organization": org_b}, {"visitor_id": "somebody-else-1234567"}):
        with pytest.raises(DecisionError) as raised:
            record(decision, **kwargs)
        assert (raised.value.status_code, raised.value.message) == (404, "No such decision.")
    with pytest.raises(DecisionError) as raised:
        event_record(organization=org_a, decision_public_id="not-a-uuid", visitor_id=None, kind="click", name="",
                     value=None, currency="", client_event_id="x", occurred_at=None)
    assert raised.value.status_code == 404
    assert record(decision, visitor_id=VISITOR)[1]  # the decision's own visitor may post
    assert Event.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("kind", {"kind": "purchase"}),
        ("value", {"kind": "impression"}),  # a value on an impression
        ("value", {"value": Decimal("-1")}),
        ("value", {"value": Decimal("1e10")}),
        ("value", {"value": Decimal("9999999999.99999")}),  # rounds up to the limit
        ("value", {"value": Decimal("NaN")}),
        ("value", {"value": float("inf")}),
        ("value", {"value": True}),
        ("currency", {"currency": "eur"}),
        ("currency", {"currency": "EURO"}),
        ("currency", {"currency": ""}),
        ("currency", {"value": None, "currency": "EUR"}),
        ("name", {"kind": "custom", "name": ""}),
        ("name", {"name": "has space"}),
        ("client_event_id", {"client_event_id": ""}),
        ("client_event_id", {"client_event_id": "x" * 65}),
        ("occurred_at", {"occurred_at": timezone.now() + timezone.timedelta(days=1)}),
    ],
)
def test_a_bad_event_is_400_naming_the_field_and_writes_nothing(org_a, field: str, changes: dict) -> None:
    decision = _decision(org_a)
    with pytest.raises(DecisionError) as raised:
        record(decision, **changes)
    assert raised.value.status_code == 400 and field in raised.value.details
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_two_concurrent_posts_of_one_client_event_id_record_one_event() -> None:
    decision = _decision(make_organization())
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            event, created = record(decision, client_event_id="race")
            results.append((event.pk, created))
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == 4 and len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert Event.objects.filter(decision=decision).count() == 1
