"""Partner API for data subject requests: access, export and erasure on the subject's behalf, their state, due date
and parts, the streamed export behind the `export` scope, and clear 4xx answers for what cannot be done."""

import json

import pytest

from consent.models import DataRequest, Subject
from tests.config.test_openapi import assert_documented
from tests.conftest import api_client
from tests.factories import make_api_key, make_grant, make_notice
from tests.purges import run_owed_purges

pytestmark = pytest.mark.django_db

BASE = "/api/v1/consent"


@pytest.fixture
def subject_id(client_a, org_a) -> str:
    public_id = client_a.post(f"{BASE}/subjects/", {"partner_user_id": "user-7"}, format="json").json()["id"]
    make_grant(Subject.objects.get(public_id=public_id), make_notice(org_a))
    return public_id


@pytest.fixture
def export_client(org_a):
    return api_client(make_api_key(org_a, scopes=("read", "write", "export"))[1])


def _request(client, subject_id: str, kind: str):
    return client.post(f"{BASE}/subjects/{subject_id}/requests/", {"kind": kind}, format="json")


def test_access_is_answered_at_once_with_what_is_kept(client_a, subject_id) -> None:
    response = _request(client_a, subject_id, "access")
    body = response.json()
    assert response.status_code == 201
    assert (body["kind"], body["state"], body["subject"]) == ("access", "done", subject_id)
    assert body["requested_by"].startswith("api_key:") and body["due_at"] > body["received_at"]
    kept = {c["category"]: c["count"] for c in body["kept"]}
    assert kept["consent.Grant"] == 1 and kept["faceanalysis.FrameFeatures"] == 0


def test_export_needs_the_export_scope_and_streams_the_document(client_a, export_client, subject_id) -> None:
    refused = _request(client_a, subject_id, "export")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert not DataRequest.objects.exists()
    created = _request(export_client, subject_id, "export").json()
    assert created["state"] == "done" and created["links"]["export"].endswith("/export/")
    assert client_a.get(created["links"]["export"]).status_code == 403
    response = export_client.get(created["links"]["export"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store, private"
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(b"".join(response.streaming_content))
    assert document["subject"]["id"] == subject_id and len(document["sections"]["consent.Grant"]) == 1


def test_erasure_shows_its_parts_and_a_second_one_answers_with_the_first(client_a, export_client, subject_id,
                                                                          django_capture_on_commit_callbacks) -> None:
    export = _request(export_client, subject_id, "export").json()
    first = _request(client_a, subject_id, "erasure")
    body = first.json()
    assert first.status_code == 201 and body["state"] == "in_progress"
    assert {p["purger"] for p in body["parts"]} >= {"consent.subject", "faceanalysis.face_data"}
    assert {p["status"] for p in body["parts"]} == {"owed"}
    run_owed_purges()
    detail = client_a.get(body["links"]["self"]).json()
    assert detail["state"] == "done" and {p["status"] for p in detail["parts"]} == {"done"}
    again = _request(client_a, subject_id, "erasure")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    listed = client_a.get(f"{BASE}/subjects/{subject_id}/requests/").json()["results"]
    assert [r["kind"] for r in listed] == ["erasure", "export"]
    # Nothing is left to show or export.
    assert _request(client_a, subject_id, "access").status_code == 410
    gone = export_client.get(export["links"]["export"])
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "subject_erased"


@pytest.mark.parametrize("body", [{"kind": "delete_me"}, {}, {"kind": ["erasure"]}, {"kind": None}])
def test_a_bad_kind_is_a_400_in_the_error_shape(client_a, subject_id, body) -> None:
    response = client_a.post(f"{BASE}/subjects/{subject_id}/requests/", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["path"] == "kind"
    assert not DataRequest.objects.exists()


def test_requests_need_the_write_scope(org_a, subject_id) -> None:
    reader = api_client(make_api_key(org_a, scopes=("read",))[1])
    assert _request(reader, subject_id, "erasure").status_code == 403
    assert reader.get(f"{BASE}/subjects/{subject_id}/requests/").status_code == 200


def test_unknown_subject_and_request_are_not_found(client_a, export_client, subject_id) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert _request(client_a, missing, "access").status_code == 404
    assert client_a.get(f"{BASE}/requests/{missing}/").status_code == 404
    assert export_client.get(f"{BASE}/requests/{missing}/export/").status_code == 404
    access = _request(client_a, subject_id, "access").json()
    response = export_client.get(f"{BASE}/requests/{access['id']}/export/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_an_export"


def test_answers_are_as_the_schema_documents(client_a, export_client, subject_id) -> None:
    requests_path = "/api/v1/consent/subjects/{subject_id}/requests/"
    detail_path = "/api/v1/consent/requests/{request_id}/"
    access = _request(client_a, subject_id, "access")
    assert_documented(requests_path, "post", access)
    assert_documented(requests_path, "post", _request(client_a, subject_id, "wrong"))
    assert_documented(requests_path, "post", _request(client_a, subject_id, "export"))
    assert_documented(detail_path + "export/", "get", export_client.get(access.json()["links"]["self"] + "export/"))
    erasure = _request(client_a, subject_id, "erasure")
    assert_documented(requests_path, "post", erasure)
    assert_documented(detail_path, "get", client_a.get(erasure.json()["links"]["self"]))
    assert_documented(requests_path, "get", client_a.get(f"{BASE}/subjects/{subject_id}/requests/"))
    run_owed_purges()
    assert_documented(requests_path, "post", _request(client_a, subject_id, "erasure"))
    assert_documented(requests_path, "post", _request(client_a, subject_id, "access"))
