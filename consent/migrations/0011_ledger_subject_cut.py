"""The ledger's triggers allow one change and no other: an erasure cutting an entry's subject public id (to '')
where the entry's hash covers its digest instead (consent.ledger.subject_digest). Everything else is refused as
before. On SQLite the previous migration rebuilt the table (a new column), which dropped its triggers; they are
created again here."""

from django.db import migrations

TABLE = "consent_ledgerentry"
COLUMNS = [
    "id", "organization_id", "sequence", "event", "occurred_at", "subject_digest", "purposes", "notice_hash",
    "language", "channel", "context_ref", "evidence", "payload", "prev_hash", "hash",
]

POSTGRES_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION consent_ledger_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.subject_ref = '' AND OLD.subject_ref <> '' AND OLD.subject_digest <> ''
           AND (to_jsonb(NEW) - 'subject_ref') = (to_jsonb(OLD) - 'subject_ref') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'consent ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$;
    """,
]
POSTGRES_BACKWARD = [
    """
    CREATE OR REPLACE FUNCTION consent_ledger_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'consent ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$;
    """,
]

_UNCHANGED = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in COLUMNS)
SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS consent_ledger_no_update;",
    f"""
    CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON {TABLE}
    WHEN NOT (NEW.subject_ref = '' AND OLD.subject_ref <> '' AND OLD.subject_digest <> '' AND {_UNCHANGED})
    BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: UPDATE refused'); END;
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS consent_ledger_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: DELETE refused'); END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consent_ledger_no_update;",
    f"""
    CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: UPDATE refused'); END;
    """,
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("consent", "0010_data_rights_retention_receipts_feed"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
