"""A PostgreSQL bench's own database: its environment (`bench_environment`, before Django is set up), the database
created (anew with `fresh`) and migrated (`ensure_database`, before the bench imports models), and a bulk load's
index dance (`drop_secondary_indexes`)."""

from __future__ import annotations

import os


def bench_environment(pg: str, name: str, *, redis_db: int = 13) -> None:
    """The settings a bench runs Django with: local settings without debug, its own database, tasks in-process."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"{pg}/{name}",
        "REDIS_URL": os.environ.get("VISAGE_BENCH_REDIS", f"redis://127.0.0.1:6379/{redis_db}"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_LOG_LEVEL": "WARNING",
    })


def drop_secondary_indexes(cursor, tables: tuple[str, ...] | list[str]) -> list[str]:
    """Drop the tables' indexes and unique constraints but the primary keys; returns the statements that rebuild
    them (a bulk load writes millions of rows faster into bare tables, and building an index once is cheaper)."""
    cursor.execute("""
        SELECT format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', t.relname, c.conname, pg_get_constraintdef(c.oid)),
               format('ALTER TABLE %%I DROP CONSTRAINT %%I', t.relname, c.conname)
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE t.relname = ANY(%s) AND c.contype = 'u'""", [list(tables)])
    constraints = cursor.fetchall()
    for _, drop in constraints:
        cursor.execute(drop)
    cursor.execute("""
        SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %%I', x.relname)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
        WHERE t.relname = ANY(%s) AND NOT i.indisprimary""", [list(tables)])
    indexes = cursor.fetchall()
    for _, drop in indexes:
        cursor.execute(drop)
    return [create for create, _ in indexes] + [add for add, _ in constraints]


def ensure_database(pg: str, name: str, *, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
