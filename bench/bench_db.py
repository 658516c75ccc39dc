"""A PostgreSQL bench's own database: created (anew with `fresh`), then migrated. Call it after the bench has set
DATABASE_URL to `{pg}/{name}` and before it imports models."""

from __future__ import annotations


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
