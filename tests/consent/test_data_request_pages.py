"""The "my data" page's data subject requests: what is kept per category, the export download (recorded, streamed,
never cached), the erasure with its confirmation step, and the dead link afterwards."""

import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.decisions import decision_make
from campaigns.request_context import request_attributes
from consent.data_requests import one_month_after
from consent.models import DataRequest, OutboxEvent, Subject
from consent.services import consent_give_on_page
from segments.services import segment_recompute, segment_save
from tests.factories import make_campaign, make_notice, make_variant
from tests.purges import run_owed_purges

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")


@pytest.fixture
def given(org_a) -> tuple[Subject, str]:
    notice = make_notice(org_a, purposes=PURPOSES)
    return consent_give_on_page(
        organization=org_a, notice=notice, purposes=PURPOSES, offered_purposes=PURPOSES, context_ref="campaign:x"
    )


def _url(token: str, action: str = "") -> str:
    return f"/consent/my-data/{token}/" + (f"{action}/" if action else "")


def test_the_page_shows_what_is_kept_per_category(given) -> None:
    subject, token = given
    html = Client().get(_url(token)).content.decode()
    assert 'data-category="consent.Grant"><td>Grants</td><td>2</td>' in html
    assert 'data-category="faceanalysis.FrameFeatures"><td>Frame features</td><td>0</td>' in html
    assert "Download my data (JSON)" in html and "Erase everything" in html


def test_download_records_an_export_request_and_streams_the_document(given) -> None:
    subject, token = given
    response = Client().post(_url(token, "export"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert response["Cache-Control"] == "no-store, private"
    document = json.loads(b"".join(response.streaming_content))
    assert document["subject"]["id"] == str(subject.public_id)
    assert len(document["sections"]["consent.Grant"]) == 2
    request = DataRequest.objects.get(subject_id=subject.pk)
    assert (request.kind, request.state, request.requested_by, request.channel) == (
        "export", "done", "subject", "my_data_page")
    assert OutboxEvent.objects.filter(type="export.ready", subject_ref=str(subject.public_id)).exists()
    assert "Export" in Client().get(_url(token)).content.decode()  # the request list


def test_erasure_asks_for_confirmation_first(given) -> None:
    subject, token = given
    response = Client().post(_url(token, "erase"))
    assert response.status_code == 200 and 'id="erase-confirm"' in response.content.decode()
    assert not DataRequest.objects.exists() and Subject.objects.get(pk=subject.pk).erased_at is None


def test_confirmed_erasure_answers_without_the_token_and_the_link_dies(given, django_capture_on_commit_callbacks
                                                                       ) -> None:
    subject, token = given
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(_url(token, "erase"), {"confirm": "yes"})
    html = response.content.decode()
    assert response.status_code == 200 and 'id="erased"' in html and token not in html
    request = DataRequest.objects.get(subject_id=subject.pk, kind="erasure")
    assert str(request.public_id) in html
    run_owed_purges()
    request.refresh_from_db()
    assert request.state == DataRequest.State.DONE
    for action in ("", "export", "erase", "withdraw"):
        method = Client().get if not action else Client().post
        assert method(_url(token, action), {"confirm": "yes"}).status_code == 404, action
    assert DataRequest.objects.filter(kind="erasure").count() == 1


def test_withdrawn_then_erased(given) -> None:
    subject, token = given
    Client().post(_url(token, "withdraw"), {"purpose": "all"})
    run_owed_purges()
    assert Client().post(_url(token, "erase"), {"confirm": "yes"}).status_code == 200
    run_owed_purges()
    assert Client().get(_url(token)).status_code == 404
    assert Subject.objects.get(pk=subject.pk).erased_at is not None


@pytest.mark.parametrize("forged", ["x", "A" * 43, "%00" * 3])
def test_forged_token_opens_no_request(given, forged) -> None:
    for action in ("export", "erase"):
        assert Client().post(_url(forged, action), {"confirm": "yes"}).status_code == 404
    assert not DataRequest.objects.exists()


def test_requests_need_csrf(given) -> None:
    subject, token = given
    for action in ("export", "erase"):
        assert Client(enforce_csrf_checks=True).post(_url(token, action), {"confirm": "yes"}).status_code == 403
    assert not DataRequest.objects.exists()


@pytest.mark.parametrize(("received", "due"), [
    (datetime(2026, 1, 31, 9, 30, tzinfo=UTC), datetime(2026, 2, 28, 9, 30, tzinfo=UTC)),
    (datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    (datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)),
    (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
])
def test_a_request_is_due_one_calendar_month_after_receipt(received, due) -> None:
    assert one_month_after(received) == due


def test_the_requests_read_in_german_too(given) -> None:
    subject, token = given
    html = Client().get(_url(token) + "?lang=de").content.decode()
    assert "Meine Daten herunterladen (JSON)" in html and "Alles löschen" in html
    confirm = Client().post(_url(token, "erase"), {"lang": "de"}).content.decode()
    assert "Ja, alles löschen" in confirm


def test_the_page_shows_segments_and_recent_decisions(given, org_a) -> None:
    subject, token = given
    campaign = make_campaign(org_a)
    make_variant(campaign, key="spring-hero", default=True)
    decision_make(campaign=campaign, visitor_id="visitor-page-000001", subject=subject,
                  attributes=request_attributes(now=timezone.now()), channel="api")
    segment = segment_save(organization=org_a, key="everyone", name="Everyone consented",
                           definition={"field": "consent.face_analysis", "op": "eq", "value": "active"})
    segment_recompute(segment_id=segment.pk)
    html = Client().get(_url(token)).content.decode()
    decisions = html[html.index('id="decisions"'):]
    assert campaign.name in decisions and "spring-hero" in decisions
    assert timezone.now().strftime("%Y-%m-%d") in decisions
    assert "<li>Everyone consented</li>" in html
