"""One bounded batch of a big deletion, for the retention run (consent.purging): at most `limit` rows, in the
caller's (short) transaction.

On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED in a subquery of the DELETE or UPDATE itself
(`DELETE ... WHERE id IN (SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED)`, one round trip): two runners never take
the same row, neither waits for the other's rows, and a row's lock lasts only as long as its batch's transaction.
SQLite has no row locks and one writer at a time, which serializes runners by itself."""

from __future__ import annotations

from django.db import connection
from django.db.models import CASCADE, QuerySet
from django.db.models.deletion import Collector


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
    if Collector(using=rows.db, origin=None).can_fast_delete(rows):
        _, per_model = rows.delete()  # one DELETE: nothing points at the table (a feature row)
    else:
        per_model = _cascading_delete(rows)
    return {f"{label.split('.')[-1].lower()}_deleted": count for label, count in per_model.items() if count}


def _orm_delete(rows: QuerySet) -> dict[str, int]:
    _, per_model = rows.only("pk").delete()
    return per_model


def _cascading_delete(rows: QuerySet) -> dict[str, int]:
    """Delete `rows` and what cascades from them: the ids picked (and locked) once, then one DELETE per table.
    The ORM's own cascade deletes a batch 100 rows a statement (a frame's batch of 20,000 took 1.5 s); where a
    cascade goes further than one level, or sets values, that cascade is left to the ORM."""
    model = rows.model
    cascades = []
    for relation in model._meta.get_fields(include_hidden=True):
        if relation.concrete or not relation.auto_created:
            continue  # a field of this model's own, not a relation pointing at it
        if relation.many_to_many or relation.on_delete is not CASCADE:
            return _orm_delete(rows)
        related = relation.related_model._base_manager.all()
        if not Collector(using=rows.db, origin=None).can_fast_delete(related):
            return _orm_delete(rows)
        cascades.append((relation.related_model, relation.field.name))
    ids = list(rows.values_list("pk", flat=True))
    if not ids:
        return {}
    per_model: dict[str, int] = {}
    if connection.vendor == "postgresql":
        # One array parameter per statement: the ORM's IN list of 20,000 placeholders costs more to build than
        # PostgreSQL spends deleting (raw SQL only here; tables and columns are the models' own, quoted).
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for related_model, field in cascades:
                table, column = related_model._meta.db_table, related_model._meta.get_field(field).column
                cursor.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} = ANY(%s)", [ids])  # noqa: S608
                per_model[related_model._meta.label] = cursor.rowcount
            table, column = model._meta.db_table, model._meta.pk.column
            cursor.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} = ANY(%s)", [ids])  # noqa: S608
            per_model[model._meta.label] = cursor.rowcount
        return per_model
    for related_model, field in cascades:
        deleted, _ = related_model._base_manager.filter(**{f"{field}__in": ids}).delete()  # one DELETE each
        per_model[related_model._meta.label] = deleted
    # Nothing points at these rows any more: the ORM's fast path, one DELETE (the foreign keys are still checked
    # by the database at commit).
    per_model[model._meta.label] = model._base_manager.filter(pk__in=ids)._raw_delete(rows.db)
    return per_model
