"""Reads of face analysis, each scoped to an organization (none: no rows)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from accounts.tokens import token_hash
from config.rawsql import fetch_one, select_columns
from consent.models import RetentionPolicy, Subject
from consent.selectors import frame_bytes_ttl_for, frame_bytes_ttl_seconds
from faceanalysis import aggregates, dispatch
from faceanalysis.face_cache import face_signals_cache_put, face_signals_cached
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from faceanalysis.signals import FaceSignals, FrameSignal

# The attribute a session read with its capture token carries: its organization's policy frame_bytes_seconds
# (None without a policy).
POLICY_FRAME_BYTES = "policy_frame_bytes_seconds"
_UNREAD = object()


def frame_ttl_seconds(*, session: CaptureSession) -> int:
    """How long this session's frames wait in the frame store (consent.selectors.frame_bytes_ttl_seconds), read
    once per intake request: with the session on the capture-token path, else one query."""
    seconds = getattr(session, POLICY_FRAME_BYTES, _UNREAD)
    if seconds is _UNREAD:
        return frame_bytes_ttl_for(organization_id=session.organization_id)
    return frame_bytes_ttl_seconds(seconds)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def capture_session_list(*, organization: Organization | None) -> QuerySet[CaptureSession]:
    """The organization's capture sessions, newest first."""
    return CaptureSession.objects.for_organization(organization).select_related("subject", "campaign")


def capture_session_get(*, organization: Organization | None, public_id: Any) -> CaptureSession | None:
    """One session by public id; None when missing or another organization's."""
    key = _uuid(public_id)
    if key is None:
        return None
    return capture_session_list(organization=organization).filter(public_id=key).first()


@functools.cache
def _session_by_token_sql() -> str:
    columns = select_columns(CaptureSession, alias="s", exclude=["aggregates"])
    table = CaptureSession._meta.db_table
    # With it, in the same round trip, the organization's frame_bytes_seconds (intake's frame TTL): no query more.
    policies = RetentionPolicy._meta.db_table
    policy = f"(SELECT p.frame_bytes_seconds FROM {policies} p WHERE p.organization_id = s.organization_id)"  # noqa: S608
    return f"SELECT {columns}, {policy} FROM {table} s WHERE s.token_hash = %s LIMIT 1"  # noqa: S608 - model names


def capture_session_for_token(*, token: str) -> CaptureSession | None:
    """The session a capture token opens, while the token is valid; None for unknown or expired tokens."""
    if not token or len(token) > 200:
        return None
    # On every intake request: one indexed lookup, without the aggregates snapshot, in SQL written once (the
    # ORM's query building cost more than the query). The organization loads only where a view reads it.
    session = fetch_one(CaptureSession, _session_by_token_sql(), [token_hash(token)], exclude=["aggregates"],
                        annotations=[POLICY_FRAME_BYTES])
    if session is None or session.token_expires_at is None or session.token_expires_at <= timezone.now():
        return None
    return session


def frame_list(*, organization: Organization | None, session: CaptureSession | None = None) -> QuerySet[Frame]:
    """Frames of the organization (of one session when given), oldest first, with their features."""
    frames = Frame.objects.for_organization(organization).select_related("features", "session")
    return frames.filter(session=session) if session is not None else frames


def frame_status_counts(*, session: CaptureSession) -> dict[str, int]:
    """How many of the session's frames are in each status."""
    counts = {status: 0 for status in Frame.Status.values}
    for row in Frame.objects.filter(session=session).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def _timeline_rows(rows: Iterable[tuple], session: CaptureSession) -> list[aggregates.FeatureRow]:
    """FeatureRows from value tuples that start with (media_time_ms, captured_at, received_at)."""
    result = []
    for media_time_ms, captured_at, received_at, *rest in rows:
        if media_time_ms is not None:
            t = media_time_ms / 1000.0
        else:
            t = max(0.0, ((captured_at or received_at) - session.started_at).total_seconds())
        result.append(aggregates.FeatureRow(t, *rest))
    return result


