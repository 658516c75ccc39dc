"""The exact text of a notice, composed in its own language from the draft and the retention schedule.

Pure: no database access. What it returns is frozen into the published version and hashed.
"""

import hashlib
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consent.models import Purpose

PURPOSE_DESCRIPTIONS = {
    Purpose.FACE_ANALYSIS: gettext_lazy(
        "Images of your face from your camera are analysed to derive features such as the position of the face, "
        "an estimated age range and facial expression scores."
    ),
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
    analyses_expressions: bool,
    retention: dict[str, int],
    published_at: datetime,
) -> str:
    """The full notice: controller, purposes, what is derived and never kept, emotion recognition, retention,
    recipients and rights, in `language`."""
    with translation.override(language):
        lines: list[str] = [_("Consent to the processing of biometric data"), ""]
        lines += [_("Controller: %(name)s, %(contact)s") % {"name": controller_name, "contact": controller_contact}]
        if introduction.strip():
            lines += ["", introduction.strip()]
        lines += ["", _("Purposes (each needs your separate, explicit consent):")]
        for purpose in purposes:
            lines.append(f"- {Purpose(purpose).label}: {PURPOSE_DESCRIPTIONS[Purpose(purpose)]}")
        lines += [
            "",
            _("What is derived: only numbers computed from your face (face features). These are biometric data."),
            _(
                "What is never kept: images of your face (pixels) are analysed in memory and deleted immediately; "
                "they are never stored."
            ),
        ]
        if analyses_expressions:
            lines += [
                _(
                    "Emotion recognition: an emotion recognition system is applied to you. Your facial expressions "
                    "are analysed to estimate emotions (EU AI Act, Article 50(3))."
                )
            ]
        lines += [
            "",
            _("Retention schedule:"),
            _(
                "- Face features are deleted %(days)s days after they were derived at the latest, and at once "
                "when you withdraw your consent."
            )
            % {"days": retention["feature_retention_days"]},
            _("- Your consent is valid for %(days)s days; after that you are asked again.")
            % {"days": retention["grant_validity_days"]},
            _("- Records of your consent decisions contain no biometric data and are kept as proof."),
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
