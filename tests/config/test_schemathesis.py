"""Schemathesis against the live test server, so that the OpenAPI schema stays the truth about what the API
answers: every operation, every check (server errors, status codes, content types, response schemas and
headers, negative data rejected, positive data accepted, auth not ignored, ...), every phase (examples,
coverage, fuzzing, stateful), in a bounded, derandomized run against scripts/web (granian).

The calls carry real credentials of a seeded organization (tests.api_world): the partner's API key, and the
capture token on the operations of one capture session, as the end user's page calls them. Path and body
fields that must name seeded objects (a session, a subject, a campaign, the published notice) are pinned to
them so that valid requests reach real objects; everything else is generated.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.api_world import ApiWorld, make_api_world
from tests.faceanalysis.conftest import clear_frame_store
from tests.web_server import WebServer, web_server

# The live server sees only committed rows; emptying the tables afterwards needs PostgreSQL (the ledger's
# append-only triggers refuse SQLite's DELETE).
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = 10
RUN_TIMEOUT_S = 420  # 61 operations take about 3.5 min on the 2-core machine; the bound is for a hang, not speed

# Intake reads images and videos: a body can match its schema (binary, base64) and still not decode, or be of
# another type than its part declares. Those valid-looking uploads are refused with 400/413/415, which a
# schema cannot express. A batch over the limit is "too large" (413) rather than a plain 400.
_UPLOAD_ACCEPTANCE = ["2xx", "400", "401", "403", "404", "409", "413", "415", "429"]
_UPLOAD_REJECTION = ["400", "401", "403", "404", "409", "413", "415", "422", "429"]


def _toml(value: object) -> str:
    """A TOML value: JSON strings, numbers, booleans and arrays are TOML too; dicts become inline tables."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def schemathesis_config(world: ApiWorld) -> str:
    """The run's configuration: credentials, pinned objects, and the few per-operation exceptions."""
    session = "/api/v1/capture-sessions/{session_id}/"
    token = {"Authorization": f"Bearer {world.capture_token}"}
    # One entry per operation: the first entry that names an operation is the one it gets.
    operations: list[dict[str, object]] = [
        # The end user's page calls one session's operations with its capture token.
        {"include-name-regex": f"^GET {re.escape(session)}((frames|timeline)/)?$", "headers": token},
        {"include-name-regex": f"^POST {re.escape(session)}(frames|video)/$", "headers": token,
         "checks": {"positive_data_acceptance": {"expected-statuses": _UPLOAD_ACCEPTANCE},
                    "negative_data_rejection": {"expected-statuses": _UPLOAD_REJECTION}}},
        {"include-name": f"POST {session}end/",
         "headers": {"Authorization": f"Bearer {world.ended_session_token}"},
         "parameters": {"path.session_id": world.ended_session_id}},
        {"include-name": "POST /api/v1/capture-sessions/",
         "parameters": {"body.subject": world.subject_id, "body.campaign": world.campaign_id}},
        {"include-name": "POST /api/v1/capture/sessions/",
         "parameters": {"body.access_token": world.access_token, "body.campaign": world.campaign_id}},
        # A grant must name the published notice, in its language, for the purposes it covers (any other hash
        # is a 400, nothing written). The coverage phase does not take pinned body values, so it sits out here.
        {"include-name": "POST /api/v1/consent/subjects/{subject_id}/grants/",
         "parameters": {"body.notice_hash": world.notice_hash, "body.language": "en",
                        "body.purposes": ["face_analysis", "personalization"]},
         "phases": {"coverage": {"enabled": False}}},
        {"include-name": "POST /api/v1/consent/subjects/{subject_id}/withdraw/",
         "parameters": {"path.subject_id": world.spare_subject_id}},
        # Campaign content: a body can match its schema and still be refused for what a schema cannot say (a
        # variant key the campaign lacks, an operator the field does not take, a consent page not ready for the
        # status asked): a 400 or 409 with the path of the member.
        {"include-name-regex": r"^(POST|PATCH) /api/v1/campaigns/",
         "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409",
                                                                       "429"]}}},
        # Stateful links would hand it the prefix of the key every call is made with.
        # Segments: their paths name the seeded segment; a definition is a recursive tree whose coverage cases
        # multiply past the run's bound, so bodies with one are fuzzed, not enumerated; and as with rules, a
        # schema-valid tree can still be refused (a value that does not fit its field), with a 400 at its node.
        {"include-name-regex": r"^[A-Z]+ /api/v1/segments/\{key\}/",
         "parameters": {"path.key": world.segment_key},
         "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409",
                                                                       "429"]}}},
        {"include-name-regex": r"^(POST /api/v1/segments/(preview/)?|PATCH /api/v1/segments/\{key\}/)$",
         "phases": {"coverage": {"enabled": False}},
         "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409",
                                                                       "429"]}}},
        # Data subject requests go to the spare subject: an erasure erases it (access or export of it is a 410
        # from then on, as the schema says; a withdrawal of nothing is a 200).
        {"include-name-regex": r"^(GET|POST) /api/v1/consent/subjects/\{subject_id\}/requests/$",
         "parameters": {"path.subject_id": world.spare_subject_id},
         "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "410",
                                                                       "429"]}}},
        {"include-name": "POST /api/v1/keys/{prefix}/revoke/",
         "parameters": {"path.prefix": world.spare_key_prefix}, "phases": {"stateful": {"enabled": False}}},
    ]
    lines = [
        # The API refuses NUL and unpaired surrogates in every string of a JSON body, also under keys the
        # schema leaves open (the schema's description says so; tests/config/test_bad_input.py holds it): a
        # generated body with one in an ignored property is not a valid request.
        "[generation]", "allow-x00 = false", 'codec = "utf-8"', "",
        "[headers]", f"Authorization = {_toml(f'Bearer {world.api_key}')}", "",
        "[parameters]",
        f'"path.session_id" = {_toml(world.session_id)}',
        f'"path.subject_id" = {_toml(world.subject_id)}',
        f'"path.prefix" = {_toml(world.api_key_prefix)}',
        f'"path.public_id" = {_toml(world.content_campaign_id)}',
        f'"path.key" = {_toml(world.variant_key)}',
        f'"path.rule_id" = {_toml(world.rule_id)}',
        f'"path.grant_id" = {_toml(world.grant_id)}',
        f'"path.request_id" = {_toml(world.data_request_id)}',
    ]
    for operation in operations:
        lines += ["", "[[operations]]", *(f"{key} = {_toml(value)}" for key, value in operation.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[WebServer]:
    """scripts/web on the test database, without the per-caller rate limit (the run would be all 429s).
    Frames that a generated request gets accepted wait in the broker, which no worker reads here: the
    run's queued messages and stored frames are removed afterwards."""
    try:
        with web_server(tmp_path / "web.log", API_THROTTLE_RATE="1000000/min") as server:
            yield server
    finally:
        clear_frame_store()
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(*settings.CELERY_TASK_QUEUES_NAMES)


def test_every_operation_answers_as_its_schema_says(api_server: WebServer, tmp_path: Path) -> None:
    world = make_api_world()
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(world))
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "--no-color",
        "run", f"{api_server.url}/api/v1/schema/",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--generation-deterministic",
        "--workers", "1", "--request-timeout", "30", "--suppress-health-check", "too_slow",
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"schemathesis ran past {RUN_TIMEOUT_S} s:\n{(expired.stdout or '')[-8000:]}")
    report = run.stdout + run.stderr
    assert f"Tested: {_operation_count()}" in report, report[-8000:]
    assert run.returncode == 0, report[-30000:]


def _operation_count() -> int:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sum(1 for item in schema["paths"].values() for method in item if method != "parameters")