_ROW_COLUMNS = ("media_time_ms", "captured_at", "received_at", "face_count", "quality_ok", "looking_at_screen",
                "attention_score", "eyes_open", "smile", "expression")


def session_feature_rows(session: CaptureSession) -> list[aggregates.FeatureRow]:
    """The session's derived features in the shape the aggregate functions take."""
    return _timeline_rows(FrameFeatures.objects.filter(session=session).values_list(*_ROW_COLUMNS), session)


def session_summary(session: CaptureSession) -> dict[str, object]:
    """The session's aggregates, counted by the database (the worker runs this after every frame, so it must
    not load every row); same definitions as `aggregates.summarize`, which a test holds it to."""
    features = FrameFeatures.objects.filter(session=session)
    counting = Q(face_count__gt=0, quality_ok=True)  # aggregates.is_counting
    totals = features.aggregate(
        analysed=Count("pk"),
        counted=Count("pk", filter=counting),
        looking=Count("pk", filter=counting & Q(looking_at_screen=True)),
        smiling=Count("pk", filter=counting & Q(smile__gte=aggregates.SMILE_THRESHOLD)),
        score=Avg("attention_score", filter=counting),
    )
    expressions = dict(
        features.filter(counting).exclude(expression="").values_list("expression").annotate(n=Count("pk"))
    )
    # Blinks need the eye state in time order: two columns of the counting frames with a known eye state.
    eye_rows = _timeline_rows(
        (
            (m, c, r, 1, True, None, None, eyes_open, None, "")
            for m, c, r, eyes_open in features.filter(counting, eyes_open__isnull=False).values_list(
                "media_time_ms", "captured_at", "received_at", "eyes_open"
            )
        ),
        session,
    )
    eye_rows.sort(key=lambda row: row.t)
    return aggregates.compose(
        aggregates.Totals(
            analysed=totals["analysed"], counted=totals["counted"], looking=totals["looking"],
            smiling=totals["smiling"], mean_attention_score=totals["score"], expressions=expressions,
        ),
        eye_rows,
        session.derived_attribute_set,
    )


def capture_session_report(*, session: CaptureSession) -> dict[str, Any]:
    """One session as the admin shows it: its aggregates counted now (as the worker counts them), its frames
    by status, and the latency from intake to features (None without analysed frames)."""
    latencies = sorted(FrameFeatures.objects.filter(session=session).values_list("latency_ms", flat=True))
    return {
        "aggregates": session_summary(session),
        "frame_counts": frame_status_counts(session=session),
        "latency_ms": {
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
            "max": round(latencies[-1], 1) if latencies else None,
            "samples": len(latencies),
        },
    }


def session_timeline(*, session: CaptureSession, bucket_seconds: float) -> list[dict[str, object]]:
    """The session's reactions per media-time bucket."""
    return aggregates.timeline(
        session_feature_rows(session), bucket_seconds=bucket_seconds, attributes=session.derived_attribute_set
    )


# The longest window a face leaf may ask for (campaigns.conditions.MAX_WINDOW_SECONDS; a test holds them equal) and
# the most frames a decision reads: the newest, so one busy subject costs a bounded read.
FACE_SIGNALS_WINDOW = timedelta(seconds=604800)
FACE_SIGNALS_MAX_FRAMES = 1000

# Only what FrameSignal needs: the headline columns and four values of the largest face's engine output.
_SIGNAL_COLUMNS = (
    "analyzed_at", "face_count", "quality_ok", "looking_at_screen", "smile", "expression", "expression_confidence",
    "faces__0__expression__probabilities", "faces__0__age__years", "faces__0__gender__label",
    "faces__0__gender__confidence",
)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _frame_signal(row: tuple) -> FrameSignal:
    """One FrameFeatures value row as the signal decisions read; engine values of an unexpected type are absent."""
    analyzed_at, face_count, quality_ok, looking, smile, expression, confidence, probabilities, age, gender, g_c = row
    if isinstance(probabilities, dict):
        probabilities = {str(k): float(v) for k, v in probabilities.items() if _float(v) is not None}
    else:
        probabilities = None
    return FrameSignal(
        at=analyzed_at.timestamp(),
        counting=bool(face_count and quality_ok),  # aggregates.is_counting
        looking=looking,
        smile=smile,
        expression=expression or "",
        expression_confidence=confidence,
        expression_probabilities=probabilities,
        age_years=_float(age),
        gender=gender if gender in ("female", "male") else "",
        gender_confidence=_float(g_c),
    )


