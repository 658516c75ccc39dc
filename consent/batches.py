"""One bounded batch of a big deletion, for the retention run (consent.purging): at most `limit` rows, in the
caller's (short) transaction.

On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED in a subquery of the DELETE or UPDATE itself
(`DELETE ... WHERE id IN (SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED)`, one round trip): two runners never take
the same row, neither waits for the other's rows, and a row's lock lasts only as long as its batch's transaction.
SQLite has no row locks and one writer at a time, which serializes runners by itself."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet


def rows_batch_purge(queryset: QuerySet, *, limit: int, cut: dict[str, object] | None = None) -> dict[str, int]:
    """Delete at most `limit` rows of `queryset` (or, with `cut`, update them with those values, so they stay
    without what identified them). Returns counts per table, "<model>_deleted" or "<model>_cut"; a delete counts
    what its foreign keys cascaded to as well. The queryset must exclude rows already cut, or a cut never ends."""
    model = queryset.model
    picked = queryset.order_by().values("pk")[:limit]
    if connection.features.has_select_for_update_skip_locked:
        picked = picked.select_for_update(skip_locked=True, of=("self",))
    rows = model._base_manager.filter(pk__in=picked)
    if cut is not None:
        cut_count = rows.update(**cut)
        return {f"{model._meta.model_name}_cut": cut_count} if cut_count else {}
    # The ORM's delete: one DELETE when nothing points at the table (a feature row), else it cascades as the
    # foreign keys say (a decision's events go with it).
    _, per_model = rows.only("pk").delete()
    return {f"{label.split('.')[-1].lower()}_deleted": count for label, count in per_model.items() if count}
