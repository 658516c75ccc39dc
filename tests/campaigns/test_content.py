"""Campaign content writes: the HTML sanitiser, one default variant, rules through the condition checker, and the
whole-content replace that writes nothing when any item is wrong."""

import re

import pytest

from campaigns.content import (
    ALLOWED_TAGS,
    ContentError,
    campaign_content_replace,
    html_sanitize,
    rule_save,
    variant_delete,
    variant_save,
)
from campaigns.models import Rule, Variant
from tests.factories import make_campaign, make_organization

DEVICE = {"field": "request.device", "op": "eq", "value": "mobile"}
SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}


# --- The sanitiser ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dirty",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<scr<script>ipt>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<p onclick="alert(1)" onmouseover="alert(1)">x</p>',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="  javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<img src="data:image/svg+xml;base64,PHN2Zz4=">',
        "<style>body{display:none}</style>",
        '<p style="background:url(javascript:alert(1))">x</p>',
        '<iframe src="https://evil.example"></iframe>',
        "<svg><script>alert(1)</script></svg>",
        "<math><mtext><script>alert(1)</script></mtext></math>",
        '<object data="x.swf"></object><embed src="x.swf">',
        "<!--<script>alert(1)</script>-->",
        '<form action="https://evil.example"><input name=x></form>',
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    ],
)
def test_sanitiser_removes_scripts_handlers_styles_frames_and_dangerous_urls(dirty: str) -> None:
    clean = html_sanitize(dirty).lower()
    for bad in ("<script", "onerror", "onclick", "onmouseover", "javascript:", "data:", "<style", "style=",
                "<iframe", "<svg", "<math", "<object", "<embed", "<form", "<input", "<meta", "<!--"):
        assert bad not in clean, (dirty, clean)
    # What is left of a trick is text (escaped) or an allowed tag, never markup that runs.
    assert set(re.findall(r"<\s*/?\s*([a-z0-9]+)", clean)) <= ALLOWED_TAGS, clean


def test_sanitiser_keeps_harmless_formatting() -> None:
    html = ("<h2>Title</h2><p>Some <strong>bold</strong>, <em>em</em>, <b>b</b>, <i>i</i>, <u>u</u><br>"
            "<span>span</span></p><ul><li>one</li></ul><ol><li>two</li></ol>"
            '<img src="https://cdn.example/a.png" alt="A" width="10" height="20">')
    assert html_sanitize(html) == html


def test_links_keep_http_urls_and_titles_and_get_noopener() -> None:
    clean = html_sanitize('<a href="https://shop.example/x" title="Shop" target="_blank" rel="opener">Go</a>')
    assert clean == '<a href="https://shop.example/x" title="Shop" rel="noopener noreferrer">Go</a>'


def test_relative_and_protocol_relative_urls_are_dropped() -> None:
    assert html_sanitize('<a href="/x">a</a>') == '<a rel="noopener noreferrer">a</a>'
    assert html_sanitize('<img src="//evil.example/x.png">') == "<img>"


def test_unknown_attributes_and_odd_sizes_are_dropped() -> None:
    assert html_sanitize('<img src="https://c.example/a.png" width="100%" class="x" id="y">') == (
        '<img src="https://c.example/a.png">'
    )


# --- Variants --------------------------------------------------------------------------------------------------------


@pytest.fixture
def campaign(db):
    return make_campaign(make_organization(), status="draft")


def test_the_first_variant_becomes_the_default(campaign) -> None:
    variant = variant_save(campaign=campaign, variant=None, data={"key": "calm", "name": "Calm"})
    assert variant.is_default


def test_making_a_variant_the_default_unsets_the_other(campaign) -> None:
    first = variant_save(campaign=campaign, variant=None, data={"key": "calm", "name": "Calm"})
    second = variant_save(campaign=campaign, variant=None, data={"key": "fun", "name": "Fun", "is_default": True})
    first.refresh_from_db()
    assert second.is_default and not first.is_default
    assert Variant.objects.filter(campaign=campaign, is_default=True).count() == 1


