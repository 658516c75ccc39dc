"""Writes of a campaign's content: its variants (exactly one of them the default) and its rules (a condition tree
and a variant), one at a time or all together. Every refusal is a `ContentError` naming the offending field by its
path (`variants[0].cta_url`, `rules[2].condition.all[1].value`); nothing is written when one is raised. Used by
the partner API and the admin."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import nh3
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import conditions
from campaigns.models import Campaign, Decision, Event, ExperimentArm, Rule, Variant
from segments.membership import segment_keys_known

# --- HTML ----------------------------------------------------------------------------------------------------------

ALLOWED_TAGS: frozenset[str] = frozenset(
    {"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "a", "span", "h1", "h2", "h3", "h4", "img"}
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}
# Removed with everything inside them (the others lose the tag and keep their text).
_CONTENT_DROPPED = {"script", "style", "iframe", "object", "embed", "noscript", "template", "textarea", "svg", "math"}
_DIMENSION = re.compile(r"^\d{1,4}$")


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    """Only absolute http(s) URLs (nh3 already refuses other schemes and relative ones) and plain pixel sizes."""
    if attribute in ("href", "src"):
        return value if value.strip().lower().startswith(("http://", "https://")) else None
    if attribute in ("width", "height"):
        return value if _DIMENSION.match(value.strip()) else None
    return value


def html_sanitize(html: str) -> str:
    """`html` reduced to harmless formatting: the tags of ALLOWED_TAGS with the attributes of ALLOWED_ATTRIBUTES,
    http(s) URLs only, no script, style, frame or event handler, comments dropped; every link gets
    rel="noopener noreferrer"."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=_CONTENT_DROPPED,
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https"},
        url_relative="deny",
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# --- Errors and field checks ---------------------------------------------------------------------------------------


class ContentError(Exception):
    """Content that cannot be saved: `path` names the field (`variants[0].cta_url`), `message` says why. A 400
    unless `status_code` says otherwise (409 for a variant still in use)."""

    def __init__(self, path: str, message: str, *, code: str = "invalid", status_code: int = 400) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
        self.code = code
        self.status_code = status_code

    @property
    def details(self) -> dict[str, list[str]]:
        """The message under the field it is about, as a validation error lists it."""
        return {self.path or "non_field_errors": [self.message]}


def join_path(prefix: str, name: str) -> str:
    """`prefix.name`, or `name` alone at the top."""
    return f"{prefix}.{name}" if prefix else name


