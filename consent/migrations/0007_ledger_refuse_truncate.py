"""The database refuses TRUNCATE of the consent ledger too (its row triggers never see a TRUNCATE).

PostgreSQL: a statement-level BEFORE TRUNCATE trigger raises, also when a TRUNCATE ... CASCADE of another table
reaches the ledger. The one way through is a transaction that has set `visage.ledger_truncate` to `on` with
`set_config(..., true)`: `consent.ledger.ledger_truncation_allowed`, which `manage.py flush` (empty every table,
as transactional tests do after each test) uses where VISAGE_LEDGER_FLUSH_ALLOWED is set.

SQLite has no TRUNCATE: `DELETE FROM` without a WHERE is its truncate, and the row trigger of 0002 refuses it
(SQLite does not take its truncate shortcut on a table with triggers). Nothing to add there.
"""

from django.db import migrations

TABLE = "consent_ledgerentry"

POSTGRES_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION consent_ledger_refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('visage.ledger_truncate', true) = 'on' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'consent ledger is append-only: TRUNCATE refused'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'manage.py flush empties it with every other table where VISAGE_LEDGER_FLUSH_ALLOWED is set.';
    END;
    $$;
    """,
    f"""
    CREATE TRIGGER consent_ledger_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_refuse_truncate();
    """,
]
POSTGRES_BACKWARD = [
    f"DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON {TABLE};",
    "DROP FUNCTION IF EXISTS consent_ledger_refuse_truncate();",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("consent", "0006_one_published_notice_per_attribute_choice"),
    ]

    operations = [
        migrations.RunPython(_run({"postgresql": POSTGRES_FORWARD}), _run({"postgresql": POSTGRES_BACKWARD})),
    ]