def test_the_default_cannot_stop_being_the_default(campaign) -> None:
    only = variant_save(campaign=campaign, variant=None, data={"key": "calm", "name": "Calm"})
    with pytest.raises(ContentError) as refused:
        variant_save(campaign=campaign, variant=only, data={"is_default": False})
    assert refused.value.path == "is_default"
    only.refresh_from_db()
    assert only.is_default


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"key": "Not A Slug", "name": "x"}, "key"),
        ({"key": "ok", "name": "x", "cta_url": "javascript:alert(1)"}, "cta_url"),
        ({"key": "ok", "name": "x", "image_url": "ftp://files.example/a.png"}, "image_url"),
        ({"key": "ok", "name": "x", "payload": ["not", "an", "object"]}, "payload"),
        ({"key": "ok", "name": "x", "payload": {"blob": "x" * 17000}}, "payload"),
        ({"key": "ok", "name": "x", "colour": "red"}, "colour"),
        ({"key": "ok"}, "name"),
        ({"key": "ok", "name": 5}, "name"),
    ],
)
def test_bad_variant_data_is_refused_with_its_path(campaign, data: dict, path: str) -> None:
    with pytest.raises(ContentError) as refused:
        variant_save(campaign=campaign, variant=None, data=data)
    assert refused.value.path == path
    assert not Variant.objects.filter(campaign=campaign).exists()


def test_variant_html_is_stored_sanitised(campaign) -> None:
    variant = variant_save(campaign=campaign, variant=None,
                           data={"key": "k", "name": "K", "html": "<p onclick=x()>Hi<script>x()</script></p>"})
    variant.refresh_from_db()
    assert variant.html == "<p>Hi</p>"


def test_a_duplicate_key_is_refused(campaign) -> None:
    variant_save(campaign=campaign, variant=None, data={"key": "k", "name": "K"})
    with pytest.raises(ContentError) as refused:
        variant_save(campaign=campaign, variant=None, data={"key": "k", "name": "K2"})
    assert refused.value.path == "key"


def test_a_variant_with_rules_or_the_default_cannot_be_deleted(campaign) -> None:
    default = variant_save(campaign=campaign, variant=None, data={"key": "d", "name": "D"})
    other = variant_save(campaign=campaign, variant=None, data={"key": "o", "name": "O"})
    rule_save(campaign=campaign, rule=None, data={"name": "r", "condition": DEVICE, "variant": "o"})
    for variant, code in ((default, "variant_is_default"), (other, "variant_in_use")):
        with pytest.raises(ContentError) as refused:
            variant_delete(variant=variant)
        assert refused.value.code == code and refused.value.status_code == 409
    assert Variant.objects.filter(campaign=campaign).count() == 2
    Rule.objects.filter(campaign=campaign).delete()
    variant_delete(variant=other)
    assert list(Variant.objects.filter(campaign=campaign)) == [default]


# --- Rules -----------------------------------------------------------------------------------------------------------


def test_a_rule_is_saved_with_its_tree_normalised(campaign) -> None:
    variant_save(campaign=campaign, variant=None, data={"key": "smile", "name": "Smile"})
    rule = rule_save(campaign=campaign, rule=None, data={"name": "s", "condition": {"all": [SMILE]},
                                                         "variant": "smile"})
    rule.refresh_from_db()
    assert rule.condition["all"][0]["window_seconds"] > 0 and rule.variant.key == "smile"


def test_a_rule_cannot_point_at_another_campaigns_variant(campaign) -> None:
    other = make_campaign(campaign.organization, status="draft")
    foreign = variant_save(campaign=other, variant=None, data={"key": "x", "name": "X"})
    with pytest.raises(ContentError) as refused:
        rule_save(campaign=campaign, rule=None, data={"name": "r", "condition": DEVICE, "variant": foreign})
    assert refused.value.path == "variant"


def test_an_expression_rule_is_refused_where_emotion_recognition_is_forbidden(campaign) -> None:
    campaign.setting_of_use = "workplace"
    campaign.save()
    variant_save(campaign=campaign, variant=None, data={"key": "smile", "name": "Smile"})
    with pytest.raises(ContentError) as refused:
        rule_save(campaign=campaign, rule=None, data={"name": "s", "condition": {"not": SMILE}, "variant": "smile"})
    assert refused.value.path.startswith("condition.not")  # the node is the condition checker's to name
    assert not Rule.objects.exists()


