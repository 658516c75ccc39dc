"""Fixtures for campaign page tests, including the headless browser."""

import pytest
from django.db import connection


@pytest.fixture
def ledger_flushable(transactional_db):
    """Transactional tests end by emptying every table. PostgreSQL does it with TRUNCATE, which the ledger's
    row triggers let through; SQLite deletes rows, which they refuse. On SQLite, clear the ledger with the
    triggers briefly lifted (in one transaction), so the flush that follows finds it empty."""
    yield
    if connection.vendor != "sqlite":
        return
    from importlib import import_module

    migration = import_module("consent.migrations.0002_ledger_append_only_triggers")
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        for statement in migration.SQLITE_BACKWARD:
            cursor.execute(statement)
        cursor.execute("DELETE FROM consent_ledgerentry")
        for statement in migration.SQLITE_FORWARD:
            cursor.execute(statement)
        cursor.execute("COMMIT")
