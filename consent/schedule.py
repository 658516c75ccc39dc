"""The retention schedule in words: every category with its period in human units, what it covers, whether it is
biometric, and the cap that applies under the policy's jurisdiction. Pure (no queries): the public retention
page, the partner API and the notice text read the same rows. Strings translate in the active language."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext, gettext_lazy, ngettext

from consent import retention

COVERS = {
    "frame_bytes": gettext_lazy(
        "The images a camera sends, while they wait in memory for their analysis; never written to disk."),
    "features": gettext_lazy(
        "What is derived from each image: where the face is, head pose, gaze, expression and the other attributes "
        "the notice names."),
    "aggregates": gettext_lazy("Statistics over the images of one capture session (such as the share of smiles)."),
    "face_context": gettext_lazy("The summary of a person's recent face features used to choose content."),
    "memberships": gettext_lazy("A person's membership in an audience segment, after it ended."),
    "decisions": gettext_lazy("Which content a visitor was shown, and why."),
    "events": gettext_lazy("Impressions, clicks and conversions on that content."),
    "exposures": gettext_lazy("Which experiment variant a visitor saw; the variants' totals stay."),
    "consent_records": gettext_lazy("Consent grants that ended (withdrawn or expired), kept as proof."),
}


def human_period(value: int, unit: str) -> str:
    """A period as people say it: "120 seconds (2 minutes)", "1095 days (3 years)", "30 days"."""
    if unit == "seconds":
        text = ngettext("%(n)s second", "%(n)s seconds", value) % {"n": value}
        if value >= 60 and value % 60 == 0:
            minutes = value // 60
            text += f" ({ngettext('%(n)s minute', '%(n)s minutes', minutes) % {'n': minutes}})"
        return text
    text = ngettext("%(n)s day", "%(n)s days", value) % {"n": value}
    if value >= 365 and value % 365 == 0:
        years = value // 365
        text += f" ({ngettext('%(n)s year', '%(n)s years', years) % {'n': years}})"
    return text


@dataclass(frozen=True)
class ScheduleRow:
    """One category as the schedule states it."""

    key: str
    field: str
    label: str
    covers: str
    period: int
    unit: str
    period_text: str
    biometric: bool
    cap: int
    cap_text: str
    cap_name: str


def schedule_rows(snapshot: dict[str, int | str]) -> list[ScheduleRow]:
    """The rows of a policy's `snapshot()`; a category missing from it (an older snapshot) has no row."""
    jurisdiction = str(snapshot.get("jurisdiction") or retention.Jurisdiction.EU)
    rows = []
    for category in retention.CATEGORIES:
        if category.field not in snapshot:
            continue
        period = int(snapshot[category.field])
        cap = retention.category_cap(category, jurisdiction)
        rows.append(ScheduleRow(
            key=category.key, field=category.field, label=str(category.label), covers=str(COVERS[category.key]),
            period=period, unit=category.unit, period_text=gettext("at most %(period)s") % {
                "period": human_period(period, category.unit)},
            biometric=category.biometric, cap=cap.value, cap_text=human_period(cap.value, category.unit),
            cap_name=cap.name,
        ))
    return rows


def jurisdiction_label(code: str) -> str:
    """The jurisdiction's name, translated."""
    return str(dict(retention.Jurisdiction.CHOICES).get(code, code))
