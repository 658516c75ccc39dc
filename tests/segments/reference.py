"""A plain-Python evaluation of a validated segment definition, written from the documented semantics
(segments.conditions' table, segments.compiler's docstring), not from the compiler: it reads an organization's rows
once and answers, per subject, whether the tree holds at `now`. The property test holds the SQL compiler to it.

Shared with the compiler on purpose, as the documented definitions: `conditions.holds` (what an operator means),
`consent.guards.grant_states` (what a grant shows), `compiler.median_of` (percentile_cont's median) and the
age bands and smile threshold of faceanalysis."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from campaigns.models import Event
from consent.guards import grant_states
from consent.models import Subject
from faceanalysis.aggregates import SMILE_THRESHOLD
from faceanalysis.models import CaptureSession, FrameFeatures
from faceanalysis.signals import AGE_BAND_EDGES, AGE_BANDS
from segments.compiler import median_of
from segments.conditions import EVENT_KINDS, EXPRESSION_SHARE_PREFIX, FACE_PURPOSES, FIELDS, holds


@dataclass
class SubjectRows:
    """What the reference knows of one subject."""

    pk: int
    created_at: datetime
    erased: bool
    partner_linked: bool
    consent: dict[str, str]
    frames: list[dict] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def load(organization_id: int, *, now: datetime) -> dict[int, SubjectRows]:
    """Every subject of the organization with its frames (and their session's campaign), sessions and events."""
    subjects = {
        row["pk"]: SubjectRows(
            pk=row["pk"], created_at=row["created_at"], erased=row["erased_at"] is not None,
            partner_linked=row["partner_ref_hash"] != "",
            consent={purpose: str(state) for purpose, state in grant_states(
                organization_id=organization_id, subject_id=row["pk"], at=now).items()},
        )
        for row in Subject.objects.filter(organization_id=organization_id).values(
            "pk", "created_at", "erased_at", "partner_ref_hash")
    }
    for row in FrameFeatures.objects.filter(organization_id=organization_id).values(
        "subject_id", "analyzed_at", "face_count", "quality_ok", "looking_at_screen", "smile", "expression",
        "expression_confidence", "age_years", "gender", "gender_confidence", "session__campaign_id",
    ):
        if row["subject_id"] in subjects:
            subjects[row["subject_id"]].frames.append(row)
    for row in CaptureSession.objects.filter(organization_id=organization_id).values(
        "subject_id", "started_at", "campaign_id"
    ):
        if row["subject_id"] in subjects:
            subjects[row["subject_id"]].sessions.append(row)
    for row in Event.objects.filter(organization_id=organization_id).values(
        "subject_id", "kind", "name", "value", "campaign_id", "received_at"
    ):
        if row["subject_id"] in subjects:
            subjects[row["subject_id"]].events.append(row)
    return subjects


def _in_window(at: datetime, now: datetime, seconds: int) -> bool:
    return now - timedelta(seconds=seconds) <= at <= now


def _band(years: float) -> str:
    return AGE_BANDS[bisect_right(AGE_BAND_EDGES, years)]


class Reference:
    """`holds(tree, subject)` for the subjects `load` read; `segments` maps a segment key to its members' pks."""

    def __init__(self, subjects: Mapping[int, SubjectRows], *, now: datetime,
                 segments: Mapping[str, set[int]] | None = None) -> None:
        self.subjects = subjects
        self.now = now
        self.segments = segments or {}

    def members(self, tree: Mapping) -> set[int]:
        return {pk for pk, subject in self.subjects.items() if self.holds(tree, subject)}

    def holds(self, tree: Mapping, subject: SubjectRows) -> bool:
        if subject.erased:
            return False
        if _face_based(tree) and not all(subject.consent.get(p) == "active" for p in FACE_PURPOSES):
            return False
        return self.node(tree, subject)

    def node(self, node: Mapping, subject: SubjectRows) -> bool:
        if "all" in node:
            return all(self.node(child, subject) for child in node["all"])
        if "any" in node:
            return any(self.node(child, subject) for child in node["any"])
        if "not" in node:
            return not self.node(node["not"], subject)
        return self.leaf(node, subject)

    def leaf(self, leaf: Mapping, subject: SubjectRows) -> bool:
        name, op, value = leaf["field"], leaf["op"], leaf["value"]
        if name == "segment":
            inside = any(subject.pk in self.segments.get(key, set()) for key in value)
            return inside if op == "in" else not inside
        if name.startswith("consent."):
            return holds(op, subject.consent.get(name.removeprefix("consent."), "none"), value)
        if name == "subject.days_since_first_seen":
            return holds(op, (self.now - subject.created_at) // timedelta(days=1), value)
        if name == "subject.partner_linked":
            return holds(op, subject.partner_linked, value)
        if name in EVENT_KINDS:
            return self.behaviour(leaf, subject)
        if name == "face.sessions":
            count = sum(
                1 for s in subject.sessions
                if _in_window(s["started_at"], self.now, leaf["window_seconds"])
                and (not leaf.get("campaign") or s["campaign_id"] == leaf["campaign"])
            )
            return holds(op, count, value)
        return self.face(leaf, subject)

    def behaviour(self, leaf: Mapping, subject: SubjectRows) -> bool:
        kind = EVENT_KINDS[leaf["field"]]
        events = [
            e for e in subject.events
            if e["kind"] == kind and _in_window(e["received_at"], self.now, leaf["window_seconds"])
            and (not leaf.get("campaign") or e["campaign_id"] == leaf["campaign"])
            and (not leaf.get("name") or e["name"] == leaf["name"])
        ]
        if leaf["field"] == "behaviour.conversion_value":
            measure: Any = float(sum((Decimal(e["value"]) for e in events if e["value"] is not None), Decimal(0)))
        else:
            measure = len(events)
        return holds(leaf["op"], measure, leaf["value"])

    def face(self, leaf: Mapping, subject: SubjectRows) -> bool:
        name, op, value = leaf["field"], leaf["op"], leaf["value"]
        frames = [
            f for f in subject.frames
            if f["face_count"] >= 1 and f["quality_ok"]
            and _in_window(f["analyzed_at"], self.now, leaf["window_seconds"])
            and (not leaf.get("campaign") or f["session__campaign_id"] == leaf["campaign"])
        ]
        min_frames = leaf["min_frames"]
        if name == "face.age_band":
            ages = [f["age_years"] for f in frames if f["age_years"] is not None]
            if len(ages) < min_frames:
                return False
            return holds(op, _band(median_of(ages)), value)
        if name == "face.gender":
            label = _gender(frames, min_frames, leaf["min_confidence"])
            return label is not None and holds(op, label, value)
        share: Callable[[dict], bool]
        if name == "face.attention_share":
            frames = [f for f in frames if f["looking_at_screen"] is not None]
            share = lambda f: f["looking_at_screen"] is True  # noqa: E731
        elif name == "face.smile_share":
            frames = [f for f in frames if f["smile"] is not None]
            share = lambda f: f["smile"] >= SMILE_THRESHOLD  # noqa: E731
        else:
            label, confidence = name.removeprefix(EXPRESSION_SHARE_PREFIX), leaf["min_confidence"]
            frames = [f for f in frames if f["expression"] != ""]
            share = lambda f: (f["expression"] == label and f["expression_confidence"] is not None  # noqa: E731
                               and f["expression_confidence"] >= confidence)
        if len(frames) < min_frames:
            return False
        return holds(op, sum(1 for f in frames if share(f)) / len(frames), value)


def _gender(frames: list[dict], min_frames: int, min_confidence: float) -> str | None:
    """The more frequent confident label; a tie goes to the newest frame's label, a tie in time too: none."""
    confident = [f for f in frames if f["gender"] in ("female", "male") and f["gender_confidence"] is not None
                 and f["gender_confidence"] >= min_confidence]
    if len(confident) < min_frames:
        return None
    counts: dict[str, int] = defaultdict(int)
    newest: dict[str, datetime] = {}
    for f in confident:
        counts[f["gender"]] += 1
        newest[f["gender"]] = max(newest.get(f["gender"], f["analyzed_at"]), f["analyzed_at"])
    if counts["female"] != counts["male"]:
        return "female" if counts["female"] > counts["male"] else "male"
    if newest["female"] == newest["male"]:
        return None
    return "female" if newest["female"] > newest["male"] else "male"


def _face_based(tree: Mapping) -> bool:
    if "all" in tree or "any" in tree:
        return any(_face_based(child) for child in tree.get("all", tree.get("any", [])))
    if "not" in tree:
        return _face_based(tree["not"])
    return FIELDS[tree["field"]].face
