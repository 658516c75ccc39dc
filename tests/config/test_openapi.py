"""The OpenAPI schema: valid, served from local assets, and true about what each operation answers (bodies,
error statuses in the one error shape, pages, credentials). tests/config/test_schemathesis.py checks the same
against the real server with generated requests."""

import functools
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.api_world import ApiWorld, make_api_world

pytestmark = pytest.mark.django_db


def test_openapi_schema_validates_without_warnings(tmp_path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "openapi: 3" in out.read_text()


def test_docs_page_renders_from_local_assets_only() -> None:
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


# --- The schema states what the API answers ------------------------------------------------------------------------

ERROR_REF = {"$ref": "#/components/schemas/Error"}


@functools.cache
def _schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = _schema()["paths"].items()
    return [(path, method, operation) for path, item in paths for method, operation in item.items()]


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: `nullable` becomes a union with null."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if converted.get("exclusiveMinimum") is True:
        converted["exclusiveMinimum"] = converted.pop("minimum")
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def assert_documented(path: str, method: str, response: Any) -> None:
    """The response's status is documented for the operation, and its body matches that status's schema."""
    operation = _schema()["paths"][path][method]
    assert str(response.status_code) in operation["responses"], (path, method, response.status_code)
    documented = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
    root = {**_as_json_schema(documented), "components": _as_json_schema(_schema()["components"])}
    jsonschema.Draft202012Validator(root).validate(response.json())


@pytest.fixture
def world() -> ApiWorld:
    return make_api_world()


def _client(credential: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


def test_every_error_status_is_documented_in_the_one_error_component() -> None:
    components = _schema()["components"]["schemas"]
    assert components["Error"]["properties"]["error"]["required"] == ["code", "message", "details"]
    for path, method, operation in _operations():
        errors = {code: body for code, body in operation["responses"].items() if code >= "400"}
        assert "503" in errors, (method, path)
        for code, body in errors.items():
            assert body["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)
        if operation.get("security") != [{}]:
            assert {"401", "403"} <= errors.keys(), (method, path)
        if "{" in path or "page_size" in {p["name"] for p in operation.get("parameters", [])}:
            assert "404" in errors, (method, path)
        if "requestBody" in operation:
            assert {"400", "415"} <= errors.keys(), (method, path)


def test_operations_name_the_errors_only_they_answer() -> None:
    paths = _schema()["paths"]
    intake = paths["/api/v1/capture-sessions/{session_id}/frames/"]["post"]["responses"]
    assert {"403", "409", "413", "429"} <= intake.keys()
    assert "Retry-After" in intake["429"]["headers"]
    assert {"401", "403", "404", "409"} <= paths["/api/v1/capture/sessions/"]["post"]["responses"].keys()


def test_error_bodies_match_the_error_component() -> None:
    from rest_framework.exceptions import NotFound, Throttled, ValidationError

    from config.api.errors import api_exception_handler

    validator = jsonschema.Draft202012Validator(
        {**ERROR_REF, "components": _as_json_schema(_schema()["components"])}
    )
    for exc in (ValidationError(["The request as a whole is wrong."]), ValidationError({"a": ["x"]}), NotFound(),
                Throttled(wait=3)):
        validator.validate(api_exception_handler(exc, {}).data)


def test_a_validation_error_about_the_whole_request_still_has_details_as_an_object() -> None:
    from rest_framework.exceptions import ValidationError

    from config.api.errors import api_exception_handler

    response = api_exception_handler(ValidationError(["Send an object."]), {})
    assert response.data["error"]["details"] == {"non_field_errors": ["Send an object."]}


def test_the_frames_of_a_session_answer_the_documented_page(world: ApiWorld) -> None:
    path = "/api/v1/capture-sessions/{session_id}/frames/"
    ok = _schema()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/PaginatedFrameList"}
    response = _client(world.capture_token).get(
        reverse("api:capture-session-frames", kwargs={"session_id": world.session_id}), {"page_size": 2}
    )
    assert response.status_code == 200 and response.json()["count"] == 5 and response.json()["next"]
    assert any(frame["features"] for frame in response.json()["results"])
    assert_documented(path, "get", response)


def test_open_and_ended_sessions_answer_an_end_reason_their_schema_allows(world: ApiWorld) -> None:
    client = _client(world.api_key)
    listed = client.get(reverse("api:capture-session-list"))
    assert {s["end_reason"] for s in listed.json()["results"]} == {"", "client"}
    assert_documented("/api/v1/capture-sessions/", "get", listed)
    detail = client.get(reverse("api:capture-session-detail", kwargs={"session_id": world.session_id}))
    assert detail.json()["end_reason"] == "" and detail.json()["aggregates"]["frames_analyzed"] == 2
    assert_documented("/api/v1/capture-sessions/{session_id}/", "get", detail)


def test_grants_timeline_and_stats_answer_their_documented_shapes(world: ApiWorld) -> None:
    client = _client(world.api_key)
    consent = client.get(reverse("api:consent-subject-detail", kwargs={"subject_id": world.subject_id}))
    assert_documented("/api/v1/consent/subjects/{subject_id}/", "get", consent)
    timeline = client.get(reverse("api:capture-session-timeline", kwargs={"session_id": world.session_id}))
    assert timeline.json()["buckets"]
    assert_documented("/api/v1/capture-sessions/{session_id}/timeline/", "get", timeline)
    stats = client.get(reverse("api:analysis-stats"))
    assert stats.json()["recent_problems"]
    assert_documented("/api/v1/analysis/stats/", "get", stats)
    keys = client.get(reverse("api:key-list"))
    assert_documented("/api/v1/keys/", "get", keys)


def test_capture_tokens_are_offered_only_where_they_are_taken(world: ApiWorld) -> None:
    offered = {
        (path, method) for path, method, operation in _operations()
        if {"captureToken": []} in operation.get("security", [])
    }
    assert offered == {
        ("/api/v1/capture-sessions/{session_id}/", "get"),
        ("/api/v1/capture-sessions/{session_id}/end/", "post"),
        ("/api/v1/capture-sessions/{session_id}/frames/", "get"),
        ("/api/v1/capture-sessions/{session_id}/frames/", "post"),
        ("/api/v1/capture-sessions/{session_id}/timeline/", "get"),
        ("/api/v1/capture-sessions/{session_id}/video/", "post"),
    }
    refused = _client(world.capture_token).get(reverse("api:analysis-stats"))
    assert refused.status_code == 403
    assert_documented("/api/v1/analysis/stats/", "get", refused)


def test_request_text_refuses_what_its_schema_refuses(world: ApiWorld) -> None:
    """Text fields say they take no NUL and, when trimmed, nothing blank; and a number is not text."""
    body = _schema()["components"]["schemas"]["SubjectFindOrCreateRequest"]["properties"]["partner_user_id"]
    pattern = body["pattern"]
    client = _client(world.api_key)
    for value in ("user\x00 1", 0, 12.5):
        assert jsonschema.Draft202012Validator({**body, "pattern": pattern}).is_valid(value) is False
        response = client.post(reverse("api:consent-subject-list"), {"partner_user_id": value}, format="json")
        assert response.status_code == 400, value
        assert_documented("/api/v1/consent/subjects/", "post", response)
    start = _schema()["components"]["schemas"]["CaptureSessionStartRequest"]["properties"]["campaign"]
    assert jsonschema.Draft202012Validator(start).is_valid("   ") is False
    response = client.post(
        reverse("api:capture-session-list"), {"subject": world.subject_id, "campaign": "   "}, format="json"
    )
    assert response.status_code == 400


def test_path_ids_are_documented_as_uuids_and_other_text_is_a_404(world: ApiWorld) -> None:
    parameters = _schema()["paths"]["/api/v1/capture-sessions/{session_id}/"]["get"]["parameters"]
    assert {"in": "path", "name": "session_id", "schema": {"type": "string", "format": "uuid"}, "required": True} in [
        {k: p[k] for k in ("in", "name", "schema", "required")} for p in parameters
    ]
    response = _client(world.api_key).get("/api/v1/capture-sessions/not-a-uuid/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- Pages -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["page_size=", "page_size=null", "page_size=0", "page_size=201", "page_size=-1", "page_size=1.5",
     "page_size=5&page_size=5", "page_size=%EF%BC%95", "page=", "page=null", "page=0", "page=abc", "page=1&page=1",
     "page=last"],
)
def test_a_page_or_page_size_that_is_not_one_whole_number_in_range_is_a_400(world: ApiWorld, query: str) -> None:
    response = _client(world.api_key).get(f"{reverse('api:consent-subject-list')}?{query}")
    assert response.status_code == 400, query
    assert query.split("=")[0] in response.json()["error"]["details"]
    assert_documented("/api/v1/consent/subjects/", "get", response)


@pytest.mark.parametrize("page", ["2", "99", "1" + "0" * 30])
def test_a_page_past_the_last_is_a_404(world: ApiWorld, page: str) -> None:
    response = _client(world.api_key).get(reverse("api:consent-subject-list"), {"page": page})
    assert response.status_code == 404
    assert_documented("/api/v1/consent/subjects/", "get", response)


def test_pages_are_cut_at_the_page_size_asked_for(world: ApiWorld) -> None:
    client = _client(world.api_key)
    first = client.get(reverse("api:consent-subject-list"), {"page_size": 1})
    second = client.get(reverse("api:consent-subject-list"), {"page_size": 1, "page": 2})
    assert first.status_code == second.status_code == 200
    assert first.json()["count"] == 2 and len(first.json()["results"]) == 1 and first.json()["next"]
    assert first.json()["results"] != second.json()["results"] and second.json()["next"] is None
    parameters = {p["name"]: p["schema"] for p in _schema()["paths"]["/api/v1/consent/subjects/"]["get"]["parameters"]}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert parameters["page"] == {"type": "integer", "minimum": 1}
    assert_documented("/api/v1/consent/subjects/", "get", first)


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_a_415_and_changes_nothing(world: ApiWorld, content_type: str) -> None:
    """A garbled multipart body would parse to no fields, which withdrawal reads as 'all purposes'."""
    url = reverse("api:consent-subject-withdraw", kwargs={"subject_id": world.spare_subject_id})
    response = _client(world.api_key).generic("POST", url, "[]", content_type=content_type)
    assert response.status_code == 415
    assert_documented("/api/v1/consent/subjects/{subject_id}/withdraw/", "post", response)
    state = _client(world.api_key).get(
        reverse("api:consent-subject-detail", kwargs={"subject_id": world.spare_subject_id})
    )
    assert {purpose["state"] for purpose in state.json()["consent"] if purpose["grant"]} == {"active"}


def test_the_receipt_operation_documents_its_jws_body() -> None:
    operation = _schema()["paths"]["/api/v1/consent/subjects/{subject_id}/grants/{grant_id}/receipt/"]["get"]
    assert operation["responses"]["200"]["content"] == {"application/jose": {"schema": {"type": "string"}}}
    assert {"401", "403", "404", "503"} <= operation["responses"].keys()
    parameters = {p["name"]: p["schema"]["type"] for p in operation["parameters"]}
    assert parameters == {"subject_id": "string", "grant_id": "integer"}
