"""Retention categories: what Visage keeps, for how long at most, and which legal cap applies.

Pure data and arithmetic (no queries): the policy model stores one value per category, the retention run asks
each app's purger for its rows of a category, the public schedule and the auditor's command read the same list.

Caps apply whatever is configured: anything biometric (derived from faces) goes within three years (BIPA 740 ILCS
14/15(a)), within one year under the Texas rule (Tex. Bus. & Com. Code § 503.001(c)(3)); frame bytes live seconds,
never more than a few minutes."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

DAY = 86400
BIPA_CAP_DAYS = 3 * 365
TEXAS_CAP_DAYS = 365
FRAME_BYTES_MAX_SECONDS = 600
# A non-biometric record is not kept past this whatever is asked (GDPR Art. 5(1)(e): no longer than necessary).
RECORD_MAX_DAYS = 10 * 365


class Jurisdiction:
    """Where the organization's subjects are; decides which caps apply beyond the ones that always do."""

    EU = "eu"
    US = "us"
    US_TX = "us_tx"
    CHOICES = [
        (EU, _("European Union (GDPR)")),
        (US, _("United States (BIPA caps)")),
        (US_TX, _("United States, Texas (CUBI: one year)")),
    ]


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    field: str  # the RetentionPolicy column holding its period
    label: str
    unit: str  # "seconds" or "days"
    biometric: bool
    default: int
    minimum: int = 1

    def seconds(self, value: int) -> int:
        return value if self.unit == "seconds" else value * DAY


CATEGORIES: tuple[Category, ...] = (
    Category("frame_bytes", "frame_bytes_seconds", _("Frame bytes (pixels, before analysis)"), "seconds", True, 120),
    Category("features", "feature_retention_days", _("Per-frame face features"), "days", True, 365),
    Category("aggregates", "aggregate_retention_days", _("Session aggregates"), "days", True, 365),
    Category("face_context", "face_context_retention_days", _("Face context"), "days", True, 30),
    Category("memberships", "membership_retention_days", _("Segment memberships"), "days", True, 365),
    Category("decisions", "decision_retention_days", _("Decision logs"), "days", False, 730),
    Category("events", "event_retention_days", _("Events (impressions, clicks, conversions)"), "days", False, 730),
    Category("exposures", "exposure_retention_days", _("Experiment exposures (per visitor)"), "days", False, 730),
    Category("consent_records", "consent_record_retention_days", _("Consent records (ended grants)"), "days",
             False, 6 * 365, minimum=365),
)
CATEGORY_BY_KEY = {category.key: category for category in CATEGORIES}


@dataclass(frozen=True, slots=True)
class Cap:
    value: int  # in the category's unit
    name: str  # what imposes it, for warnings, the public page and the audit


def category_cap(category: Category, jurisdiction: str) -> Cap:
    """The most a policy may keep rows of `category` under `jurisdiction`."""
    if category.key == "frame_bytes":
        return Cap(FRAME_BYTES_MAX_SECONDS, str(_("Visage's hard maximum for frame bytes (10 minutes)")))
    if category.biometric and jurisdiction == Jurisdiction.US_TX:
        return Cap(TEXAS_CAP_DAYS, str(_("Texas CUBI § 503.001(c)(3): one year")))
    if category.biometric:
        return Cap(BIPA_CAP_DAYS, str(_("BIPA 740 ILCS 14/15(a): three years")))
    return Cap(RECORD_MAX_DAYS, str(_("GDPR Art. 5(1)(e): at most ten years for records")))


def capped(category: Category, value: int, jurisdiction: str) -> tuple[int, Cap | None]:
    """The value a policy is saved with, and the cap that lowered it (None when the value stood)."""
    cap = category_cap(category, jurisdiction)
    value = max(int(value), category.minimum)
    if value > cap.value:
        return cap.value, cap
    return value, None


def effective_period(category: Category, value: int, jurisdiction: str) -> tuple[int, Cap]:
    """The period a retention run applies (in the category's unit) and the cap that bounds it. Capped at run time,
    not only when saved: a stored value may exceed the cap of a jurisdiction chosen later."""
    period, _ = capped(category, value, jurisdiction)
    return period, category_cap(category, jurisdiction)