@dataclass(frozen=True)
class FieldReader:
    """Typed reads of one JSON object's members, each refusal naming `prefix.member`."""

    data: Mapping[str, Any]
    prefix: str

    def path(self, name: str) -> str:
        return join_path(self.prefix, name)

    def text(self, name: str, *, max_length: int, blank: bool = True) -> str:
        value = self.data[name]
        if not isinstance(value, str):
            raise ContentError(self.path(name), "Give a string.")
        if "\x00" in value:
            raise ContentError(self.path(name), "Text may not contain NUL characters.")
        value = value.strip()
        if not blank and not value:
            raise ContentError(self.path(name), "This may not be blank.")
        if len(value) > max_length:
            raise ContentError(self.path(name), f"At most {max_length} characters.")
        return value

    def url(self, name: str, *, max_length: int = 500) -> str:
        value = self.text(name, max_length=max_length)
        if value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except ValidationError:
                raise ContentError(self.path(name), "Give an http:// or https:// URL.") from None
        return value

    def boolean(self, name: str) -> bool:
        value = self.data[name]
        if not isinstance(value, bool):
            raise ContentError(self.path(name), "Give true or false.")
        return value

    def integer(self, name: str, *, low: int, high: int) -> int:
        value = self.data[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ContentError(self.path(name), f"Give a whole number from {low} to {high}.")
        return value


def require_object(data: Any, path: str) -> Mapping[str, Any]:
    """`data` if it is a JSON object, else a ContentError at `path`."""
    if not isinstance(data, Mapping):
        raise ContentError(path, "Give a JSON object.")
    return data


def refuse_unknown(data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    """A ContentError naming the first member that is not one of `known`."""
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise ContentError(join_path(prefix, unknown[0]), "Unknown field.")


def _refuse_missing(data: Mapping[str, Any], required: tuple[str, ...], prefix: str) -> None:
    for name in required:
        if name not in data:
            raise ContentError(join_path(prefix, name), "This field is required.")


# --- Variants ------------------------------------------------------------------------------------------------------

PAYLOAD_MAX_BYTES = 16 * 1024
HTML_MAX_LENGTH = 20000
KEY_PATTERN = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
VARIANT_BLANK: dict[str, Any] = {
    "headline": "", "body": "", "image_url": "", "cta_text": "", "cta_url": "", "payload": {}, "html": "",
    "is_default": False,
}
VARIANT_FIELDS = frozenset(
    {"key", "name", "headline", "body", "image_url", "cta_text", "cta_url", "payload", "html", "is_default"}
)


def payload_too_large(payload: Any) -> bool:
    """Whether a variant's payload is over PAYLOAD_MAX_BYTES as UTF-8 JSON (the API and the admin alike)."""
    return len(json.dumps(payload, ensure_ascii=False).encode()) > PAYLOAD_MAX_BYTES


def _variant_apply(variant: Variant, data: Any, prefix: str) -> bool | None:
    """Check `data` and put it on `variant` (unsaved); return the `is_default` asked for (None: not given)."""
    data = require_object(data, prefix)
    refuse_unknown(data, VARIANT_FIELDS, prefix)
    if variant.pk is None:
        _refuse_missing(data, ("key", "name"), prefix)
    read = FieldReader(data, prefix)
    if "key" in data:
        key = read.text("key", max_length=64, blank=False)
        if not KEY_PATTERN.match(key):
            raise ContentError(read.path("key"), "Lower-case letters and digits, joined by single - or _.")
        variant.key = key
    if "name" in data:
        variant.name = read.text("name", max_length=200, blank=False)
    for name, limit in (("headline", 300), ("body", 5000), ("cta_text", 100)):
        if name in data:
            setattr(variant, name, read.text(name, max_length=limit))
    for name in ("image_url", "cta_url"):
        if name in data:
            setattr(variant, name, read.url(name))
    if "payload" in data:
        payload = data["payload"]
        if not isinstance(payload, dict):
            raise ContentError(read.path("payload"), "Give a JSON object.")
        if payload_too_large(payload):
            raise ContentError(read.path("payload"), "At most 16 KB of JSON.")
        variant.payload = payload
    if "html" in data:
        raw = read.text("html", max_length=HTML_MAX_LENGTH)
        variant.html = html_sanitize(raw)
        if len(variant.html) > HTML_MAX_LENGTH:  # entities can grow it
            raise ContentError(read.path("html"), f"At most {HTML_MAX_LENGTH} characters once sanitised.")
    return read.boolean("is_default") if "is_default" in data else None


def _key_taken(campaign: Campaign, variant: Variant) -> bool:
    others = Variant.objects.filter(campaign=campaign, key=variant.key)
    return (others.exclude(pk=variant.pk) if variant.pk else others).exists()


def variant_save(*, campaign: Campaign, variant: Variant | None, data: dict) -> Variant:
    """Create a variant of `campaign` (`variant` None) or change one of its own with `data` (only the members
    given change). Making it the default unsets the campaign's other default in the same transaction; the first
    variant of a campaign without a default becomes the default; the default cannot stop being one (make another
    the default instead). Paths in errors are the member names."""
    if variant is not None and variant.campaign_id != campaign.pk:
        raise ContentError("", "The variant is not one of this campaign's.")
    target = variant or Variant(organization_id=campaign.organization_id, campaign=campaign)
    with transaction.atomic():
        wanted_default = _variant_apply(target, data, "")
        return _variant_store(campaign, target, wanted_default, "")


def _variant_store(campaign: Campaign, variant: Variant, wanted_default: bool | None, prefix: str) -> Variant:
    """Save a checked variant and keep exactly one default; inside the caller's transaction."""
    if _key_taken(campaign, variant):
        raise ContentError(join_path(prefix, "key"), "Another variant of this campaign has this key.")
    was_default = bool(variant.pk) and Variant.objects.filter(pk=variant.pk, is_default=True).exists()
    if wanted_default is False and was_default:
        raise ContentError(
            join_path(prefix, "is_default"), "A campaign keeps exactly one default: make another variant the default."
        )
    has_default = Variant.objects.filter(campaign=campaign, is_default=True).exists()
    make_default = wanted_default is True or (not has_default and not was_default)
    if make_default:
        # Unset first: the one-default constraint is checked per statement.
        Variant.objects.filter(campaign=campaign, is_default=True).exclude(pk=variant.pk).update(is_default=False)
    variant.is_default = make_default or was_default
    try:
        with transaction.atomic():
            variant.save()
    except IntegrityError:  # a concurrent write took the key or the default
        raise ContentError(join_path(prefix, "key"), "Another variant of this campaign has this key.") from None
    return variant


def variant_delete(*, variant: Variant) -> None:
    """Delete a variant. Refused (409) for the default, while rules point at it, and once decisions were made
    with it (the decision log keeps pointing at what it showed)."""
    if variant.is_default:
        raise ContentError("key", "The default variant cannot be deleted: make another one the default first.",
                           code="variant_is_default", status_code=409)
    in_use = _variant_in_use(variant)
    if in_use:
        raise ContentError("key", in_use, code="variant_in_use", status_code=409)
    variant.delete()


def _variant_in_use(variant: Variant) -> str | None:
    """Why `variant` cannot be deleted (a rule points at it, or the decision log does), else None."""
    rule = Rule.objects.filter(variant=variant).only("name").first()
    if rule is not None:
        return f"The rule '{rule.name}' points at the variant '{variant.key}': change or delete the rule first."
    arm = ExperimentArm.objects.filter(variant=variant).select_related("experiment").first()
    if arm is not None:
        return (f"The variant '{variant.key}' is, or was, an arm of the experiment '{arm.experiment.key}', whose "
                "results keep it.")
    if Decision.objects.filter(variant=variant).exists() or Event.objects.filter(variant=variant).exists():
        return f"Decisions were made with the variant '{variant.key}'; the decision log keeps it."
    return None


# --- Rules ---------------------------------------------------------------------------------------------------------

RULE_FIELDS = frozenset({"name", "priority", "enabled", "condition", "variant"})
MAX_PRIORITY = 2_147_483_647


def _rule_apply(
    campaign: Campaign, rule: Rule, data: Any, prefix: str, condition_path: str,
    variant_for: Callable[[str], Variant | None],
) -> None:
    """Check `data` and put it on `rule` (unsaved). `variant` is a Variant of the campaign or its key."""
    data = require_object(data, prefix)
    refuse_unknown(data, RULE_FIELDS, prefix)
    if rule.pk is None:
        _refuse_missing(data, ("name", "condition", "variant"), prefix)
    read = FieldReader(data, prefix)
    if "name" in data:
        rule.name = read.text("name", max_length=200, blank=False)
    if "priority" in data:
        rule.priority = read.integer("priority", low=0, high=MAX_PRIORITY)
    if "enabled" in data:
        rule.enabled = read.boolean("enabled")
    if "variant" in data:
        given = data["variant"]
        variant = given if isinstance(given, Variant) else variant_for(given) if isinstance(given, str) else None
        if variant is None or variant.campaign_id != campaign.pk:
            raise ContentError(read.path("variant"), "No variant of this campaign has this key.")
        rule.variant = variant
    if "condition" in data:
        try:
            rule.condition = condition_check(campaign=campaign, tree=data["condition"], path=condition_path)
        except conditions.ConditionError as error:
            raise ContentError(error.path, error.message) from None
    rule.updated_at = timezone.now()


def condition_check(
    *, campaign: Campaign, tree: Any, path: str = "condition", emotion_recognition_forbidden: bool | None = None
) -> Any:
    """A rule's tree validated for `campaign` (conditions.condition_validate): segments must be the campaign's
    organization's (segments.membership), expression fields are refused where its setting forbids emotion
    recognition (unless `emotion_recognition_forbidden` says otherwise). Raises ConditionError; returns the tree
    normalised. The one check of the API, the admin and the demo seed."""
    forbidden = campaign.emotion_recognition_forbidden if emotion_recognition_forbidden is None else (
        emotion_recognition_forbidden
    )

    def segment_known(key: str) -> bool:
        # An emotion-based segment is unknown where emotion recognition is forbidden (EU AI Act Art. 5(1)(f)).
        return key in segment_keys_known(
            organization_id=campaign.organization_id, keys=[key], emotion_allowed=not forbidden
        )

    return conditions.condition_validate(
        tree, path=path, emotion_recognition_forbidden=forbidden, segment_known=segment_known
    )


def _variant_of(campaign: Campaign) -> Callable[[str], Variant | None]:
    return lambda key: Variant.objects.filter(campaign=campaign, key=key).first()


def rule_save(*, campaign: Campaign, rule: Rule | None, data: dict, path: str = "condition") -> Rule:
    """Create a rule of `campaign` (`rule` None) or change one of its own with `data` (only the members given
    change). The tree is checked by `conditions.condition_validate` (no expression field where the campaign's
    setting forbids emotion recognition) and stored normalised; `variant` (a Variant or its key) must be the
    campaign's. `path` is where the tree sits in the caller's body; the other members' paths sit beside it."""
    if rule is not None and rule.campaign_id != campaign.pk:
        raise ContentError("", "The rule is not one of this campaign's.")
    target = rule or Rule(organization_id=campaign.organization_id, campaign=campaign)
    prefix = path[: -len("condition")].rstrip(".") if path.endswith("condition") else ""
    _rule_apply(campaign, target, data, prefix, path, _variant_of(campaign))
    target.save()
    return target


# --- All of a campaign's content at once ---------------------------------------------------------------------------


def campaign_content_replace(*, campaign: Campaign, variants: list[dict], rules: list[dict]) -> None:
    """Make `variants` and `rules` the campaign's whole content, in one transaction: variants are matched by key
    (changed in place, created, or deleted when absent), exactly one of them marked `is_default`; rules name their
    variant by key and may name an existing rule's `id` to change it in place (the others are deleted). The first
    problem raises ContentError with its path (`variants[0].cta_url`, `rules[2].condition.all[1].value`) and
    nothing is written."""
    with transaction.atomic():
        content_replace(campaign=campaign, variants=variants, rules=rules)


def content_replace(*, campaign: Campaign, variants: Any, rules: Any) -> None:
    """`campaign_content_replace` where either list may be None (left as it is); inside the caller's
    transaction, which must roll back on ContentError."""
    removed: list[Variant] = []
    by_key = {v.key: v for v in Variant.objects.select_for_update().filter(campaign=campaign)}
    if variants is not None:
        by_key, removed = _variants_replace(campaign, variants, by_key)
    removed_ids = {v.pk for v in removed}
    if rules is not None:
        _rules_replace(campaign, rules, by_key, removed_ids)
    for variant in removed:
        in_use = _variant_in_use(variant)
        if in_use:
            raise ContentError("variants", in_use)
        variant.delete()


def _variants_replace(
    campaign: Campaign, items: Any, existing: dict[str, Variant]
) -> tuple[dict[str, Variant], list[Variant]]:
    """Save the listed variants (matched by key) and return them by key, with the existing ones not listed
    (for the caller to delete once no rule points at them)."""
    if not isinstance(items, list):
        raise ContentError("variants", "Give a list of variants.")
    if len(items) > 100:
        raise ContentError("variants", "At most 100 variants.")
    staged: dict[str, Variant] = {}
    seen: dict[str, int] = {}
    defaults: list[int] = []
    for index, item in enumerate(items):
        prefix = f"variants[{index}]"
        item = require_object(item, prefix)
        key = item.get("key")
        variant = existing.get(key) if isinstance(key, str) else None
        target = variant or Variant(organization_id=campaign.organization_id, campaign=campaign)
        _refuse_missing(item, ("key", "name"), prefix)
        # The item is the whole variant: what it leaves out is empty.
        if _variant_apply(target, {**VARIANT_BLANK, **item}, prefix):
            defaults.append(index)
        if target.key in seen:
            raise ContentError(join_path(prefix, "key"), f"variants[{seen[target.key]}] has this key too.")
        seen[target.key] = index
        target.is_default = index in defaults[:1]
        staged[target.key] = target
    if items and len(defaults) != 1:
        where = f"variants[{defaults[1]}].is_default" if defaults else "variants"
        raise ContentError(where, "Exactly one variant is the default (is_default: true).")
    # Unset first: the one-default constraint is checked per statement.
    Variant.objects.filter(campaign=campaign, is_default=True).update(is_default=False)
    for variant in sorted(staged.values(), key=lambda v: v.is_default):  # the default last
        variant.save()
    removed = [v for key, v in existing.items() if key not in staged]
    return staged, removed


def _rules_replace(campaign: Campaign, items: Any, variants: dict[str, Variant], removed_ids: set[int]) -> None:
    """Make the listed rules the campaign's rules; an item with the `id` of one of its rules changes that rule."""
    if not isinstance(items, list):
        raise ContentError("rules", "Give a list of rules.")
    if len(items) > 200:
        raise ContentError("rules", "At most 200 rules.")
    existing = {r.pk: r for r in Rule.objects.select_for_update().filter(campaign=campaign)}
    staged: list[Rule] = []
    for index, item in enumerate(items):
        prefix = f"rules[{index}]"
        item = require_object(item, prefix)
        rule = None
        if "id" in item:
            rule_id = item["id"]
            rule = existing.get(rule_id) if isinstance(rule_id, int) and not isinstance(rule_id, bool) else None
            if rule is None or any(rule is other for other in staged):
                raise ContentError(join_path(prefix, "id"), "No other rule of this campaign has this id.")
            item = {k: v for k, v in item.items() if k != "id"}
        target = rule or Rule(organization_id=campaign.organization_id, campaign=campaign)
        _refuse_missing(item, ("name", "condition", "variant"), prefix)
        # The item is the whole rule: what it leaves out takes the default.
        item = {"priority": 100, "enabled": True, **item}
        _rule_apply(campaign, target, item, prefix, join_path(prefix, "condition"), variants.get)
        if target.variant_id in removed_ids:
            raise ContentError(join_path(prefix, "variant"), "This rule's variant is removed: name one that stays.")
        staged.append(target)
    kept = {rule.pk for rule in staged if rule.pk}
    Rule.objects.filter(campaign=campaign).exclude(pk__in=kept).delete()
    for rule in staged:
        rule.save()


def rule_delete(*, rule: Rule) -> None:
    """Delete a rule; decisions it made keep their variant and lose the rule (the log's rule link is nullable)."""
    rule.delete()
