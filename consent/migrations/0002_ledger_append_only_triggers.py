"""The database refuses UPDATE and DELETE of consent ledger rows, whatever code runs against it.

PostgreSQL: a trigger function raises; SQLite: RAISE(ABORT). TRUNCATE is left alone on purpose: only a
database owner can run it, and test runners empty tables with it.
"""

from django.db import migrations

TABLE = "consent_ledgerentry"

POSTGRES_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION consent_ledger_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'consent ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$;
    """,
    f"""
    CREATE TRIGGER consent_ledger_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_refuse_change();
    """,
]
POSTGRES_BACKWARD = [
    f"DROP TRIGGER IF EXISTS consent_ledger_append_only ON {TABLE};",
    "DROP FUNCTION IF EXISTS consent_ledger_refuse_change();",
]

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER IF NOT EXISTS consent_ledger_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: UPDATE refused'); END;
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS consent_ledger_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: DELETE refused'); END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consent_ledger_no_update;",
    "DROP TRIGGER IF EXISTS consent_ledger_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("consent", "0001_notices_subjects_grants_ledger"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
