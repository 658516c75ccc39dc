"""Every table that holds a subject's data is claimed by a registered purger (consent.purging), so that a model
added later cannot be forgotten by withdrawals, erasures and retention runs."""

from django.apps import apps
from django.db import models

from consent.models import Subject
from consent.purging import purgers


def _subject_data_models() -> set[str]:
    """Models with a foreign key to Subject, or to a model that has one, transitively."""
    found: set[type[models.Model]] = {Subject}
    while True:
        more = {
            model
            for model in apps.get_models()
            if model not in found
            and any(
                field.is_relation and field.many_to_one and field.related_model in found
                for field in model._meta.get_fields()
                if getattr(field, "concrete", False)
            )
        }
        if not more:
            return {model._meta.label for model in found}
        found |= more


def test_every_model_that_points_at_a_subject_is_claimed_by_a_purger() -> None:
    claimed = {label for purger in purgers() for label in purger.models}
    unclaimed = sorted(_subject_data_models() - claimed)
    assert not unclaimed, f"no purger claims {unclaimed}: register one in the app's AppConfig.ready()"


def test_purgers_claim_real_models_only_once() -> None:
    labels = [label for purger in purgers() for label in purger.models]
    assert len(labels) == len(set(labels)), labels
    for label in labels:
        apps.get_model(label)  # LookupError for a model that does not exist


def test_the_walk_finds_what_points_at_a_subject_indirectly() -> None:
    # FrameFeatures points at a subject directly and through Frame and CaptureSession; the test must see both.
    found = _subject_data_models()
    assert {"consent.Grant", "faceanalysis.Frame", "faceanalysis.FrameFeatures", "segments.SegmentMembership"} <= found
    assert "accounts.Organization" not in found and "consent.NoticeVersion" not in found
