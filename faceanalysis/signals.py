"""Face signals for decisions: a subject's recent analysed frames, reduced to what rules read, and the reads.

Pure Python and numpy: no Django, no database, so a decision's reads are tested and benchmarked on their own.
The definitions agree with the session aggregates (`faceanalysis.aggregates`): a frame *counts* when its largest
face passed the quality gate (`aggregates.is_counting`), and a smile is a smile from `aggregates.SMILE_THRESHOLD`.

Every read is over the frames analysed at or after `now - window_seconds` (a frame stamped after `now`, a worker
clock slightly ahead, still counts), over the frames that *qualify* for the field (below), and gives None when
fewer than `min_frames` qualify: no fresh features. `min_confidence` is used by the fields that carry a
confidence (expressions and gender) and ignored by the others.

| field | qualifying frames | value |
| --- | --- | --- |
| face.expression.<label> | counting, with probabilities, top confidence >= min_confidence | mean probability |
| face.top_expression | counting, with a top expression whose confidence >= min_confidence | most frequent top label |
| face.smile_share | counting, with a smile value | share with smile >= SMILE_THRESHOLD |
| face.attention_share | counting, with a gaze verdict | share looking at the screen |
| face.age_band | counting, with an age estimate | AGE_BANDS band of the median age |
| face.gender | counting, labelled female/male, gender confidence >= min_confidence | more frequent label |
| face.quality_share | every analysed frame | share that count |

A frame without a value for a field (a session that did not derive that attribute) is no evidence either way,
so it does not qualify; where every counting frame has the value the shares equal the session aggregates'.
Ties (top expression, gender) go to the label of the newest qualifying frame among the tied labels. Shares and
means are rounded to 4 decimals, as the aggregates are.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np

from faceanalysis.aggregates import SMILE_THRESHOLD, FeatureRow, is_counting
from faceanalysis.engine import EXPRESSION_LABELS

# Half-open bands of apparent age in years: [lower edge, next lower edge); 17.9 is under_18, 18.0 is 18_24.
AGE_BANDS = ("under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus")
AGE_BAND_EDGES = (18.0, 25.0, 35.0, 45.0, 55.0, 65.0)  # the lower edge of each band after the first
GENDER_LABELS = ("female", "male")

EXPRESSION_PREFIX = "face.expression."
EXPRESSION_LABEL_FIELDS = frozenset(EXPRESSION_PREFIX + label for label in EXPRESSION_LABELS)
# Emotion recognition in the EU AI Act's sense (Art. 3(39)): inferring emotions from the face. A smile share is
# read as happiness by whoever targets on it, so it is counted with the expressions.
EXPRESSION_FIELDS = EXPRESSION_LABEL_FIELDS | {"face.top_expression", "face.smile_share"}
FACE_FIELDS = EXPRESSION_FIELDS | {"face.attention_share", "face.age_band", "face.gender", "face.quality_share"}
# The fields whose qualifying frames depend on min_confidence; the others share one memo entry per window.
CONFIDENCE_FIELDS = EXPRESSION_LABEL_FIELDS | {"face.top_expression", "face.gender"}

_LABEL_INDEX = {label: i for i, label in enumerate(EXPRESSION_LABELS)}
_GENDER_INDEX = {label: i for i, label in enumerate(GENDER_LABELS)}
_ROW_WIDTH = 10


@dataclass(frozen=True, slots=True)
class FrameSignal:
    """One analysed frame, reduced to what decisions read."""

    at: float  # epoch seconds the frame was analysed
    counting: bool  # largest face passed the quality gate (aggregates.is_counting)
    looking: bool | None
    smile: float | None
    expression: str  # top expression label, "" when none
    expression_confidence: float | None
    expression_probabilities: dict[str, float] | None
    age_years: float | None
    gender: str  # "female" / "male" / ""
    gender_confidence: float | None


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, NaN: stored JSON is not trusted blindly)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _part(face: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = face.get(name)
    return part if isinstance(part, Mapping) else {}


def frame_signal_from_row(
    *,
    analyzed_at: datetime,
    face_count: int | None,
    quality_ok: bool | None,
    looking_at_screen: bool | None,
    smile: float | None,
    expression: str | None,
    expression_confidence: float | None,
    faces: Any,
) -> FrameSignal:
    """The signal of one FrameFeatures row, from its columns (`faces[0]` is the largest face's engine output as
    stored: `expression.probabilities`, `age.years`, `gender.label` / `gender.confidence`, any of them None when
    the session did not derive that attribute)."""
    counting = is_counting(FeatureRow(
        t=0.0, face_count=face_count or 0, quality_ok=bool(quality_ok), looking_at_screen=looking_at_screen,
        attention_score=None, eyes_open=None, smile=smile, expression=expression or "",
    ))
    face = faces[0] if isinstance(faces, list) and faces and isinstance(faces[0], Mapping) else {}
    raw = _part(face, "expression").get("probabilities")
    probabilities = None
    if isinstance(raw, Mapping):
        probabilities = {label: p for label in EXPRESSION_LABELS if (p := _number(raw.get(label))) is not None}
        probabilities = probabilities or None
    gender_part = _part(face, "gender")
    gender = gender_part.get("label")
    return FrameSignal(
        at=analyzed_at.timestamp(),
        counting=counting,
        looking=looking_at_screen if isinstance(looking_at_screen, bool) else None,
        smile=_number(smile),
        expression=expression if expression in _LABEL_INDEX else "",
        expression_confidence=_number(expression_confidence),
        expression_probabilities=probabilities,
        age_years=_number(_part(face, "age").get("years")),
        gender=gender if gender in _GENDER_INDEX else "",
        gender_confidence=_number(gender_part.get("confidence")),
    )


def age_band(years: float) -> str:
    """The AGE_BANDS band of an apparent age in years (half-open bands, see AGE_BAND_EDGES)."""
    return AGE_BANDS[bisect_right(AGE_BAND_EDGES, years)]


def _row(frame: FrameSignal) -> list:
    probabilities = frame.expression_probabilities
    return [
        float(frame.at), bool(frame.counting), frame.looking, frame.smile, frame.expression,
        frame.expression_confidence,
        [float(probabilities.get(label, 0.0)) for label in EXPRESSION_LABELS] if probabilities else None,
        frame.age_years, frame.gender, frame.gender_confidence,
    ]


def _column(values: Sequence[Any]) -> np.ndarray:
    """A float column with NaN for None (a bool becomes 0/1)."""
    return np.array(values, dtype=float)


def _prefix(values: np.ndarray) -> np.ndarray:
    """Prefix sums along the frames with a leading zero row: the sum over frames [i, n) is p[n] - p[i]."""
    summed = np.cumsum(values, axis=0, dtype=np.int64 if values.dtype == bool else None)
    return np.concatenate((np.zeros((1, *summed.shape[1:]), dtype=summed.dtype), summed))


def _round(value: float) -> float:
    return round(float(value), 4)


def _with_tie_to_newest(counts: list[int], labels: np.ndarray, names: Sequence[str]) -> str:
    """The label with the highest count; among tied labels, the one of the newest frame (labels oldest first)."""
    best = max(counts)
    tied = [index for index, count in enumerate(counts) if count == best]
    if len(tied) == 1:
        return names[tied[0]]
    newest = {label: i for i, label in enumerate(labels.tolist())}
    return names[max(tied, key=lambda index: newest.get(index, -1))]


class FaceSignals:
    """A subject's recent frames (newest first or any order), with memoised reads per (field, window, confidence).

    Frames are kept sorted by `at`, so a window is a suffix found by bisection; the columns are built on the
    first read (numpy), and each (field family, window, confidence) is computed once per instance."""

    __slots__ = ("_now", "_rows", "_ats", "_cols", "_prefix", "_by_confidence", "_starts", "_memo")

    def __init__(self, frames: Sequence[FrameSignal], *, now: float) -> None:
        self._setup([_row(frame) for frame in frames], now)

    def _setup(self, rows: list[list], now: float) -> None:
        rows.sort(key=itemgetter(0))  # the rows themselves are never changed, so they are shared, not copied
        self._now = float(now)
        self._rows = rows
        self._ats = [row[0] for row in rows]
        self._cols: dict[str, np.ndarray] | None = None
        self._prefix: dict[str, list[int]] = {}
        self._by_confidence: dict[tuple[str, float], tuple[list[int], Any, np.ndarray]] = {}
        self._starts: dict[int, int] = {}
        self._memo: dict[tuple, tuple[Any, int]] = {}

    @classmethod
    def from_rows(cls, rows: list[list], *, now: float) -> FaceSignals:
        """Signals from `to_rows`' output (the cache's form). Raises ValueError on rows not of that shape."""
        if not isinstance(rows, list) or any(not isinstance(row, list) or len(row) != _ROW_WIDTH for row in rows):
            raise ValueError("face signal rows must be lists of the width to_rows writes")
        signals = cls.__new__(cls)
        try:
            signals._setup(list(rows), now)
            signals._columns()  # the types are checked here, once, rather than on a visitor's first read
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed face signal rows: {exc}") from exc
        return signals

    def to_rows(self) -> list[list]:
        """The frames as JSON-able lists, oldest first: at, counting, looking, smile, expression, expression
        confidence, probabilities (in EXPRESSION_LABELS order, or None), age, gender, gender confidence."""
        return [list(row) for row in self._rows]

    @property
    def now(self) -> float:
        """The moment windows end at (epoch seconds)."""
        return self._now

    def __len__(self) -> int:
        return len(self._rows)

    def _columns(self) -> dict[str, np.ndarray]:
        if self._cols is None:
            n = len(self._rows)
            if n:
                (_, counting, looking, smile, expression, confidence, probabilities, age, gender,
                 gender_confidence) = zip(*self._rows, strict=True)
            else:
                counting = looking = smile = expression = confidence = probabilities = age = gender = ()
                gender_confidence = ()
            missing = [math.nan] * len(EXPRESSION_LABELS)
            cols = {
                "counting": np.array(counting, dtype=bool),
                "looking": _column([math.nan if v is None else v for v in looking]),
                "smile": _column(smile),
                "expression": np.array([_LABEL_INDEX.get(v, -1) for v in expression], dtype=np.int64),
                "confidence": _column(confidence),
                "probabilities": _column([missing if v is None else v for v in probabilities]).reshape(
                    n, len(EXPRESSION_LABELS)),
                "age": _column(age),
                "gender": np.array([_GENDER_INDEX.get(v, -1) for v in gender], dtype=np.int64),
                "gender_confidence": _column(gender_confidence),
            }
            # Windows are suffixes of the time-sorted frames, so a count over a window is a difference of two
            # prefix sums: the confidence-free shares cost O(1) per window once these exist.
            counted = cols["counting"]
            has_smile = counted & ~np.isnan(cols["smile"])
            has_look = counted & ~np.isnan(cols["looking"])
            with np.errstate(invalid="ignore"):
                smiling = has_smile & (cols["smile"] >= SMILE_THRESHOLD)
            looking_now = has_look & (cols["looking"] == 1.0)
            self._prefix = {name: _prefix(mask).tolist() for name, mask in (
                ("counting", counted), ("smile_n", has_smile), ("smiling", smiling), ("look_n", has_look),
                ("looking", looking_now))}
            cols["has_age"] = counted & ~np.isnan(cols["age"])
            cols["has_probabilities"] = ~np.isnan(cols["probabilities"]).any(axis=1)
            cols["has_gender"] = counted & (cols["gender"] >= 0)
            cols["top_one_hot"] = np.eye(len(EXPRESSION_LABELS), dtype=np.int64)[np.maximum(cols["expression"], 0)]
            cols["gender_one_hot"] = np.eye(len(GENDER_LABELS), dtype=np.int64)[np.maximum(cols["gender"], 0)]
            self._cols = cols
        return self._cols

    def _confident(self, family: str, min_confidence: float) -> tuple[list[int], Any, np.ndarray]:
        """For one family (probabilities, top, gender) at one confidence, for every window at once: prefix sums
        of the qualifying frames and of their values, and the qualifying mask."""
        key = (family, min_confidence)
        tables = self._by_confidence.get(key)
        if tables is None:
            cols = self._columns()
            with np.errstate(invalid="ignore"):
                if family == "gender":
                    mask = cols["has_gender"] & (cols["gender_confidence"] >= min_confidence)
                else:
                    mask = cols["counting"] & (cols["confidence"] >= min_confidence)
            if family == "probabilities":
                mask &= cols["has_probabilities"]
                values = _prefix(np.where(mask[:, None], cols["probabilities"], 0.0))
            else:
                one_hot = cols["gender_one_hot"] if family == "gender" else cols["top_one_hot"]
                if family == "top":
                    mask &= cols["expression"] >= 0
                values = _prefix(one_hot * mask[:, None])
            tables = self._by_confidence[key] = (_prefix(mask).tolist(), values, mask)
        return tables

    def _start(self, window_seconds: int) -> int:
        start = self._starts.get(window_seconds)
        if start is None:
            start = self._starts[window_seconds] = bisect_left(self._ats, self._now - window_seconds)
        return start

    def read(self, field: str, *, window_seconds: int, min_confidence: float, min_frames: int) -> Any | None:
        """The value of a face field ("face.smile_share", "face.expression.happy", "face.top_expression",
        "face.attention_share", "face.age_band", "face.gender", "face.quality_share") over frames analysed in the
        last `window_seconds` before `now`; None when fewer than `min_frames` qualifying frames (no fresh
        features). An unknown field reads None."""
        key = (field, window_seconds, min_confidence if field in CONFIDENCE_FIELDS else None)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._compute(field, window_seconds, min_confidence)
        value, qualifying = found
        return value if qualifying and qualifying >= min_frames else None

    def _compute(self, field: str, window_seconds: int, min_confidence: float) -> tuple[Any, int]:
        if field not in FACE_FIELDS:
            return None, 0
        start = self._start(window_seconds)
        n = len(self._rows)
        if start >= n:
            return None, 0
        cols = self._columns()
        prefix = self._prefix

        def total(table: Any) -> Any:
            return table[n] - table[start]

        if field == "face.quality_share":
            return _round(total(prefix["counting"]) / (n - start)), n - start
        if field == "face.smile_share":
            qualifying = int(total(prefix["smile_n"]))
            return (_round(total(prefix["smiling"]) / qualifying) if qualifying else None), qualifying
        if field == "face.attention_share":
            qualifying = int(total(prefix["look_n"]))
            return (_round(total(prefix["looking"]) / qualifying) if qualifying else None), qualifying
        if field == "face.age_band":
            age = np.sort(cols["age"][start:][cols["has_age"][start:]])
            count = len(age)
            if not count:
                return None, 0
            middle = count // 2  # the median, as statistics.median takes it
            median = float(age[middle]) if count % 2 else (float(age[middle - 1]) + float(age[middle])) / 2
            return age_band(median), count
        if field == "face.gender":
            counts, sums, mask = self._confident("gender", min_confidence)
            qualifying = total(counts)
            if not qualifying:
                return None, 0
            labels = cols["gender"][start:][mask[start:]]
            return _with_tie_to_newest(total(sums).tolist(), labels, GENDER_LABELS), qualifying
        if field == "face.top_expression":
            counts, sums, mask = self._confident("top", min_confidence)
            qualifying = total(counts)
            if not qualifying:
                return None, 0
            labels = cols["expression"][start:][mask[start:]]
            return _with_tie_to_newest(total(sums).tolist(), labels, EXPRESSION_LABELS), qualifying
        counts, sums, _ = self._confident("probabilities", min_confidence)
        qualifying = total(counts)
        if not qualifying:
            return None, 0
        # One difference gives every label's mean: the other labels of this window and confidence are memoised.
        means = [round(summed / qualifying, 4) for summed in total(sums).tolist()]
        for index, label in enumerate(EXPRESSION_LABELS):
            self._memo[(EXPRESSION_PREFIX + label, window_seconds, min_confidence)] = (means[index], qualifying)
        return means[_LABEL_INDEX[field[len(EXPRESSION_PREFIX):]]], qualifying