def test_a_bad_tree_names_its_node_under_the_callers_path(campaign) -> None:
    variant_save(campaign=campaign, variant=None, data={"key": "v", "name": "V"})
    bad = {"all": [DEVICE, {"field": "request.device", "op": "eq", "value": 7}]}
    with pytest.raises(ContentError) as refused:
        rule_save(campaign=campaign, rule=None, data={"name": "r", "condition": bad, "variant": "v"},
                  path="rules[3].condition")
    assert refused.value.path == "rules[3].condition.all[1].value"


# --- Whole-content replace -------------------------------------------------------------------------------------------


def _variants() -> list[dict]:
    return [{"key": "default", "name": "Default", "is_default": True}, {"key": "mobile", "name": "Mobile"}]


def test_replace_writes_variants_and_rules_by_key(campaign) -> None:
    campaign_content_replace(campaign=campaign, variants=_variants(),
                             rules=[{"name": "m", "condition": DEVICE, "variant": "mobile", "priority": 1}])
    assert {v.key: v.is_default for v in Variant.objects.filter(campaign=campaign)} == {
        "default": True, "mobile": False}
    assert [(r.name, r.variant.key) for r in Rule.objects.filter(campaign=campaign)] == [("m", "mobile")]


def test_replace_changes_rules_named_by_id_in_place_and_drops_the_rest(campaign) -> None:
    campaign_content_replace(campaign=campaign, variants=_variants(), rules=[
        {"name": "keep", "condition": DEVICE, "variant": "mobile"},
        {"name": "drop", "condition": DEVICE, "variant": "default"},
    ])
    keep = Rule.objects.get(name="keep")
    campaign_content_replace(campaign=campaign, variants=_variants(), rules=[
        {"id": keep.pk, "name": "kept", "condition": DEVICE, "variant": "default"},
    ])
    assert [(r.pk, r.name, r.variant.key) for r in Rule.objects.filter(campaign=campaign)] == [
        (keep.pk, "kept", "default")]


def test_replace_is_atomic_when_the_last_rule_is_wrong(campaign) -> None:
    campaign_content_replace(campaign=campaign, variants=[{"key": "old", "name": "Old", "is_default": True}],
                             rules=[{"name": "old rule", "condition": DEVICE, "variant": "old"}])
    late = {"any": [DEVICE, {"all": [DEVICE, {"field": "request.device", "op": "eq", "value": "fridge"}]}]}
    with pytest.raises(ContentError) as refused:
        campaign_content_replace(campaign=campaign, variants=_variants(), rules=[
            {"name": "ok", "condition": DEVICE, "variant": "mobile"},
            {"name": "ok too", "condition": DEVICE, "variant": "default"},
            {"name": "late", "condition": late, "variant": "mobile"},
        ])
    assert refused.value.path == "rules[2].condition.any[1].all[1].value"
    assert [v.key for v in Variant.objects.filter(campaign=campaign)] == ["old"]
    assert [r.name for r in Rule.objects.filter(campaign=campaign)] == ["old rule"]


@pytest.mark.parametrize(
    ("variants", "rules", "path"),
    [
        ([{"key": "a", "name": "A"}], [], "variants"),
        ([{"key": "a", "name": "A", "is_default": True}, {"key": "b", "name": "B", "is_default": True}], [],
         "variants[1].is_default"),
        ([{"key": "a", "name": "A", "is_default": True}, {"key": "a", "name": "A2"}], [], "variants[1].key"),
        ([{"key": "a", "name": "A", "is_default": True, "cta_url": "javascript:x"}], [], "variants[0].cta_url"),
        ([{"key": "a", "name": "A", "is_default": True}], [{"name": "r", "condition": DEVICE, "variant": "zz"}],
         "rules[0].variant"),
        ([{"key": "a", "name": "A", "is_default": True}], [{"name": "r", "condition": DEVICE, "variant": "a",
                                                             "id": 999999}], "rules[0].id"),
        ([{"key": "a", "name": "A", "is_default": True}], ["not an object"], "rules[0]"),
    ],
)
def test_replace_refuses_with_the_path_of_the_problem(campaign, variants, rules, path: str) -> None:
    with pytest.raises(ContentError) as refused:
        campaign_content_replace(campaign=campaign, variants=variants, rules=rules)
    assert refused.value.path == path
    assert not Variant.objects.filter(campaign=campaign).exists()
