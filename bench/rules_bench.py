"""What evaluating a campaign's rules costs in-process: 50 varied rules against one context with ~500 frames.

python bench/rules_bench.py [--repeat 2000] [--frames 500] [--defaults]

Prints p50 and p95 in milliseconds for all 50 rules, three ways: with the face signals already read once
(memoised, as a second pass over the same context), with fresh face signals each time (the reads are computed,
as in one decision), and including building the signals from their cached rows (`FaceSignals.from_rows`).
The issue's target is p50 under 0.5 ms for the 50 rules. Pure: no database, no Django settings.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.conditions import EvaluationContext, condition_validate, rule_evaluate  # noqa: E402
from campaigns.request_context import request_attributes  # noqa: E402
from faceanalysis.engine import EXPRESSION_LABELS  # noqa: E402
from faceanalysis.signals import FaceSignals, FrameSignal  # noqa: E402

NOW = 1_700_000_000.0


def frames(count: int, rng: random.Random) -> list[FrameSignal]:
    """`count` frames over the last half hour, most of them counting, with every attribute."""
    result = []
    for _ in range(count):
        probabilities = [rng.random() for _ in EXPRESSION_LABELS]
        total = sum(probabilities)
        probabilities = {label: p / total for label, p in zip(EXPRESSION_LABELS, probabilities, strict=True)}
        top = max(probabilities, key=probabilities.__getitem__)
        result.append(FrameSignal(
            at=NOW - rng.uniform(0, 1800), counting=rng.random() < 0.9, looking=rng.random() < 0.7,
            smile=rng.random(), expression=top, expression_confidence=probabilities[top] + 0.3,
            expression_probabilities=probabilities, age_years=rng.uniform(20, 50),
            gender=rng.choice(("female", "male")), gender_confidence=rng.uniform(0.4, 1.0),
        ))
    return result


def rules(rng: random.Random, *, defaults: bool = False) -> list[dict]:
    """50 validated trees mixing face, consent and request leaves, windows and confidences (with `defaults`,
    every face leaf keeps the default window and confidence, as most saved rules will)."""
    windows, confidences = ((900,), (0.5,)) if defaults else ((300, 900, 3600), (0.5, 0.7))

    def face_leaf() -> dict:
        leaf = rng.choice([
            {"field": f"face.expression.{rng.choice(EXPRESSION_LABELS)}", "op": "gte", "value": 0.2},
            {"field": "face.top_expression", "op": "in", "value": ["happy", "surprise"]},
            {"field": "face.smile_share", "op": "gte", "value": 0.4},
            {"field": "face.attention_share", "op": "between", "value": [0.3, 0.9]},
            {"field": "face.age_band", "op": "eq", "value": "25_34"},
            {"field": "face.gender", "op": "eq", "value": "female"},
            {"field": "face.quality_share", "op": "gt", "value": 0.5},
        ])
        return {**leaf, "window_seconds": rng.choice(windows), "min_confidence": rng.choice(confidences)}

    def other_leaf() -> dict:
        return rng.choice([
            {"field": "request.device", "op": "eq", "value": "mobile"},
            {"field": "request.language", "op": "in", "value": ["de", "fr", "en"]},
            {"field": "request.utm_source", "op": "contains", "value": "news"},
            {"field": "request.local_hour", "op": "between", "value": [8, 18]},
            {"field": "consent.personalization", "op": "eq", "value": "active"},
            {"field": "request.returning", "op": "eq", "value": True},
        ])

    trees = []
    for i in range(50):
        leaves = [face_leaf() if rng.random() < 0.6 else other_leaf() for _ in range(rng.randint(1, 4))]
        tree = {"all": leaves} if i % 3 else {"any": [{"not": leaves[0]}, {"all": leaves}]}
        trees.append(condition_validate(tree))
    return trees


def measure(label: str, run, repeat: int, prepare=None) -> None:
    times = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()  # outside the timer
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    p95 = times[int(len(times) * 0.95)]
    print(f"{label:<48} p50 {statistics.median(times):.3f} ms   p95 {p95:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--defaults", action="store_true", help="face leaves with the default window, confidence")
    args = parser.parse_args()
    rng = random.Random(13)
    trees = rules(rng, defaults=args.defaults)
    signals = FaceSignals(frames(args.frames, rng), now=NOW)
    rows = signals.to_rows()
    request = request_attributes(user_agent="Mozilla/5.0 (iPhone; Mobile)", accept_language="de-DE,de;q=0.9",
                                 url="https://shop.example/?utm_source=newsletter", timezone="Europe/Berlin",
                                 now=datetime.fromtimestamp(NOW, UTC), returning=True)

    def context(face: FaceSignals) -> EvaluationContext:
        return EvaluationContext(request=request, consent={"personalization": "active", "face_analysis": "active"},
                                 face=face, face_unavailable=None)

    warm = context(signals)

    def memoised() -> None:
        for tree in trees:
            rule_evaluate(tree, warm)

    fresh_context: list[EvaluationContext] = []

    def prepare() -> None:
        fresh_context[:] = [context(FaceSignals.from_rows(rows, now=NOW))]

    def fresh() -> None:
        ctx = fresh_context[0]
        for tree in trees:
            rule_evaluate(tree, ctx)

    def from_rows() -> None:
        ctx = context(FaceSignals.from_rows(rows, now=NOW))
        for tree in trees:
            rule_evaluate(tree, ctx)

    outcomes = [rule_evaluate(tree, warm).status for tree in trees]
    print(f"{args.frames} frames, 50 rules: " + ", ".join(f"{s} {outcomes.count(s)}" for s in sorted(set(outcomes))))
    measure("50 rules, face reads memoised", memoised, args.repeat)
    measure("50 rules, fresh face signals", fresh, args.repeat, prepare)
    measure("50 rules, signals built from cached rows", from_rows, args.repeat)


if __name__ == "__main__":
    main()
