"""One model instance from SQL written once, for the queries every intake request makes (the capture token,
the consent guard's yes). There the ORM's query building, and RawQuerySet's mapping of columns to fields on
each query, cost more CPU than PostgreSQL spends answering."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connections, models
from django.db.models.sql import Query

M = TypeVar("M", bound=models.Model)


def select_columns(model: type[models.Model], *, alias: str = "", exclude: Sequence[str] = ()) -> str:
    """The column list `fetch_one` expects for `model` (concrete fields in order, `exclude`d names left out)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{f.column}" for f in _fields(model, tuple(exclude)))


@functools.cache
def _fields(model: type[models.Model], exclude: tuple[str, ...]) -> tuple[models.Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if f.name not in exclude)


@functools.cache
def _converters(model: type[models.Model], exclude: tuple[str, ...], using: str) -> tuple[Any, dict]:
    """Django's own value converters for these columns on this database (UUIDs and datetimes on SQLite ...)."""
    compiler = Query(model).get_compiler(using=using)
    table = model._meta.db_table
    return compiler, compiler.get_converters([f.get_col(table) for f in _fields(model, exclude)])


def fetch_one(
    model: type[M], sql: str, params: Sequence[Any], *, exclude: Sequence[str] = (), using: str = "default",
    annotations: Sequence[str] = (),
) -> M | None:
    """The first row of `sql` (which selects `select_columns(model, exclude=exclude)`, then one column per name in
    `annotations`) as a model instance; excluded fields are deferred, as with `.defer()`, and the trailing
    columns are set as attributes of those names, as with `.annotate()`."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    fields = _fields(model, tuple(exclude))
    compiler, converters = _converters(model, tuple(exclude), using)
    if converters:
        row = next(compiler.apply_converters([row], converters))
    extra = len(annotations)
    instance = model.from_db(using, [f.attname for f in fields], row[: len(row) - extra])
    for name, value in zip(annotations, row[len(row) - extra :], strict=True):
        setattr(instance, name, value)
    return instance


@functools.cache
def _insert_sql(model: type[models.Model], using: str) -> tuple[str, tuple[models.Field, ...], bool]:
    connection = connections[using]
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key and not f.generated)
    quote = connection.ops.quote_name
    returning = connection.features.can_return_columns_from_insert
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(fields))})"
        + (f" RETURNING {quote(model._meta.pk.column)}" if returning else "")
    )
    return sql, fields, returning


def insert_one(instance: models.Model, *, using: str = "default") -> None:
    """INSERT a new instance (auto primary key) with SQL built once per model, and set its key. Like
    `bulk_create`, no save signals are sent; values go through the fields' own preparation."""
    connection = connections[using]
    sql, fields, returning = _insert_sql(type(instance), using)
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding = False
    instance._state.db = using
