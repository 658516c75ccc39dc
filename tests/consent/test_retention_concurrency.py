"""Two runners of one retention part at once (a redelivered task beside the first, beat twice): on PostgreSQL's row
locks each row is deleted once, the counts add up, and one receipt is written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consent import purging
from consent.models import LedgerEntry, PurgePart, RetentionPolicy
from faceanalysis.models import Frame, FrameFeatures
from tests.races import race
from tests.segments.factories import World

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROWS = 240


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run with DATABASE_URL=postgres://... (see scripts/test).")


def test_two_runners_of_one_part_delete_each_row_once_and_write_one_receipt(settings, monkeypatch, org_a) -> None:
    settings.VISAGE_RETENTION_BATCH = 7
    now = timezone.now()
    RetentionPolicy.objects.create(organization=org_a, feature_retention_days=10)
    world = World(org_a)
    session = world.session(world.subject())
    for index in range(ROWS):
        world.frame(session, at=now - timedelta(days=11, minutes=index))
    world.frame(session, at=now - timedelta(days=1))
    monkeypatch.setattr(purging, "purge_parts_dispatch", lambda part_ids: None)  # the runners below do it
    (request,) = purging.retention_run(now=now)
    (part,) = request.parts.all()

    # Two runners at once, and a third on each side of every batch they commit: beat's redispatch racing them.
    results = race(*(lambda: purging.purge_part_run(part_id=part.pk) for _ in range(3)))

    assert not any(isinstance(result, Exception) for result in results), results
    assert "done" in results and set(results) <= {"done", "busy", "already_done"}
    while purging.purge_part_run(part_id=part.pk) not in ("done", "already_done"):  # a runner left it to another
        pass
    part.refresh_from_db()
    assert part.status == PurgePart.Status.DONE
    assert part.counts == {"framefeatures_deleted": ROWS, "frame_deleted": ROWS}
    assert FrameFeatures.objects.filter(organization=org_a).count() == 1
    assert Frame.objects.filter(organization=org_a).count() == 1
    receipts = LedgerEntry.objects.filter(organization=org_a, event=LedgerEntry.Event.PURGED)
    assert receipts.count() == 1
    assert receipts.get().payload["framefeatures_deleted"] == ROWS
