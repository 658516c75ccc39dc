"""The exact text of a notice, composed in its own language from the draft and the retention schedule.

Pure: no database access. What it returns is frozen into the published version and hashed.
"""

import hashlib
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consent import derived, retention
from consent.models import Purpose

# Face analysis is described from the derived-attribute catalogue (`face_analysis_description`), which names
# exactly what a notice covers; the other purposes do not depend on it.
PURPOSE_DESCRIPTIONS = {
    Purpose.PERSONALIZATION: gettext_lazy(
        "The features derived from your face are used to choose which content or offer you are shown."
    ),
    Purpose.PARTNER_SHARING: gettext_lazy(
        "Aggregated statistics derived from the face features of many people are shared with the partner named "
        "below; nothing about you alone is shared."
    ),
    Purpose.FACE_VERIFICATION: gettext_lazy(
        "Your face is compared with a template you enrolled, to confirm that it is you."
    ),
}


FACE_ANALYSIS_DESCRIPTION = {
    "en": "Images of your face from your camera are analysed in memory to derive: %(attributes)s.",
    "de": "Bilder Ihres Gesichts aus Ihrer Kamera werden im Arbeitsspeicher analysiert, um abzuleiten: "
    "%(attributes)s.",
}


def _catalogue_language(language: str | None) -> str:
    """The catalogue language for a Django language code (de-at -> de); English where there is no text."""
    code = (language or "en").split("-")[0]
    return code if code in derived.HEADING else "en"


def face_analysis_description(attributes: frozenset[str] | set[str], language: str | None = None) -> str:
    """What face analysis derives, naming each attribute in `attributes`, in `language` (default: active)."""
    language = _catalogue_language(language or translation.get_language())
    chosen = set(attributes) | derived.CORE_KEYS  # always derived, so always named
    labels = [a.label[language] for a in derived.DERIVED_ATTRIBUTES if a.key in chosen]
    return FACE_ANALYSIS_DESCRIPTION[language] % {"attributes": ", ".join(labels)}


def capture_statement(attributes: frozenset[str] | set[str], language: str | None = None) -> list[str]:
    """What the camera page says before it starts: what is derived, and the Art. 50(3) categories applied."""
    language = _catalogue_language(language or translation.get_language())
    return [face_analysis_description(attributes, language), *derived.category_lines(attributes, language)]


def purpose_description(purpose: str, attributes: frozenset[str] | set[str], language: str | None = None) -> str:
    """A purpose in plain words; face analysis names the derived attributes, the others are fixed texts."""
    if purpose == Purpose.FACE_ANALYSIS:
        return face_analysis_description(attributes, language)
    if language:
        with translation.override(language):
            return str(PURPOSE_DESCRIPTIONS[Purpose(purpose)])
    return str(PURPOSE_DESCRIPTIONS[Purpose(purpose)])


# A category's line in the notice's retention schedule, by the snapshot field that holds its period. A snapshot
# frozen before a category existed has no value for it, and its notice no line.
RETENTION_LINES = {
    "frame_bytes_seconds": gettext_lazy(
        "- Images of your face wait at most %(seconds)s seconds in memory for their analysis; then they are "
        "deleted, analysed or not."),
    "feature_retention_days": gettext_lazy(
        "- Face features are deleted %(days)s days after they were derived at the latest, and at once when you "
        "withdraw your consent."),
    "aggregate_retention_days": gettext_lazy(
        "- Statistics over the images of a capture session are deleted %(days)s days after the session at the "
        "latest."),
    "face_context_retention_days": gettext_lazy(
        "- The summary of your recent face features used to choose content is deleted %(days)s days after its "
        "last update at the latest."),
    "membership_retention_days": gettext_lazy(
        "- Your membership in an audience segment is deleted %(days)s days after it ended."),
    "decision_retention_days": gettext_lazy("- Records of which content you were shown are deleted after %(days)s "
                                            "days."),
    "event_retention_days": gettext_lazy(
        "- Impressions, clicks and conversions on that content are deleted after %(days)s days."),
    "exposure_retention_days": gettext_lazy(
        "- Records of which experiment variant you saw no longer name you after %(days)s days."),
    "grant_validity_days": gettext_lazy("- Your consent is valid for %(days)s days; after that you are asked again."),
    "consent_record_retention_days": gettext_lazy(
        "- Records of your consent decisions contain no biometric data; an ended consent is kept as proof for "
        "%(days)s days after it ended."),
}


def retention_lines(snapshot: dict[str, int | str]) -> list[str]:
    """The retention schedule's lines for a policy snapshot, in the active language: one per period it holds, the
    consent records' (without a period in older snapshots), and with a jurisdiction the cap on biometric data."""
    lines = []
    for field, text in RETENTION_LINES.items():
        if field in snapshot:
            lines.append(str(text) % {"days": snapshot[field], "seconds": snapshot[field]})
    if "consent_record_retention_days" not in snapshot:
        lines.append(_("- Records of your consent decisions contain no biometric data and are kept as proof."))
    if "jurisdiction" in snapshot:
        cap = retention.category_cap(retention.CATEGORY_BY_KEY["features"], str(snapshot["jurisdiction"]))
        lines.append(
            _("- Whatever is configured, nothing derived from your face is kept longer than %(days)s days after "
              "your last interaction (%(cap)s).") % {"days": cap.value, "cap": cap.name}
        )
    return lines


def text_hash(text: str) -> str:
    """The identity of a published notice: SHA-256 of its exact UTF-8 text, hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def compose_notice_text(
    *,
    language: str,
    version: int,
    purposes: list[str],
    controller_name: str,
    controller_contact: str,
    recipients: str,
    introduction: str,
    derived_attributes: frozenset[str] | set[str],
    retention: dict[str, int | str],
    published_at: datetime,
) -> str:
    """The full notice: controller, purposes, each derived attribute and the Art. 50(3) categories it falls in
    (from `consent.derived`), what is never kept, retention, recipients and rights, in `language`."""
    catalogue_language = _catalogue_language(language)
    with translation.override(language):
        lines: list[str] = [_("Consent to the processing of biometric data"), ""]
        lines += [_("Controller: %(name)s, %(contact)s") % {"name": controller_name, "contact": controller_contact}]
        if introduction.strip():
            lines += ["", introduction.strip()]
        lines += ["", _("Purposes (each needs your separate, explicit consent):")]
        for purpose in purposes:
            description = purpose_description(purpose, derived_attributes, catalogue_language)
            lines.append(f"- {Purpose(purpose).label}: {description}")
        if Purpose.FACE_ANALYSIS in purposes:
            lines += ["", *derived.notice_lines(derived_attributes, catalogue_language)]
        lines += [
            "",
            _(
                "What is never kept: images of your face (pixels) are analysed in memory and deleted immediately; "
                "they are never stored."
            ),
            "",
            _("Retention schedule:"),
            *retention_lines(retention),
            "",
            _("Recipients: %(recipients)s")
            % {"recipients": recipients.strip() or _("no one outside the controller and its processors")},
            "",
            _(
                "Your rights: you can access your data, export it, have it erased and withdraw your consent at any "
                "time, as easily as you gave it, from your personal 'my data' page. Withdrawal does not affect "
                "processing before it. Consent is voluntary; refusing has no disadvantage for you."
            ),
            "",
            _("Notice version %(version)s, published %(date)s (UTC).")
            % {"version": version, "date": published_at.strftime("%Y-%m-%d %H:%M")},
        ]
    return "\n".join(lines) + "\n"
