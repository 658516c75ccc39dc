"""Pure computations over derived features: session aggregates and the media-time timeline.

Definitions (a frame "counts" when its largest face passed the engine's quality gate):
- quality_rejection_share: analysed frames without a counting face / analysed frames.
- attention_share: counting frames looking at the screen / counting frames.
- smile_share: counting frames whose smile (mean mouthSmile blendshape) is at least SMILE_THRESHOLD.
- expression_distribution: share of each top expression among counting frames that have one.
- blink_rate_per_minute: open -> closed -> open with the closure at most MAX_BLINK_S (the engine's
  BlinkTracker rule) over counting frames in time order, per minute observed; None under MIN_OBSERVED_S.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from faceanalysis.engine import EXPRESSION_LABELS

# The derived attribute (consent.derived) each aggregate rests on: a session that did not choose it has none.
AGGREGATE_ATTRIBUTES = {
    "attention_share": "gaze",
    "mean_attention_score": "gaze",
    "smile_share": "expression",
    "expression_distribution": "expression",
    "blinks": "eyes",
    "blink_rate_per_minute": "eyes",
}

SMILE_THRESHOLD = 0.5
MAX_BLINK_S = 0.5
MIN_OBSERVED_S = 10.0


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """The columns of one FrameFeatures row that aggregates need; `t` is seconds on the session's timeline."""

    t: float
    face_count: int
    quality_ok: bool
    looking_at_screen: bool | None
    attention_score: float | None
    eyes_open: bool | None
    smile: float | None
    expression: str


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def count_blinks(rows: list[FeatureRow]) -> int:
    """Blinks in time-ordered rows: open, then closed, then open again within MAX_BLINK_S."""
    blinks, was_open, closed_since = 0, None, None
    for row in rows:
        if row.eyes_open is None:
            continue
        if not row.eyes_open and was_open:
            closed_since = row.t
        elif row.eyes_open and was_open is False and closed_since is not None:
            if row.t - closed_since <= MAX_BLINK_S:
                blinks += 1
            closed_since = None
        was_open = row.eyes_open
    return blinks


@dataclass(frozen=True, slots=True)
class Totals:
    """Counts over a set of analysed frames, from Python rows (`summarize`) or from SQL (the worker)."""

    analysed: int
    counted: int
    looking: int
    smiling: int
    mean_attention_score: float | None
    expressions: dict[str, int]


def is_counting(row: FeatureRow) -> bool:
    """The frame's largest face passed the quality gate (the SQL twin is in selectors.session_summary)."""
    return bool(row.face_count and row.quality_ok)


def only_chosen(summary: dict[str, object], attributes: frozenset[str] | None) -> dict[str, object]:
    """The aggregates without those resting on attributes outside `attributes` (None: keep all)."""
    if attributes is None:
        return summary
    return {k: v for k, v in summary.items() if k not in AGGREGATE_ATTRIBUTES or AGGREGATE_ATTRIBUTES[k] in attributes}


def compose(
    totals: Totals, counting_in_time_order: list[FeatureRow], attributes: frozenset[str] | None = None
) -> dict[str, object]:
    """The aggregates from the totals and the counting frames in time order (for blinks), for a session that
    derives `attributes` (None: all)."""
    with_expression = sum(totals.expressions.values())
    observed = (
        counting_in_time_order[-1].t - counting_in_time_order[0].t if len(counting_in_time_order) > 1 else 0.0
    )
    blinks = count_blinks(counting_in_time_order)
    score = totals.mean_attention_score
    return only_chosen({
        "frames_analyzed": totals.analysed,
        "frames_counted": totals.counted,
        "attention_share": _share(totals.looking, totals.counted),
        "mean_attention_score": round(score, 4) if score is not None else None,
        "smile_share": _share(totals.smiling, totals.counted),
        "expression_distribution": {
            label: _share(totals.expressions.get(label, 0), with_expression) or 0.0 for label in EXPRESSION_LABELS
        } if with_expression else {},
        "blinks": blinks,
        "seconds_observed": round(observed, 3),
        "blink_rate_per_minute": round(blinks * 60.0 / observed, 2) if observed >= MIN_OBSERVED_S else None,
        "quality_rejection_share": _share(totals.analysed - totals.counted, totals.analysed),
    }, attributes)


def summarize(rows: Iterable[FeatureRow], attributes: frozenset[str] | None = None) -> dict[str, object]:
    """The aggregates of a set of analysed frames (see the module docstring), of the attributes chosen."""
    ordered = sorted(rows, key=lambda r: r.t)
    counting = [r for r in ordered if is_counting(r)]
    scores = [r.attention_score for r in counting if r.attention_score is not None]
    totals = Totals(
        analysed=len(ordered),
        counted=len(counting),
        looking=sum(1 for r in counting if r.looking_at_screen),
        smiling=sum(1 for r in counting if (r.smile or 0.0) >= SMILE_THRESHOLD),
        mean_attention_score=sum(scores) / len(scores) if scores else None,
        expressions=dict(Counter(r.expression for r in counting if r.expression)),
    )
    return compose(totals, counting, attributes)


def timeline(
    rows: Iterable[FeatureRow], *, bucket_seconds: float, attributes: frozenset[str] | None = None
) -> list[dict[str, object]]:
    """Aggregates per time bucket [k*b, (k+1)*b), for laying reactions on a video's or page's timeline, of the
    attributes chosen."""
    buckets: dict[int, list[FeatureRow]] = {}
    for row in rows:
        buckets.setdefault(int(row.t // bucket_seconds), []).append(row)
    result = []
    for index in sorted(buckets):
        summary = summarize(buckets[index])
        result.append(only_chosen(
            {
                "start_s": round(index * bucket_seconds, 3),
                "end_s": round((index + 1) * bucket_seconds, 3),
                "frames_analyzed": summary["frames_analyzed"],
                "frames_counted": summary["frames_counted"],
                "attention_share": summary["attention_share"],
                "mean_attention_score": summary["mean_attention_score"],
                "smile_share": summary["smile_share"],
                "expression_distribution": summary["expression_distribution"],
            },
            attributes,
        ))
    return result
