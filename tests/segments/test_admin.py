"""Segments in the admin (Django's test client): the list and add form of the member's organization, a bad tree
refused with its node's path, the live size preview, another organization's segment as a 404 everywhere, an
upload whose bad line is named and changes nothing, snapshots and recomputes, and an export recorded in the
ledger with only the members whose partner-sharing consent is live."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from consent.models import LedgerEntry, Purpose
from segments.models import Segment, SegmentMembership, SegmentRun
from segments.services import segment_recompute, segment_save
from tests.factories import make_member
from tests.segments.factories import World

pytestmark = pytest.mark.django_db

LINKED = {"field": "subject.partner_linked", "op": "eq", "value": True}
ADD_URL = "/admin/segments/segment/add/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _segment(org, key: str = "linked", *, kind: str = "dynamic", definition: dict | None = None) -> Segment:
    tree = LINKED if definition is None else definition
    return segment_save(organization=org, key=key, name=key.title(), kind=kind, definition=tree)


def _preview(client: Client, definition, url: str = "/admin/segments/segment/preview/"):
    return client.post(url, json.dumps({"definition": definition}), content_type="application/json")


def _change(segment: Segment) -> str:
    return f"/admin/segments/segment/{segment.pk}/change/"


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_list_shows_the_members_segments_and_not_another_organizations(org_a, org_b, marketer_a) -> None:
    _segment(org_a, "ours")
    _segment(org_b, "theirs")
    response = _client(marketer_a).get("/admin/segments/segment/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "ours" in page and "theirs" not in page


def test_adding_a_segment_with_a_valid_tree_saves_its_canonical_tree(org_a, marketer_a) -> None:
    tree = {"all": [LINKED, {"field": "behaviour.clicks", "op": "gte", "value": 1}]}
    response = _client(marketer_a).post(ADD_URL, {
        "key": "clickers", "name": "Clickers", "description": "", "kind": "dynamic", "definition": json.dumps(tree),
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    segment = Segment.objects.get()
    assert segment.organization == org_a and segment.key == "clickers"
    assert segment.definition["all"][1]["window_seconds"] == 7 * 86400  # the service's canonical tree


def test_the_add_page_carries_the_vocabulary_and_the_preview_url(org_a, marketer_a) -> None:
    _segment(org_a, "existing")
    response = _client(marketer_a).get(ADD_URL)
    page = response.content.decode()
    assert 'id="visage-condition-fields"' in page
    assert 'data-preview-url="/admin/segments/segment/preview/"' in page and 'data-path-root="definition"' in page
    segment_field = next(f for f in response.context["condition_fields"] if f["field"] == "segment")
    assert segment_field["values"] == ["existing"]
    clicks = next(f for f in response.context["condition_fields"] if f["field"] == "behaviour.clicks")
    assert clicks["parameters"]["campaign"] == {"optional": True}


def test_a_bad_tree_is_refused_naming_the_node_path(org_a, marketer_a) -> None:
    tree = {"all": [LINKED, {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 5}]}
    response = _client(marketer_a).post(ADD_URL, {
        "key": "clickers", "name": "Clickers", "description": "", "kind": "dynamic", "definition": json.dumps(tree),
    })
    assert response.status_code == 200 and not Segment.objects.exists()
    errors = " ".join(response.context["adminform"].form.errors["definition"])
    assert "definition.all[1].window_seconds" in errors and "between 60 and" in errors


def test_a_key_taken_in_the_organization_is_refused_at_the_key(org_a, marketer_a) -> None:
    _segment(org_a, "linked")
    response = _client(marketer_a).post(ADD_URL, {
        "key": "linked", "name": "Again", "description": "", "kind": "dynamic", "definition": json.dumps(LINKED),
    })
    assert response.status_code == 200 and Segment.objects.count() == 1
    assert "another segment" in " ".join(response.context["adminform"].form.errors["key"])


def test_changing_the_definition_goes_through_the_service(org_a, marketer_a) -> None:
    segment = _segment(org_a)
    clicks = {"field": "behaviour.clicks", "op": "gte", "value": 2}
    response = _client(marketer_a).post(_change(segment), {
        "key": "linked", "name": "Linked", "description": "changed", "definition": json.dumps(clicks),
    })
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.definition == {**clicks, "window_seconds": 7 * 86400} and segment.description == "changed"
    assert segment.kind == "dynamic"


def test_preview_answers_the_size_now_and_saves_nothing(org_a, org_b, marketer_a) -> None:
    world = World(org_a)
    for i in range(3):
        world.subject(partner_user_id=f"u-{i}")
    world.subject()
    World(org_b).subject(partner_user_id="other")  # another organization's subject never counts
    client = _client(marketer_a)
    response = _preview(client, LINKED)
    assert response.status_code == 200 and response.json() == {"size": 3}
    segment = _segment(org_a)
    on_its_page = _preview(client, {"not": LINKED}, f"/admin/segments/segment/{segment.pk}/preview/")
    assert on_its_page.json() == {"size": 1}
    assert not SegmentMembership.objects.exists() and not SegmentRun.objects.exists()


def test_preview_answers_a_bad_tree_with_the_error_shape_and_the_path(org_a, marketer_a) -> None:
    client = _client(marketer_a)
    response = _preview(client, {"any": [LINKED, {"field": "face.nose", "op": "eq", "value": 1}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["path"] == "definition.any[1].field" and error["message"]
    not_json = client.post("/admin/segments/segment/preview/", "{", content_type="application/json")
    assert not_json.status_code == 400 and "error" in not_json.json()
    assert client.get("/admin/segments/segment/preview/").status_code == 405


def test_preview_refuses_a_tree_naming_the_segment_itself(org_a, marketer_a) -> None:
    segment = _segment(org_a)
    response = _preview(_client(marketer_a), {"field": "segment", "op": "in", "value": ["linked"]},
                        f"/admin/segments/segment/{segment.pk}/preview/")
    assert response.status_code == 400 and "cycle" in response.json()["error"]["message"]


@pytest.mark.parametrize("suffix", ["preview/", "recompute/", "snapshot/", "upload/", "export/"])
def test_another_organizations_segment_is_a_404(org_a, org_b, marketer_a, suffix) -> None:
    theirs = _segment(org_b, kind="static")
    client = _client(marketer_a)
    response = client.post(f"/admin/segments/segment/{theirs.pk}/{suffix}", {"partner_ids": "u-1"})
    missing = client.post(f"/admin/segments/segment/{theirs.pk + 1000}/{suffix}", {"partner_ids": "u-1"})
    assert response.status_code == missing.status_code == 404


def test_another_organizations_change_page_answers_as_a_missing_one(org_a, org_b, marketer_a) -> None:
    theirs = _segment(org_b, "theirs")
    client = _client(marketer_a)
    response = client.get(_change(theirs), follow=True)
    missing = client.get(f"/admin/segments/segment/{theirs.pk + 1000}/change/", follow=True)
    assert response.redirect_chain == missing.redirect_chain == [("/admin/", 302)]
    assert "Theirs" not in response.content.decode()
    assert _messages(response) == [m.replace(str(theirs.pk + 1000), str(theirs.pk)) for m in _messages(missing)]
    assert not LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).exists()
    assert not SegmentRun.objects.exists()


def test_a_member_who_may_only_view_cannot_recompute_or_export(org_a) -> None:
    segment = _segment(org_a)
    analyst = _client(make_member(org_a, role="analyst"))
    assert analyst.get(_change(segment)).status_code == 200
    assert analyst.post(f"/admin/segments/segment/{segment.pk}/recompute/").status_code == 403
    assert analyst.post(f"/admin/segments/segment/{segment.pk}/export/").status_code == 403
    assert not SegmentRun.objects.exists()


def test_an_upload_error_names_the_line_and_changes_nothing(org_a, marketer_a) -> None:
    world = World(org_a)
    member = world.subject(partner_user_id="u-1")
    world.subject(partner_user_id="u-2")
    segment = _segment(org_a, "list", kind="static", definition={})
    client = _client(marketer_a)
    client.post(f"/admin/segments/segment/{segment.pk}/upload/", {"partner_ids": "u-1\n"})
    assert SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count() == 1
    runs = SegmentRun.objects.count()
    response = client.post(f"/admin/segments/segment/{segment.pk}/upload/",
                           {"partner_ids": "partner_user_id\nu-2\nu-3,extra\n"}, follow=True)
    shown = " ".join(_messages(response))
    assert "upload.line[3]" in shown and "without commas" in shown and "Nothing was changed" in shown
    assert SegmentRun.objects.count() == runs
    open_rows = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    assert list(open_rows.values_list("subject_id", flat=True)) == [member.pk]  # u-1 alone, as before


def test_an_uploaded_file_makes_the_members_and_counts_the_unknown(org_a, marketer_a) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    world = World(org_a)
    known = [world.subject(partner_user_id=f"u-{i}") for i in range(2)]
    segment = _segment(org_a, "list", kind="static", definition={})
    upload = SimpleUploadedFile("ids.csv", b"partner_user_id\nu-0\nu-1\nu-9\n", content_type="text/csv")
    response = _client(marketer_a).post(f"/admin/segments/segment/{segment.pk}/upload/", {"partner_file": upload},
                                        follow=True)
    assert "2 of 3 ids matched" in " ".join(_messages(response))
    members = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    assert set(members.values_list("subject_id", flat=True)) == {s.pk for s in known}


def test_a_snapshot_takes_a_static_segments_members_and_recompute_a_dynamic_ones(org_a, marketer_a) -> None:
    world = World(org_a)
    world.subject(partner_user_id="u-1")
    static = _segment(org_a, "frozen", kind="static")
    dynamic = _segment(org_a, "live")
    client = _client(marketer_a)
    shot = client.post(f"/admin/segments/segment/{static.pk}/snapshot/", follow=True)
    assert "Snapshot taken: 1 members" in " ".join(_messages(shot))
    again = client.post(f"/admin/segments/segment/{dynamic.pk}/recompute/", follow=True)
    assert "Recomputed: 1 members" in " ".join(_messages(again))
    refused = client.post(f"/admin/segments/segment/{dynamic.pk}/snapshot/", follow=True)
    assert "only a static segment" in " ".join(_messages(refused))
    assert list(SegmentRun.objects.order_by("pk").values_list("kind", flat=True)) == ["snapshot", "full"]


def test_export_names_only_sharing_members_and_writes_a_ledger_entry(org_a, marketer_a) -> None:
    world = World(org_a)
    sharing = world.subject(partner_user_id="u-1")
    world.subject(partner_user_id="u-2", purposes=(Purpose.FACE_ANALYSIS,))  # no partner-sharing consent
    segment = _segment(org_a)
    segment_recompute(segment_id=segment.pk)
    page = _client(marketer_a).get(_change(segment)).content.decode()
    assert "Export CSV (1 of 2)" in page and "partner-sharing consent is live" in page
    response = _client(marketer_a).post(f"/admin/segments/segment/{segment.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="segment-linked.csv"' in response["Content-Disposition"]
    lines = response.content.decode().strip().splitlines()
    assert lines[0] == "subject_id,entered_at,partner_linked"
    assert len(lines) == 2 and lines[1].startswith(str(sharing.public_id))
    entry = LedgerEntry.objects.get(event=LedgerEntry.Event.EXPORTED)
    assert entry.payload["count"] == 1 and entry.payload["requested_by"] == f"admin:{marketer_a.username}"
    assert entry.payload["format"] == "csv" and entry.context_ref == f"segment:{segment.pk}"


def test_the_change_page_shows_size_history_changes_and_pseudonymous_members(org_a, marketer_a) -> None:
    world = World(org_a)
    subjects = [world.subject(partner_user_id=f"u-{i}") for i in range(2)]
    segment = _segment(org_a)
    earlier = timezone.now() - timedelta(days=2)
    segment_recompute(segment_id=segment.pk, now=earlier)
    segment_recompute(segment_id=segment.pk)
    response = _client(marketer_a).get(_change(segment))
    assert response.status_code == 200
    context = response.context
    assert context["chart_data"]["sizes"] == [2, 2] and len(context["chart_data"]["labels"]) == 2
    assert context["changes"] == {"entered": 0, "exited": 0}  # both entered two days ago
    assert context["member_count"] == 2
    page = response.content.decode()
    assert 'id="visage-segment-data"' in page and "vendor/chartjs/chart.umd.min.js" in page
    assert all(str(s.public_id) in page for s in subjects)
    assert "partner_ref_hash" not in page and subjects[0].partner_ref_hash not in page


def test_an_operator_adds_a_segment_for_the_organization_chosen(org_a, org_b) -> None:
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.create_superuser(username="operator", password="pw-123456!")
    client = _client(operator)
    response = client.post(ADD_URL, {
        "organization": org_b.pk, "key": "linked", "name": "Linked", "description": "", "kind": "static",
        "definition": "{}",
    })
    assert response.status_code == 302
    assert Segment.objects.get().organization == org_b
    refused = _preview(client, LINKED)  # the add page has no organization to count in yet
    assert refused.status_code == 400 and "organization" in refused.json()["error"]["message"]