def face_signals_for_decision(
    *, organization: Organization | None, subject: Subject, now: datetime
) -> FaceSignals | None:
    """The subject's frames of the last FACE_SIGNALS_WINDOW (the newest FACE_SIGNALS_MAX_FRAMES), across its capture
    sessions in every campaign of the organization, cached (faceanalysis.face_cache) under a key the session
    recount and the withdrawal purge delete. None for no organization or a subject of another one. Consent is NOT
    checked here: the caller asks the guard every decision, before calling this."""
    if organization is None or subject.organization_id != organization.pk:
        return None
    at = now.timestamp()
    rows = face_signals_cached(organization_id=organization.pk, subject_id=subject.pk)
    if rows is not None:
        return FaceSignals.from_rows(rows, now=at)
    values = (
        FrameFeatures.objects.filter(
            organization_id=organization.pk, subject_id=subject.pk, analyzed_at__gte=now - FACE_SIGNALS_WINDOW
        )
        .order_by("-analyzed_at")
        .values_list(*_SIGNAL_COLUMNS)[:FACE_SIGNALS_MAX_FRAMES]
    )
    signals = FaceSignals([_frame_signal(row) for row in values], now=at)
    face_signals_cache_put(organization_id=organization.pk, subject_id=subject.pk, rows=signals.to_rows())
    return signals


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def pipeline_stats(
    *, organization: Organization | None, window_seconds: int = 300, include_broker: bool = False
) -> dict[str, Any]:
    """Operator view of the organization's pipeline: frames waiting, throughput, latency, outcomes by reason
    in the window, dropped-for-consent and expired counts, and the latest failures."""
    now = timezone.now()
    since = now - timedelta(seconds=window_seconds)
    frames = Frame.objects.for_organization(organization)
    recent = frames.filter(received_at__gte=since)
    by_outcome: dict[str, dict[str, int]] = {status: {} for status in Frame.Status.values}
    for row in recent.values("status", "reason").annotate(n=Count("id")):
        by_outcome[row["status"]][row["reason"] or row["status"]] = row["n"]
    features = FrameFeatures.objects.for_organization(organization)
    last_minute = features.filter(analyzed_at__gte=now - timedelta(seconds=60)).count()
    latencies = sorted(
        features.filter(analyzed_at__gte=since).order_by("-analyzed_at").values_list("latency_ms", flat=True)[:5000]
    )
    problems = frames.exclude(status__in=[Frame.Status.QUEUED, Frame.Status.ANALYZED]).order_by("-received_at")[:20]
    stats: dict[str, Any] = {
        "window_seconds": window_seconds,
        "queued_now": frames.filter(status=Frame.Status.QUEUED).count(),
        "received_in_window": sum(sum(reasons.values()) for reasons in by_outcome.values()),
        "analyzed_per_second_last_minute": round(last_minute / 60.0, 2),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95),
                       "p99": _percentile(latencies, 0.99), "samples": len(latencies)},
        "outcomes": by_outcome,
        "failures_by_reason": by_outcome[Frame.Status.FAILED],
        "dropped_for_consent": sum(by_outcome[Frame.Status.DROPPED].values()),
        "expired": sum(by_outcome[Frame.Status.EXPIRED].values()),
        "recent_problems": [
            {"frame": str(f.public_id), "session": str(f.session.public_id), "status": f.status, "reason": f.reason,
             "received_at": f.received_at.isoformat()}
            for f in problems.select_related("session")
        ],
    }
    if include_broker:
        stats["broker_queue_depths"] = dispatch.broker_queue_depths()
    return stats
