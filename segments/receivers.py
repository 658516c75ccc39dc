"""What segments do when something happens elsewhere: SQLite learns the median aggregate the compiler uses, and
a subject whose features arrived is brought up to date in the dynamic segments (through the dispatch)."""

from __future__ import annotations

from typing import Any

from segments.compiler import median_of


class _Median:
    """SQLite's VISAGE_MEDIAN(x): `segments.compiler.median_of` over the group's non-null values."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: Any) -> None:
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return median_of(self.values)


def sqlite_median(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("VISAGE_MEDIAN", 1, _Median)


def features_arrived(sender: Any, organization_id: int, subject_id: int, **kwargs: Any) -> None:
    from segments.dispatch import send_subject_refresh

    send_subject_refresh(organization_id=organization_id, subject_id=subject_id)


def connect() -> None:
    from faceanalysis.news import subject_features_changed

    subject_features_changed.connect(features_arrived, dispatch_uid="segments.features_arrived")
