"""The campaign editor's personalization side: variants and rules inline (one default, sanitised HTML, trees
validated on the server with the node's path, no emotion recognition at work or in education), the schedule's
checks, "What would this visitor get?" (typed context and real subject, writes nothing, other organization 404)
and the decision log and events read-only."""

import json
import re
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Campaign, Decision, Event, Rule, Variant
from consent import derived
from tests.factories import make_campaign, make_member, make_notice, make_organization, make_subject

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")
SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}
MOBILE = {"field": "request.device", "op": "eq", "value": "mobile"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _campaign(org, **fields: Any) -> Campaign:
    campaign = make_campaign(org, purposes=PURPOSES, status="draft")
    if fields:
        Campaign.objects.filter(pk=campaign.pk).update(**fields)
        campaign.refresh_from_db()
    return campaign


def _variant(campaign: Campaign, key: str, *, default: bool = False) -> Variant:
    return Variant.objects.create(organization=campaign.organization, campaign=campaign, key=key, name=key.title(),
                                  is_default=default)


def _rule(campaign: Campaign, name: str, condition: dict, variant: Variant, priority: int = 100) -> Rule:
    return Rule.objects.create(organization=campaign.organization, campaign=campaign, name=name, priority=priority,
                               condition=condition, variant=variant)


def _formset(prefix: str, rows: list[dict], initial: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            if value is True:
                value = "on"
            elif value is False:
                continue
            data[f"{prefix}-{index}-{key}"] = value
    return data


def _save(client: Client, campaign: Campaign, *, variants: list[dict] | None = None, rules: list[dict] | None = None,
          **fields: Any):
    """Post the campaign's change form as the admin page would, with the given inline rows (existing rows first,
    each with its id)."""
    campaign.refresh_from_db()
    data: dict[str, Any] = {
        "name": campaign.name, "status": campaign.status, "goal": campaign.goal,
        "setting_of_use": campaign.setting_of_use, "starts_at_0": "", "starts_at_1": "", "ends_at_0": "",
        "ends_at_1": "", "purpose_choices": list(campaign.required_purpose_list),
        "attribute_choices": list(derived.OPTIONAL_KEYS), "allowed_origins": campaign.allowed_origins,
        "decision_ttl_seconds": campaign.decision_ttl_seconds, **fields,
    }
    variants = variants if variants is not None else [
        {"id": v.pk, "key": v.key, "name": v.name, "is_default": v.is_default, "payload": json.dumps(v.payload)}
        for v in Variant.objects.filter(campaign=campaign)
    ]
    rules = rules if rules is not None else [
        {"id": r.pk, "name": r.name, "priority": r.priority, "enabled": r.enabled, "variant": r.variant_id,
         "condition": json.dumps(r.condition)}
        for r in Rule.objects.filter(campaign=campaign)
    ]
    for prefix, rows in (("variants", variants), ("rules", rules)):
        for row in rows:
            row.setdefault("campaign", campaign.pk)
        data.update(_formset(prefix, rows, sum(1 for row in rows if row.get("id"))))
    return client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)


def _page_errors(response) -> str:
    """Every error on the re-shown form: the campaign form's and each inline's."""
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    texts = [str(e) for errors in form.errors.values() for e in errors]
    for inline in response.context["inline_admin_formsets"]:
        texts += [str(e) for e in inline.formset.non_form_errors()]
        for errors in inline.formset.errors:
            texts += [f"{name}: {e}" for name, items in errors.items() for e in items]
    return " | ".join(texts)


def test_variants_and_rules_are_saved_through_the_campaign_editor(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    client = _client(marketer_a)
    response = _save(client, campaign, variants=[
        {"key": "calm", "name": "Calm", "is_default": True, "headline": "Take it easy", "payload": "{}"},
        {"key": "smile", "name": "Smile", "payload": '{"tone": "playful"}',
         "html": '<p onclick="x()">Hi<script>alert(1)</script> <a href="https://shop.example">shop</a></p>'},
    ], rules=[])
    assert response.status_code == 302, _page_errors(response)
    smile = Variant.objects.get(campaign=campaign, key="smile")
    assert smile.organization == org_a and smile.payload == {"tone": "playful"} and not smile.is_default
    assert "script" not in smile.html and "onclick" not in smile.html and "noopener" in smile.html
    assert Variant.objects.get(campaign=campaign, key="calm").is_default

    response = _save(client, campaign, rules=[
        {"name": "Smilers", "priority": 10, "enabled": True, "variant": smile.pk,
         "condition": json.dumps({"any": [SMILE, MOBILE]})},
    ])
    assert response.status_code == 302, _page_errors(response)
    rule = Rule.objects.get(campaign=campaign)
    assert rule.organization == org_a and rule.variant == smile and rule.priority == 10
    face_leaf = rule.condition["any"][0]
    assert face_leaf["field"] == "face.smile_share" and face_leaf["window_seconds"] == 900  # defaults filled


def test_allowed_origins_are_stored_as_browsers_send_them_and_a_non_origin_is_refused(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    client = _client(marketer_a)
    response = _save(client, campaign, variants=[], rules=[],
                     allowed_origins="HTTPS://Shop.Example:443/\n\nhttp://localhost:8001\nhttps://shop.example")
    assert response.status_code == 302, _page_errors(response)
    campaign.refresh_from_db()
    assert campaign.allowed_origin_list == ["https://shop.example", "http://localhost:8001"]
    response = _save(client, campaign, variants=[], rules=[], allowed_origins="https://shop.example/checkout")
    assert "is not an origin" in _page_errors(response)
    campaign.refresh_from_db()
    assert campaign.allowed_origin_list == ["https://shop.example", "http://localhost:8001"]


def test_two_default_variants_are_refused(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    response = _save(_client(marketer_a), campaign, variants=[
        {"key": "a", "name": "A", "is_default": True, "payload": "{}"},
        {"key": "b", "name": "B", "is_default": True, "payload": "{}"},
    ], rules=[])
    assert "Exactly one variant must be the default" in _page_errors(response)
    assert "2 are ticked: a, b" in _page_errors(response)
    assert not Variant.objects.filter(campaign=campaign).exists()


def test_the_default_can_move_from_one_variant_to_another_in_one_save(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    first, second = _variant(campaign, "first", default=True), _variant(campaign, "second")
    response = _save(_client(marketer_a), campaign, variants=[
        {"id": first.pk, "key": "first", "name": "First", "payload": "{}"},
        {"id": second.pk, "key": "second", "name": "Second", "is_default": True, "payload": "{}"},
    ])
    assert response.status_code == 302, _page_errors(response)
    assert list(Variant.objects.filter(campaign=campaign, is_default=True)) == [second]


@pytest.mark.parametrize("setting", ["workplace", "education"])
def test_an_expression_rule_is_refused_at_work_and_in_education_citing_art_5_1_f(org_a, marketer_a, setting) -> None:
    campaign = _campaign(org_a, setting_of_use=setting)
    variant = _variant(campaign, "calm", default=True)
    response = _save(_client(marketer_a), campaign, rules=[
        {"name": "Smilers", "priority": 1, "enabled": True, "variant": variant.pk,
         "condition": json.dumps({"all": [MOBILE, SMILE]})},
    ])
    errors = _page_errors(response)
    assert "condition.all[1]" in errors and "EU AI Act Art. 5(1)(f)" in errors
    assert not Rule.objects.exists()


def test_the_editor_of_a_workplace_campaign_says_why_expression_fields_are_greyed(org_a, marketer_a) -> None:
    campaign = _campaign(org_a, setting_of_use="workplace")
    variant = _variant(campaign, "calm", default=True)
    _rule(campaign, "Mobile", MOBILE, variant)
    page = _client(marketer_a).get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'data-emotion-forbidden="true"' in page and "visage/condition_editor.js" in page
    vocabulary = json.loads(re.search(r'id="visage-condition-fields"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert any(entry["field"] == "face.smile_share" and entry["emotion"] for entry in vocabulary)
    assert "EU AI Act Art. 5(1)(f)" in page


def test_a_non_expression_face_rule_may_be_saved_at_work(org_a, marketer_a) -> None:
    campaign = _campaign(org_a, setting_of_use="workplace")
    variant = _variant(campaign, "calm", default=True)
    attention = {"field": "face.attention_share", "op": "gte", "value": 0.7}
    response = _save(_client(marketer_a), campaign, rules=[
        {"name": "Attentive", "priority": 1, "enabled": True, "variant": variant.pk,
         "condition": json.dumps(attention)},
    ])
    assert response.status_code == 302, _page_errors(response)


def test_moving_a_campaign_with_expression_rules_to_the_workplace_is_refused_naming_them(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    variant = _variant(campaign, "calm", default=True)
    _rule(campaign, "Smilers", {"all": [SMILE]}, variant)
    _rule(campaign, "Mobile", MOBILE, variant)
    response = _save(_client(marketer_a), campaign, setting_of_use="workplace")
    errors = _page_errors(response)
    assert "Art. 5(1)(f)" in errors and "“Smilers”" in errors and "Mobile" not in errors
    campaign.refresh_from_db()
    assert campaign.setting_of_use == "general"


def test_a_bad_tree_is_refused_with_the_path_of_the_offending_node(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    variant = _variant(campaign, "calm", default=True)
    bad = {"all": [MOBILE, {"any": [{"field": "request.device", "op": "eq", "value": "fridge"}]}]}
    response = _save(_client(marketer_a), campaign, rules=[
        {"name": "Odd", "priority": 1, "enabled": True, "variant": variant.pk, "condition": json.dumps(bad)},
    ])
    assert "condition: condition.all[1].any[0].value" in _page_errors(response)
    assert not Rule.objects.exists()


def test_a_rule_can_only_show_a_variant_of_its_own_campaign(org_a, marketer_a) -> None:
    campaign, other = _campaign(org_a), _campaign(org_a)
    _variant(campaign, "calm", default=True)
    foreign = _variant(other, "elsewhere", default=True)
    response = _save(_client(marketer_a), campaign, rules=[
        {"name": "Mobile", "priority": 1, "enabled": True, "variant": foreign.pk, "condition": json.dumps(MOBILE)},
    ])
    assert "variant: Select a valid choice" in _page_errors(response)


def test_the_inlines_show_only_the_members_organizations_rows(org_a, org_b, marketer_a) -> None:
    campaign = _campaign(org_a)
    _variant(campaign, "ours", default=True)
    # A row of another organization pointing at this campaign (never made by the app) stays invisible.
    Variant.objects.create(organization=org_b, campaign=campaign, key="theirs", name="Theirs")
    page = _client(marketer_a).get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'value="ours"' in page and 'value="theirs"' not in page


def test_a_scheduled_campaign_needs_a_start_and_an_end_after_it(org_a, marketer_a) -> None:
    make_notice(org_a, purposes=PURPOSES)
    campaign = _campaign(org_a)
    client = _client(marketer_a)
    errors = _page_errors(_save(client, campaign, status="scheduled", variants=[], rules=[]))
    assert "A scheduled campaign needs a start" in errors
    errors = _page_errors(_save(client, campaign, status="scheduled", starts_at_0="2031-05-02", starts_at_1="10:00",
                                ends_at_0="2031-05-01", ends_at_1="10:00", variants=[], rules=[]))
    assert "The end must come after the start." in errors
    response = _save(client, campaign, status="scheduled", starts_at_0="2031-05-01", starts_at_1="10:00",
                     variants=[], rules=[])
    assert response.status_code == 302, _page_errors(response)
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.starts_at is not None


def test_scheduling_an_unready_campaign_is_refused_as_running_would_be(org_a, marketer_a) -> None:
    campaign = _campaign(org_a)
    errors = _page_errors(_save(_client(marketer_a), campaign, status="scheduled", starts_at_0="2031-05-01",
                                starts_at_1="10:00", variants=[], rules=[]))
    assert "cannot be running or scheduled yet" in errors and "No published notice" in errors


# --- "What would this visitor get?" -------------------------------------------------------------------------------


def _preview_campaign(org) -> tuple[Campaign, dict[str, Rule]]:
    campaign = _campaign(org)
    calm, smile, phone = (_variant(campaign, "calm", default=True), _variant(campaign, "smile"),
                          _variant(campaign, "phone"))
    rules = {
        "smilers": _rule(campaign, "Smilers", {"all": [SMILE]}, smile, priority=10),
        "mobile": _rule(campaign, "Mobile", MOBILE, phone, priority=20),
    }
    assert calm.is_default
    return campaign, rules


def _preview(client: Client, campaign: Campaign, **data: Any):
    form = {"frames": 10, "device": "desktop", "local_hour": 12, "weekday": "mon",
            "consent_face_analysis": "active", "consent_personalization": "active",
            "consent_partner_sharing": "none", **data}
    return client.post(f"/admin/campaigns/campaign/{campaign.pk}/personalization-preview/", form)


def _rows(page: str) -> dict[str, str]:
    """rule id -> the row's status and reason as the page marks them."""
    found = re.findall(r'data-rule="(\d+)" data-status="(\w+)"(?: data-reason="(\w+)")?', page)
    return {rule: f"{status}:{reason}" if reason else status for rule, status, reason in found}


def test_the_change_page_links_the_personalization_preview(org_a, marketer_a) -> None:
    campaign, _ = _preview_campaign(org_a)
    page = _client(marketer_a).get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert f"/admin/campaigns/campaign/{campaign.pk}/personalization-preview/" in page


def test_preview_of_typed_smiles_matches_the_face_rule(org_a, marketer_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    response = _preview(_client(marketer_a), campaign, smile_share="0.8")
    page = response.content.decode()
    assert response.status_code == 200
    assert _rows(page) == {str(rules["smilers"].pk): "matched", str(rules["mobile"].pk): "not_tried"}
    assert "Variant chosen: Smile (smile)" in page and "rule “Smilers” matched" in page


def test_preview_of_a_typed_visitor_without_personalization_consent_skips_the_face_rule(org_a, marketer_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    page = _preview(_client(marketer_a), campaign, smile_share="0.9", device="mobile",
                    consent_personalization="withdrawn").content.decode()
    assert _rows(page) == {
        str(rules["smilers"].pk): "skipped:no_personalization_consent", str(rules["mobile"].pk): "matched",
    }
    assert "Skipped: no live personalization consent" in page and "Variant chosen: Phone (phone)" in page


def test_preview_says_which_node_failed_and_falls_back_to_the_default(org_a, marketer_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    page = _preview(_client(marketer_a), campaign, smile_share="0.1").content.decode()
    assert _rows(page) == {str(rules["smilers"].pk): "not_matched", str(rules["mobile"].pk): "not_matched"}
    assert "Not matched: condition.all[0] was false." in page
    assert "Variant chosen: Calm (calm) —" in page and "default (no rule matched)" in page


def test_preview_of_a_typed_visitor_with_too_few_frames_says_no_fresh_features(org_a, marketer_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    page = _preview(_client(marketer_a), campaign, smile_share="0.9", frames=2).content.decode()
    assert _rows(page)[str(rules["smilers"].pk)] == "skipped:no_fresh_features"


def test_preview_of_a_real_subject_without_consent_skips_face_rules_and_writes_nothing(org_a, marketer_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    subject = make_subject(org_a)
    # Typed smiles and consent are ignored for a real subject: their live consent is what counts.
    page = _preview(_client(marketer_a), campaign, subject=str(subject.public_id), smile_share="1",
                    device="mobile").content.decode()
    assert _rows(page) == {
        str(rules["smilers"].pk): "skipped:no_face_analysis_consent", str(rules["mobile"].pk): "matched",
    }
    assert "the subject&#x27;s live consent" in page or "the subject's live consent" in page
    assert not Decision.objects.exists() and not Event.objects.exists()


def test_preview_refuses_another_organizations_subject_as_unknown(org_a, org_b, marketer_a) -> None:
    campaign, _ = _preview_campaign(org_a)
    page = _preview(_client(marketer_a), campaign, subject=str(make_subject(org_b).public_id)).content.decode()
    assert "No subject with this public id in the campaign&#x27;s organization." in page
    assert "data-rule=" not in page


def test_preview_of_another_organizations_campaign_is_404(org_a, org_b, marketer_a) -> None:
    theirs, _ = _preview_campaign(org_b)
    client = _client(marketer_a)
    assert client.get(f"/admin/campaigns/campaign/{theirs.pk}/personalization-preview/").status_code == 404
    assert _preview(client, theirs).status_code == 404
    assert client.get("/admin/campaigns/campaign/999999/personalization-preview/").status_code == 404


def test_preview_is_open_to_view_only_members(org_a) -> None:
    campaign, rules = _preview_campaign(org_a)
    analyst = _client(make_member(org_a, role="analyst"))
    assert analyst.get(f"/admin/campaigns/campaign/{campaign.pk}/personalization-preview/").status_code == 200
    page = _preview(analyst, campaign, device="mobile").content.decode()
    assert _rows(page)[str(rules["mobile"].pk)] == "matched"


# --- the decision log and events ----------------------------------------------------------------------------------


def _decision(campaign: Campaign, variant: Variant) -> Decision:
    return Decision.objects.create(organization=campaign.organization, campaign=campaign, visitor_id="v" * 20,
                                   variant=variant, reason=Decision.Reason.DEFAULT)


def test_decisions_and_events_are_read_only_and_scoped_to_the_organization(org_a, marketer_a) -> None:
    ours, theirs = _campaign(org_a), _campaign(make_organization(name="Other"))
    mine = _decision(ours, _variant(ours, "calm", default=True))
    foreign = _decision(theirs, _variant(theirs, "calm", default=True))
    event = Event.objects.create(organization=org_a, decision=mine, campaign=ours, variant=mine.variant,
                                 kind="click", client_event_id="c1")
    client = _client(marketer_a)
    listing = client.get("/admin/campaigns/decision/").content.decode()
    assert str(mine.public_id) in listing and str(foreign.public_id) not in listing
    assert theirs.name not in listing  # the campaign filter lists only the member's campaigns
    assert client.get(f"/admin/campaigns/decision/{foreign.pk}/change/").status_code == 302  # "doesn't exist"
    assert client.get(f"/admin/campaigns/decision/{mine.pk}/change/").status_code == 200
    assert client.get("/admin/campaigns/decision/add/").status_code == 403
    assert client.post(f"/admin/campaigns/decision/{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/campaigns/event/{event.pk}/delete/").status_code == 403
    assert client.get(f"/admin/campaigns/decision/?campaign={ours.pk}").content.decode().count("field-public_id") == 1
    assert client.get(f"/admin/campaigns/decision/?campaign={theirs.pk}").content.decode().count("field-public_id") == 0
    for odd in ("²", "١٢", "x"):  # digits int() refuses, and no digit at all: an empty list, never a 500
        response = client.get("/admin/campaigns/decision/", {"campaign": odd})
        assert response.status_code == 200 and response.content.decode().count("field-public_id") == 0
    assert client.get("/admin/campaigns/event/?kind=click").content.decode().count('class="field-name"') == 1
    assert client.get("/admin/campaigns/event/?kind=conversion").content.decode().count('class="field-name"') == 0
    assert Decision.objects.count() == 2 and Event.objects.count() == 1


def test_preview_says_the_running_experiment_decides_when_no_rule_matches(org_a, marketer_a) -> None:
    from tests.factories import make_experiment

    campaign, rules = _preview_campaign(org_a)
    keys = list(campaign.variants.order_by("-is_default", "key").values_list("key", flat=True))[:2]
    make_experiment(campaign, [(keys[0], 0.5), (keys[1], 0.5)], key="preview-test")
    page = _preview(_client(marketer_a), campaign, smile_share="0.1").content.decode()
    assert "the experiment “Preview-Test” decides" in page and "Variant chosen" not in page
    matched = _preview(_client(marketer_a), campaign, smile_share="0.9").content.decode()
    assert "Variant chosen:" in matched and "rule “" in matched and "preview-experiment" not in matched
