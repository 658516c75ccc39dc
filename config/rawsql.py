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
    model: type[M], sql: str, params: Sequence[Any], *, exclude: Sequence[str] = (), using: str = "default"
) -> M | None:
    """The first row of `sql` (which selects `select_columns(model, exclude=exclude)`) as a model instance;
    excluded fields are deferred, as with `.defer()`."""
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
    return model.from_db(using, [f.attname for f in fields], row)
