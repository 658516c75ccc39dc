"""The partner API for campaigns, variants and rules: CRUD with a partner key, scopes, the same 404 for foreign
and missing, 400s with the exact path of the offending member, the setting of use, status transitions, and
nothing half-written; random bodies never give a 5xx."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Campaign, Rule, Variant
from tests.conftest import api_client
from tests.factories import make_api_key, make_campaign, make_notice

pytestmark = pytest.mark.django_db

DEVICE = {"field": "request.device", "op": "eq", "value": "mobile"}
SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}
LIST = reverse("api:campaign-list")


def _detail(public_id: str) -> str:
    return reverse("api:campaign-detail", kwargs={"public_id": public_id})


def _body(**extra) -> dict:
    return {
        "name": "Spring", "required_purposes": ["face_analysis"],
        "variants": [{"key": "default", "name": "Default", "is_default": True},
                     {"key": "mobile", "name": "Mobile", "cta_url": "https://shop.example/m"}],
        "rules": [{"name": "phones", "condition": DEVICE, "variant": "mobile"}],
        **extra,
    }


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_a_partner_key_creates_reads_and_lists_a_campaign_with_its_content(client_a) -> None:
    created = client_a.post(LIST, _body(goal="engagement", allowed_origins=["HTTPS://Shop.example:443"]),
                            format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "draft" and body["goal"] == "engagement"
    assert body["allowed_origins"] == ["https://shop.example"]
    assert [(v["key"], v["is_default"]) for v in body["variants"]] == [("default", True), ("mobile", False)]
    assert body["rules"][0]["variant"] == "mobile" and body["rules"][0]["condition"] == DEVICE
    read = client_a.get(_detail(body["public_id"]))
    assert read.status_code == 200 and read.json() == body
    listed = client_a.get(LIST)
    assert [c["public_id"] for c in listed.json()["results"]] == [body["public_id"]]


def test_variants_and_rules_have_their_own_crud(client_a, org_a) -> None:
    campaign = make_campaign(org_a, status="draft")
    variants = reverse("api:campaign-variant-list", kwargs={"public_id": campaign.public_id})
    assert client_a.post(variants, {"key": "calm", "name": "Calm"}, format="json").json()["is_default"] is True
    assert client_a.post(variants, {"key": "fun", "name": "Fun", "html": "<b onclick=x>hi</b>"},
                         format="json").json()["html"] == "<b>hi</b>"
    fun = reverse("api:campaign-variant-detail", kwargs={"public_id": campaign.public_id, "key": "fun"})
    assert client_a.patch(fun, {"is_default": True}, format="json").json()["is_default"] is True
    assert [v["key"] for v in client_a.get(variants).json()] == ["fun", "calm"]
    rules = reverse("api:campaign-rule-list", kwargs={"public_id": campaign.public_id})
    rule = client_a.post(rules, {"name": "r", "condition": DEVICE, "variant": "calm"}, format="json").json()
    one = reverse("api:campaign-rule-detail", kwargs={"public_id": campaign.public_id, "rule_id": rule["id"]})
    assert client_a.patch(one, {"priority": 3, "enabled": False}, format="json").json()["priority"] == 3
    calm = reverse("api:campaign-variant-detail", kwargs={"public_id": campaign.public_id, "key": "calm"})
    assert _error(client_a.delete(calm), 409)["code"] == "variant_in_use"
    assert client_a.delete(one).status_code == 204
    assert client_a.delete(calm).status_code == 204
    assert _error(client_a.delete(fun), 409)["code"] == "variant_is_default"
    assert list(Variant.objects.filter(campaign=campaign).values_list("key", flat=True)) == ["fun"]


def test_a_read_only_key_reads_but_cannot_write(org_a) -> None:
    campaign = make_campaign(org_a, status="draft")
    reader = api_client(make_api_key(org_a, scopes=("read",))[1])
    assert reader.get(_detail(campaign.public_id)).status_code == 200
    assert _error(reader.patch(_detail(campaign.public_id), {"name": "x"}, format="json"), 403)
    assert _error(reader.post(LIST, _body(), format="json"), 403)
    campaign.refresh_from_db()
    assert campaign.name != "x" and Campaign.objects.count() == 1


def test_a_foreign_campaign_is_the_same_404_as_a_missing_one(client_a, org_b) -> None:
    foreign = make_campaign(org_b, status="draft")
    for url in (_detail(foreign.public_id), _detail("no-such-campaign")):
        assert client_a.get(url).json() == client_a.get(_detail("missing")).json()
        assert _error(client_a.patch(url, {"name": "stolen"}, format="json"), 404)["code"] == "not_found"
    foreign.refresh_from_db()
    assert foreign.name != "stolen"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"rules": [{"name": "a", "condition": DEVICE, "variant": "default"},
                    {"name": "b", "condition": DEVICE, "variant": "default"},
                    {"name": "c", "condition": {"all": [DEVICE, {**DEVICE, "value": 5}]}, "variant": "default"}]},
         "rules[2].condition.all[1].value"),
        ({"rules": [{"name": "a", "condition": {"any": [DEVICE, {"field": "face.nose", "op": "eq", "value": 1}]},
                     "variant": "default"}]}, "rules[0].condition.any[1].field"),
        ({"rules": [{"name": "a", "condition": DEVICE, "variant": "nope"}]}, "rules[0].variant"),
        ({"variants": [{"key": "default", "name": "D", "is_default": True, "cta_url": "javascript:alert(1)"}]},
         "variants[0].cta_url"),
        ({"allowed_origins": ["https://shop.example/path"]}, "allowed_origins[0]"),
        ({"decision_ttl_seconds": 10**9}, "decision_ttl_seconds"),
        ({"ends_at": "2020-01-01T00:00:00Z", "starts_at": "2021-01-01T00:00:00Z"}, "ends_at"),
        ({"starts_at": "2021-01-01T00:00:00"}, "starts_at"),
        ({"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at"),
        ({"required_purposes": ["personalization"]}, "required_purposes"),
        ({"goal": "world_domination"}, "goal"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_a_bad_body_is_a_400_with_the_exact_path_and_nothing_written(client_a, change: dict, path: str) -> None:
    public_id = client_a.post(LIST, _body(), format="json").json()["public_id"]
    before = client_a.get(_detail(public_id)).json()
    error = _error(client_a.patch(_detail(public_id), {"name": "Renamed", **change}, format="json"), 400)
    assert error["path"] == path and path in error["details"]
    assert client_a.get(_detail(public_id)).json() == before


def test_a_bad_create_writes_no_campaign(client_a) -> None:
    body = _body(rules=[{"name": "a", "condition": {"not": {"field": "request.device", "op": "gt", "value": 1}},
                         "variant": "default"}])
    assert _error(client_a.post(LIST, body, format="json"), 400)["path"] == "rules[0].condition.not.op"
    assert not Campaign.objects.exists() and not Variant.objects.exists()


def test_expression_rules_are_refused_in_a_workplace_campaign(client_a) -> None:
    body = _body(setting_of_use="workplace", rules=[{"name": "smile", "condition": SMILE, "variant": "default"}])
    error = _error(client_a.post(LIST, body, format="json"), 400)
    assert error["path"].startswith("rules[0].condition")  # the node is the condition checker's to name
    assert not Campaign.objects.exists()
    public_id = client_a.post(LIST, _body(setting_of_use="workplace"), format="json").json()["public_id"]
    rules = reverse("api:campaign-rule-list", kwargs={"public_id": public_id})
    refused = client_a.post(rules, {"name": "smile", "condition": {"all": [SMILE]}, "variant": "default"},
                            format="json")
    assert _error(refused, 400)["path"].startswith("condition.all[0]")


def test_the_setting_cannot_forbid_emotion_recognition_while_expression_rules_exist(client_a) -> None:
    public_id = client_a.post(LIST, _body(rules=[{"name": "smile", "condition": SMILE, "variant": "default"}]),
                              format="json").json()["public_id"]
    error = _error(client_a.patch(_detail(public_id), {"setting_of_use": "education"}, format="json"), 400)
    assert error["path"] == "setting_of_use" and "Art. 5(1)(f)" in error["message"]
    assert Campaign.objects.get().setting_of_use == "general"
    # Replacing the rules in the same body makes the change possible.
    changed = client_a.patch(_detail(public_id), {"setting_of_use": "education", "rules": []}, format="json")
    assert changed.status_code == 200 and changed.json()["emotion_recognition_forbidden"] is True


def test_status_moves_only_along_the_allowed_transitions_and_only_when_ready(client_a, org_a) -> None:
    public_id = client_a.post(LIST, _body(), format="json").json()["public_id"]
    url = _detail(public_id)
    not_ready = _error(client_a.patch(url, {"status": "running"}, format="json"), 409)
    assert not_ready["code"] == "campaign_not_ready" and not_ready["path"] == "status"
    make_notice(org_a, purposes=("face_analysis",))
    assert _error(client_a.patch(url, {"status": "scheduled"}, format="json"), 400)["path"] == "starts_at"
    assert client_a.patch(url, {"status": "running"}, format="json").json()["status"] == "running"
    refused = _error(client_a.patch(url, {"status": "draft"}, format="json"), 409)
    assert refused["code"] == "status_transition_not_allowed"
    assert client_a.patch(url, {"status": "paused"}, format="json").json()["status"] == "paused"
    assert client_a.patch(url, {"status": "ended"}, format="json").json()["status"] == "ended"
    assert _error(client_a.patch(url, {"status": "running"}, format="json"), 409)["path"] == "status"
    assert Campaign.objects.get().status == "ended"


def test_a_running_campaign_keeps_a_default_variant(client_a, org_a) -> None:
    make_notice(org_a, purposes=("face_analysis",))
    public_id = client_a.post(LIST, _body(status="running"), format="json").json()["public_id"]
    error = _error(client_a.patch(_detail(public_id), {"variants": [], "rules": []}, format="json"), 409)
    assert error["path"] == "variants"
    assert Variant.objects.filter(is_default=True).count() == 1 and Rule.objects.count() == 1


def test_the_api_refuses_a_body_that_is_not_an_object(client_a) -> None:
    error = _error(client_a.post(LIST, [1, 2], format="json"), 400)
    assert "path" not in error and error["details"] == {"non_field_errors": ["Give a JSON object."]}


# --- Random bodies ---------------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["name", "status", "goal", "setting_of_use", "required_purposes", "optional_purposes",
                         "derived_attributes", "starts_at", "ends_at", "allowed_origins", "decision_ttl_seconds",
                         "variants", "rules", "key", "headline", "cta_url", "payload", "html", "is_default",
                         "priority", "enabled", "condition", "variant", "id"])
_bodies = _json | st.dictionaries(_keys, _json, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=_bodies, target=st.sampled_from(["create", "patch", "variants", "variant", "rules", "rule"]))
def test_random_json_bodies_to_the_write_endpoints_never_give_a_server_error(client_a, org_a, body, target) -> None:
    campaign = Campaign.objects.filter(organization=org_a).first() or make_campaign(org_a, status="draft")
    default = Variant.objects.filter(campaign=campaign, key="default").first() or Variant.objects.create(
        organization=org_a, campaign=campaign, key="default", name="D", is_default=not campaign.variants.exists())
    rule = Rule.objects.filter(campaign=campaign).first() or Rule.objects.create(
        organization=org_a, campaign=campaign, name="r", condition=DEVICE, variant=default)
    kwargs = {"public_id": campaign.public_id}
    url, method = {
        "create": (LIST, "post"),
        "patch": (_detail(campaign.public_id), "patch"),
        "variants": (reverse("api:campaign-variant-list", kwargs=kwargs), "post"),
        "variant": (reverse("api:campaign-variant-detail", kwargs={**kwargs, "key": "default"}), "patch"),
        "rules": (reverse("api:campaign-rule-list", kwargs=kwargs), "post"),
        "rule": (reverse("api:campaign-rule-detail", kwargs={**kwargs, "rule_id": rule.pk}), "patch"),
    }[target]
    response = getattr(client_a, method)(url, body, format="json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message", "details"}
