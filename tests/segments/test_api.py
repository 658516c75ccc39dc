"""The segments API: definitions saved, previewed and refused with the node's path; members, exports and matches
only of members with live partner-sharing consent, each in the ledger, behind the `export` scope; uploads refused
whole with the line's path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import LedgerEntry, Purpose, Subject
from segments.models import Segment, SegmentMembership
from segments.services import segment_recompute, segment_save
from tests.conftest import api_client
from tests.factories import make_api_key, make_campaign
from tests.segments.factories import World

pytestmark = pytest.mark.django_db

LINKED = {"field": "subject.partner_linked", "op": "eq", "value": True}
FACE_ONLY = (Purpose.FACE_ANALYSIS, Purpose.PERSONALIZATION)


@pytest.fixture
def world(org_a) -> World:
    return World(org_a)


@pytest.fixture
def exporter(org_a):
    return api_client(make_api_key(org_a, scopes=("read", "write", "export"))[1])


def _url(name: str, key: str | None = None) -> str:
    return reverse(f"api:segment-{name}", kwargs={"key": key} if key else None)


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def _segment(world: World, key: str = "linked", *, kind: str = "dynamic", definition=LINKED) -> Segment:
    return segment_save(organization=world.organization, key=key, name=key, kind=kind, definition=definition)


def _audience(world: World) -> dict[str, Subject]:
    """Three linked subjects in the `linked` segment: one may be shared, one may not, one has no consent left."""
    subjects = {
        "sharing": world.subject(partner_user_id="u-sharing"),
        "private": world.subject(partner_user_id="u-private", purposes=FACE_ONLY),
        "none": world.subject(partner_user_id="u-none", purposes=()),
    }
    segment_recompute(segment_id=_segment(world).pk)
    return subjects


# --- definitions -------------------------------------------------------------------------------------------------


def test_create_list_get_patch_and_delete_a_segment(client_a, world) -> None:
    created = client_a.post(_url("list"), {"key": "clickers", "name": "Clickers", "definition": {
        "field": "behaviour.clicks", "op": "gte", "value": 1}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"] == "clickers" and body["kind"] == "dynamic" and body["definition"]["window_seconds"] == 604800
    assert [s["key"] for s in client_a.get(_url("list")).json()["results"]] == ["clickers"]
    assert client_a.get(_url("detail", "clickers")).json()["name"] == "Clickers"
    patched = client_a.patch(_url("detail", "clickers"), {"name": "Clicked once"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "Clicked once"
    assert client_a.delete(_url("detail", "clickers")).status_code == 204
    assert _error(client_a.get(_url("detail", "clickers")), 404)["code"] == "not_found"


def test_a_malformed_tree_is_a_400_naming_the_node_and_nothing_is_saved(client_a, world) -> None:
    tree = {"all": [LINKED, {"field": "face.smile_share", "op": "gte", "value": 3}]}
    error = _error(client_a.post(_url("list"), {"key": "bad", "name": "Bad", "definition": tree}, format="json"), 400)
    assert error["code"] == "invalid" and error["path"] == "definition.all[1].value"
    assert not Segment.objects.exists()


def test_an_unknown_field_in_the_tree_or_the_body_is_a_400(client_a, world) -> None:
    unknown_leaf = {"key": "x", "name": "X", "definition": {"field": "face.mood", "op": "eq", "value": 1}}
    assert _error(client_a.post(_url("list"), unknown_leaf, format="json"), 400)["path"].startswith("definition")
    unknown_member = {"key": "x", "name": "X", "definition": LINKED, "colour": "red"}
    assert _error(client_a.post(_url("list"), unknown_member, format="json"), 400)["path"] == "colour"
    assert not Segment.objects.exists()


def test_a_window_out_of_range_is_a_400_naming_the_parameter(client_a, world) -> None:
    tree = {"any": [{"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 10}]}
    error = _error(client_a.post(_url("list"), {"key": "x", "name": "X", "definition": tree}, format="json"), 400)
    assert error["path"] == "definition.any[0].window_seconds"


def test_a_cycle_made_by_patch_is_refused_and_the_definition_kept(client_a, world) -> None:
    _segment(world, "first")
    _segment(world, "second", definition={"field": "segment", "op": "in", "value": ["first"]})
    cycle = {"definition": {"all": [LINKED, {"field": "segment", "op": "in", "value": ["second"]}]}}
    error = _error(client_a.patch(_url("detail", "first"), cycle, format="json"), 400)
    assert error["path"] == "definition.all[1].value[0]" and "cycle" in error["message"]
    assert Segment.objects.get(key="first").definition == LINKED


def test_a_segment_or_campaign_of_another_organization_in_a_definition_is_a_400(client_a, world, org_b) -> None:
    other = World(org_b)
    _segment(other, "theirs")
    by_segment = {"key": "x", "name": "X", "definition": {"field": "segment", "op": "in", "value": ["theirs"]}}
    assert _error(client_a.post(_url("list"), by_segment, format="json"), 400)["path"] == "definition.value[0]"
    by_campaign = {"key": "x", "name": "X", "definition": {
        "field": "behaviour.clicks", "op": "gte", "value": 1, "campaign": other.campaign.pk}}
    assert _error(client_a.post(_url("list"), by_campaign, format="json"), 400)["path"] == "definition.campaign"
    assert not Segment.objects.filter(organization=world.organization).exists()


def test_a_taken_key_or_a_change_of_kind_is_a_409(client_a, world) -> None:
    _segment(world, "taken")
    again = {"key": "taken", "name": "Again", "definition": LINKED}
    assert _error(client_a.post(_url("list"), again, format="json"), 409) == {
        "code": "conflict", "message": "another segment of this organization has this key", "details": {},
        "path": "key"}
    assert _error(client_a.patch(_url("detail", "taken"), {"kind": "static"}, format="json"), 409)["path"] == "kind"


def test_the_paths_beside_the_keys_cannot_be_keys(client_a, world) -> None:
    body = {"key": "preview", "name": "Preview", "definition": LINKED}
    assert _error(client_a.post(_url("list"), body, format="json"), 400)["path"] == "key"


def test_a_segment_another_names_cannot_be_deleted(client_a, world) -> None:
    _segment(world, "base")
    _segment(world, "derived", definition={"field": "segment", "op": "in", "value": ["base"]})
    assert _error(client_a.delete(_url("detail", "base")), 409)["code"] == "conflict"
    assert Segment.objects.filter(key="base").exists()


def test_preview_counts_who_meets_a_definition_now_and_saves_nothing(org_a, world) -> None:
    world.subject(partner_user_id="p-1")
    world.subject(partner_user_id="p-2")
    world.subject()
    reader = api_client(make_api_key(org_a, scopes=("read",))[1])
    response = reader.post(_url("preview"), {"definition": LINKED}, format="json")
    assert response.status_code == 200 and response.json() == {"size": 2}
    assert not Segment.objects.exists() and not SegmentMembership.objects.exists()
    bad = reader.post(_url("preview"), {"definition": {"not": {"field": "subject.partner_linked", "op": "gt",
                                                               "value": True}}}, format="json")
    assert _error(bad, 400)["path"] == "definition.not.op"


def test_preview_counts_only_the_callers_subjects_and_names_no_other_organization(client_a, world, org_b) -> None:
    other = World(org_b)
    other.subject(partner_user_id="b-1")
    _segment(other, "theirs")
    assert client_a.post(_url("preview"), {"definition": LINKED}, format="json").json() == {"size": 0}
    naming = {"definition": {"field": "segment", "op": "in", "value": ["theirs"]}}
    error = _error(client_a.post(_url("preview"), naming, format="json"), 400)
    missing = _error(client_a.post(_url("preview"), {"definition": {"field": "segment", "op": "in",
                                                                     "value": ["nobody"]}}, format="json"), 400)
    assert error["path"] == missing["path"] == "definition.value[0]"
    assert error["message"].replace("theirs", "?") == missing["message"].replace("nobody", "?")


def test_fields_list_the_vocabulary(client_a) -> None:
    fields = {spec["field"]: spec for spec in client_a.get(_url("fields")).json()}
    assert fields["face.smile_share"]["emotion"] is True
    assert fields["behaviour.clicks"]["parameters"]["window_seconds"]["minimum"] == 60


# --- members, history, snapshot, recompute ---------------------------------------------------------------------


def test_recompute_is_queued_and_runs_and_history_shows_each_run(client_a, world, eager) -> None:
    world.subject(partner_user_id="p-1")
    _segment(world)
    response = client_a.post(_url("recompute", "linked"))
    assert response.status_code == 202 and response.json() == {"queued": True}
    world.subject(partner_user_id="p-2")
    client_a.post(_url("recompute", "linked"))
    history = client_a.get(_url("history", "linked")).json()
    assert [(run["size"], run["entered"], run["kind"]) for run in history] == [(1, 1, "full"), (2, 1, "full")]
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert client_a.get(_url("history", "linked"), {"since": later}).json() == []
    assert _error(client_a.get(_url("history", "linked"), {"since": "yesterday"}), 400)["path"] == "since"


def test_snapshot_is_for_static_segments_and_recompute_for_dynamic_ones(client_a, world) -> None:
    world.subject(partner_user_id="p-1")
    _segment(world, "fixed", kind="static")
    _segment(world, "moving")
    taken = client_a.post(_url("snapshot", "fixed"))
    assert taken.status_code == 200 and taken.json()["kind"] == "snapshot" and taken.json()["size"] == 1
    assert _error(client_a.post(_url("snapshot", "moving")), 409)["path"] == "kind"
    assert _error(client_a.post(_url("recompute", "fixed")), 409)["path"] == "kind"


def test_members_are_pages_of_shareable_pseudonymous_ids_each_in_the_ledger(exporter, world) -> None:
    for number in range(3):
        world.subject(partner_user_id=f"share-{number}")
    private = world.subject(partner_user_id="private", purposes=FACE_ONLY)
    segment_recompute(segment_id=_segment(world).pk)
    before = LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).count()
    first = exporter.get(_url("members", "linked"), {"page_size": 2})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] == 3 and body["next"] and len(body["results"]) == 2
    assert set(body["results"][0]) == {"subject_id", "entered_at"}
    second = exporter.get(body["next"]).json()
    ids = {row["subject_id"] for row in body["results"] + second["results"]}
    assert len(ids) == 3 and str(private.public_id) not in ids
    entries = LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).order_by("sequence")
    assert entries.count() == before + 2
    assert entries.last().payload["what"] == "members_page" and first["Visage-Ledger-Entry"]


# --- exports and matches -----------------------------------------------------------------------------------------


def test_export_names_only_members_with_live_sharing_consent_and_no_feature_value(exporter, world) -> None:
    subjects = _audience(world)
    session = world.session(subjects["sharing"])
    world.frame(session, at=timezone.now(), smile=0.8731, age_years=41.25, gender="female", gender_confidence=0.91)
    response = exporter.get(_url("export", "linked"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["subject_id"] for row in body["members"]] == [str(subjects["sharing"].public_id)]
    assert set(body["members"][0]) == {"subject_id", "entered_at", "partner_linked"}
    assert body["members"][0]["partner_linked"] is True
    text = response.content.decode()
    assert "0.8731" not in text and "41.25" not in text and "female" not in text and "u-sharing" not in text


def test_every_export_writes_a_ledger_entry_named_in_the_answer(exporter, world) -> None:
    _audience(world)
    as_json = exporter.get(_url("export", "linked"))
    as_csv = exporter.get(_url("export", "linked"), {"format": "csv"})
    entries = list(LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).order_by("sequence"))
    assert len(entries) == 2
    assert as_json.json()["ledger_entry"] == {"sequence": entries[0].sequence, "hash": entries[0].hash}
    assert as_csv["Visage-Ledger-Entry"] == str(entries[1].sequence)
    assert as_csv["Content-Type"].startswith("text/csv")
    lines = as_csv.content.decode().splitlines()
    assert lines[0] == "subject_id,entered_at,partner_linked" and len(lines) == 2 and lines[1].endswith(",true")
    assert entries[1].payload == {"what": "members", "segment": "linked", "count": 1, "format": "csv",
                                  "requested_by": entries[1].payload["requested_by"]}
    assert entries[1].payload["requested_by"].startswith("api_key:")
    assert _error(exporter.get(_url("export", "linked"), {"format": "xml"}), 400)["path"] == "format"
    assert LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).count() == 2


def test_match_answers_only_members_with_sharing_consent_and_keeps_no_id(exporter, world) -> None:
    _audience(world)
    subjects = Subject.objects.count()
    asked = ["u-sharing", "u-private", "u-none", "u-stranger"]
    response = exporter.post(_url("match", "linked"), {"partner_user_ids": asked}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["matched"] == ["u-sharing"] and response.json()["count"] == 1
    entry = LedgerEntry.objects.get(event=LedgerEntry.Event.EXPORTED)
    assert entry.payload["what"] == "partner_match" and "u-stranger" not in str(entry.payload)
    assert Subject.objects.count() == subjects
    twice = exporter.post(_url("match", "linked"), {"partner_user_ids": ["a", "a"]}, format="json")
    assert _error(twice, 400)["path"] == "partner_user_ids[1]"


def test_the_audience_leaves_only_to_keys_with_the_export_scope(client_a, org_a, marketer_a, world) -> None:
    _audience(world)
    match = {"partner_user_ids": ["u-sharing"]}
    for client in (client_a, _member_client(marketer_a)):
        assert _error(client.get(_url("export", "linked")), 403)["code"] == "permission_denied"
        assert _error(client.get(_url("members", "linked")), 403)["code"] == "permission_denied"
        assert _error(client.post(_url("match", "linked"), match, format="json"), 403)["code"] == "permission_denied"
    exporter_only = api_client(make_api_key(org_a, scopes=("export",))[1])
    assert exporter_only.get(_url("export", "linked")).status_code == 200
    assert not LedgerEntry.objects.filter(event=LedgerEntry.Event.EXPORTED).exclude(
        payload__requested_by__startswith="api_key:").exists()


def _member_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(user)
    return client


# --- uploads -----------------------------------------------------------------------------------------------------


def test_upload_makes_the_members_the_subjects_known_by_the_ids(client_a, world) -> None:
    known = [world.subject(partner_user_id=f"user-{n}") for n in range(2)]
    world.subject(partner_user_id="user-elsewhere")
    _segment(world, "list", kind="static", definition=None)
    body = "partner_user_id\nuser-0\nuser-1\nuser-unknown\n"
    response = client_a.post(_url("upload", "list"), body, content_type="text/csv")
    assert response.status_code == 200, response.content
    assert response.json()["details"] == {"ids": 3, "matched": 2, "unmatched": 1} and response.json()["size"] == 2
    members = SegmentMembership.objects.filter(segment__key="list", exited_at__isnull=True)
    assert set(members.values_list("subject_id", flat=True)) == {subject.pk for subject in known}
    as_json = client_a.post(_url("upload", "list"), {"ids": ["user-1"]}, format="json")
    assert as_json.status_code == 200 and as_json.json()["size"] == 1


def test_a_json_upload_takes_its_ids_as_given(client_a, world) -> None:
    # A list is not lines: an id spelled like the CSV header counts, and spaces are part of an id.
    header_named = world.subject(partner_user_id="partner_user_id")
    spaced = world.subject(partner_user_id=" user-2 ")
    world.subject(partner_user_id="user-2")
    _segment(world, "list", kind="static", definition=None)
    response = client_a.post(_url("upload", "list"), {"ids": ["partner_user_id", " user-2 "]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["details"] == {"ids": 2, "matched": 2, "unmatched": 0}
    members = SegmentMembership.objects.filter(segment__key="list", exited_at__isnull=True)
    assert set(members.values_list("subject_id", flat=True)) == {header_named.pk, spaced.pk}
    empty = client_a.post(_url("upload", "list"), {"ids": ["user-1", ""]}, format="json")
    assert _error(empty, 400)["path"].startswith("ids")


def test_an_upload_with_a_duplicate_or_malformed_line_is_refused_whole(client_a, world) -> None:
    first = world.subject(partner_user_id="user-0")
    world.subject(partner_user_id="user-1")
    segment = _segment(world, "list", kind="static", definition=None)
    client_a.post(_url("upload", "list"), "user-0\n", content_type="text/plain")
    duplicate = client_a.post(_url("upload", "list"), "user-1\nuser-2\nuser-1\n", content_type="text/plain")
    assert _error(duplicate, 400)["path"] == "upload.line[3]"
    commas = client_a.post(_url("upload", "list"), "user-1\nuser-2,extra\n", content_type="text/csv")
    assert _error(commas, 400)["path"] == "upload.line[2]"
    in_json = client_a.post(_url("upload", "list"), {"ids": ["user-1", "user-1"]}, format="json")
    assert _error(in_json, 400)["path"] == "ids[1]"
    not_utf8 = client_a.post(_url("upload", "list"), b"user-\xff\n", content_type="text/plain")
    assert _error(not_utf8, 400)["code"] == "parse_error"
    members = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    assert list(members.values_list("subject_id", flat=True)) == [first.pk]
    assert segment.runs.count() == 1
    assert _error(client_a.post(_url("upload", "list"), "", content_type="text/plain"), 400)["path"] == "upload"


def test_upload_is_for_static_segments(client_a, world) -> None:
    _segment(world)
    assert _error(client_a.post(_url("upload", "linked"), "user-0\n", content_type="text/plain"), 409)["path"] == "kind"


def test_a_read_key_cannot_change_segments(org_a, world) -> None:
    _segment(world)
    reader = api_client(make_api_key(org_a, scopes=("read",))[1])
    assert reader.get(_url("detail", "linked")).status_code == 200
    assert _error(reader.patch(_url("detail", "linked"), {"name": "No"}, format="json"), 403)["code"] == (
        "permission_denied")
    assert _error(reader.post(_url("recompute", "linked")), 403)["code"] == "permission_denied"


def test_a_campaign_of_the_organization_may_be_named(client_a, world) -> None:
    campaign = make_campaign(world.organization)
    tree = {"field": "behaviour.conversions", "op": "gte", "value": 1, "campaign": campaign.pk}
    assert client_a.post(_url("list"), {"key": "buyers", "name": "Buyers", "definition": tree},
                         format="json").status_code == 201
