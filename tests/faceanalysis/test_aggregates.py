"""Session aggregates and the timeline are pure functions of the derived features."""

from faceanalysis.aggregates import FeatureRow, count_blinks, summarize, timeline


def row(t: float, *, face: bool = True, ok: bool = True, looking: bool = True, eyes_open: bool = True,
        smile: float = 0.0, expression: str = "neutral", score: float = 0.9) -> FeatureRow:
    return FeatureRow(t=t, face_count=int(face), quality_ok=ok, looking_at_screen=looking, attention_score=score,
                      eyes_open=eyes_open, smile=smile, expression=expression)


def test_shares_count_only_frames_whose_face_passed_the_quality_gate() -> None:
    rows = [
        row(0, smile=0.9, expression="happy"),
        row(1, looking=False, expression="neutral"),
        row(2, ok=False),
        row(3, face=False, ok=False),
    ]
    summary = summarize(rows)
    assert summary["frames_analyzed"] == 4 and summary["frames_counted"] == 2
    assert summary["quality_rejection_share"] == 0.5
    assert summary["attention_share"] == 0.5
    assert summary["smile_share"] == 0.5
    assert summary["expression_distribution"]["happy"] == 0.5
    assert summary["expression_distribution"]["neutral"] == 0.5


def test_blinks_are_short_closures_and_long_ones_are_not() -> None:
    rows = [row(0.0), row(0.2, eyes_open=False), row(0.4), row(1.0, eyes_open=False), row(2.0), row(2.2)]
    assert count_blinks(rows) == 1


def test_blink_rate_needs_ten_seconds_observed() -> None:
    short = [row(t / 5, eyes_open=(t % 5 != 2)) for t in range(20)]  # 4 s
    assert summarize(short)["blink_rate_per_minute"] is None
    long = [row(t / 5, eyes_open=(t % 5 != 2)) for t in range(101)]  # 20 s, a blink a second
    assert summarize(long)["blink_rate_per_minute"] == 60.0


def test_empty_session_has_no_shares() -> None:
    summary = summarize([])
    assert summary["frames_analyzed"] == 0 and summary["attention_share"] is None
    assert summary["expression_distribution"] == {}


def test_timeline_buckets_by_media_time() -> None:
    rows = [row(0.1), row(0.9, looking=False), row(2.5, smile=0.8)]
    buckets = timeline(rows, bucket_seconds=1.0)
    assert [(b["start_s"], b["frames_analyzed"]) for b in buckets] == [(0.0, 2), (2.0, 1)]
    assert buckets[0]["attention_share"] == 0.5 and buckets[1]["smile_share"] == 1.0
