"""The ledger is append-only (model layer and database) and tamper-evident (hash chain per organization)."""

import uuid
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from accounts.models import Organization
from consent.ledger import (
    GENESIS_HASH,
    canonical_json,
    entry_hash,
    ledger_append,
    ledger_subject_cut,
    ledger_truncation_allowed,
    ledger_verify,
)
from consent.models import LedgerAppendOnlyError, LedgerEntry
from tests.factories import make_organization

pytestmark = pytest.mark.django_db


def _chain(organization, n: int = 3) -> list[LedgerEntry]:
    return [
        ledger_append(organization=organization, event="shown", purposes="face_analysis", context_ref=f"campaign:c{i}")
        for i in range(n)
    ]


@contextmanager
def _triggers_bypassed():
    """Write to the ledger table behind the triggers' back, as an attacker with database access could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            try:
                yield cursor
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute("DROP TRIGGER consent_ledger_no_update")
            cursor.execute("DROP TRIGGER consent_ledger_no_delete")
            try:
                yield cursor
            finally:
                from importlib import import_module

                migration = import_module("consent.migrations.0002_ledger_append_only_triggers")
                for statement in migration.SQLITE_FORWARD:
                    cursor.execute(statement)


def test_chain_links_each_entry_to_the_previous_one(org_a) -> None:
    first, second, third = _chain(org_a)
    assert first.sequence == 1 and first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert third.hash == entry_hash(third.canonical_content(), second.hash)
    assert ledger_verify(organization=org_a).ok


def test_chains_are_per_organization(org_a, org_b) -> None:
    _chain(org_a, 2)
    (b_first,) = _chain(org_b, 1)
    assert b_first.sequence == 1 and b_first.prev_hash == GENESIS_HASH


def test_hash_survives_a_round_trip_through_the_database(org_a) -> None:
    entry = ledger_append(organization=org_a, event="granted", evidence={"ip_prefix": "2001:db8::/48", "ü": "ß"})
    reloaded = LedgerEntry.objects.get(pk=entry.pk)
    assert canonical_json(reloaded.canonical_content()) == canonical_json(entry.canonical_content())


def test_model_layer_refuses_update_and_delete(org_a) -> None:
    entry = _chain(org_a, 1)[0]
    entry.event = "granted"
    with pytest.raises(LedgerAppendOnlyError):
        entry.save()
    with pytest.raises(LedgerAppendOnlyError):
        entry.delete()
    with pytest.raises(LedgerAppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(event="granted")
    with pytest.raises(LedgerAppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()


def test_database_refuses_update_and_delete_behind_the_models_back(org_a) -> None:
    entry = _chain(org_a, 1)[0]
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET event = 'granted' WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM consent_ledgerentry WHERE id = %s", [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).event == "shown"


def test_verify_points_at_a_row_whose_content_changed(org_a) -> None:
    entries = _chain(org_a, 4)
    with _triggers_bypassed() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET context_ref = 'campaign:forged' WHERE id = %s", [entries[2].pk])
    result = ledger_verify(organization=org_a)
    assert not result.ok
    assert result.first_broken_sequence == 3 and result.first_broken_id == entries[2].pk
    assert "content" in result.reason


def test_verify_detects_a_rehashed_row_by_the_next_link(org_a) -> None:
    entries = _chain(org_a, 3)
    forged = LedgerEntry.objects.get(pk=entries[1].pk)
    forged.context_ref = "campaign:forged"
    new_hash = entry_hash(forged.canonical_content(), forged.prev_hash)
    with _triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE consent_ledgerentry SET context_ref = %s, hash = %s WHERE id = %s",
            ["campaign:forged", new_hash, entries[1].pk],
        )
    result = ledger_verify(organization=org_a)
    assert not result.ok and result.first_broken_sequence == 3
    assert "prev_hash" in result.reason


def test_verify_detects_a_deleted_row_in_the_middle(org_a) -> None:
    entries = _chain(org_a, 3)
    with _triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM consent_ledgerentry WHERE id = %s", [entries[1].pk])
    result = ledger_verify(organization=org_a)
    assert not result.ok and result.first_broken_sequence == 3


def test_verify_detects_deleted_rows_at_the_end(org_a) -> None:
    entries = _chain(org_a, 3)
    with _triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM consent_ledgerentry WHERE id = %s", [entries[2].pk])
    result = ledger_verify(organization=org_a)
    assert not result.ok and result.first_broken_sequence == 3
    assert "missing" in result.reason


def test_verify_command_passes_an_intact_chain_and_fails_a_tampered_one(org_a, org_b, capsys) -> None:
    _chain(org_a, 2)
    entries_b = _chain(org_b, 2)
    call_command("consent_verify_ledger", "--organization", org_a.slug)
    assert "chain intact" in capsys.readouterr().out
    with _triggers_bypassed() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET event = 'granted' WHERE id = %s", [entries_b[0].pk])
    with pytest.raises(CommandError):
        call_command("consent_verify_ledger")
    out = capsys.readouterr().out
    assert f"{org_a.slug}: " in out and "BROKEN at sequence 1" in out and f"row id {entries_b[0].pk}" in out


def _no_pending_foreign_key_checks(cursor) -> None:
    """Inside the test's transaction PostgreSQL refuses TRUNCATE while deferred foreign-key checks are pending
    (for a reason of its own); run them now, so the refusal seen is the ledger's."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _empty_the_ledger_table(cursor) -> None:
    """TRUNCATE on PostgreSQL; on SQLite (no TRUNCATE) an unqualified DELETE, its truncate."""
    if connection.vendor == "postgresql":
        _no_pending_foreign_key_checks(cursor)
        cursor.execute("TRUNCATE consent_ledgerentry")
    else:
        cursor.execute("DELETE FROM consent_ledgerentry")


def test_database_refuses_truncate_and_the_entries_survive(org_a, org_b) -> None:
    _chain(org_a, 3)
    _chain(org_b, 2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        _empty_the_ledger_table(cursor)
    assert LedgerEntry.objects.count() == 5
    assert ledger_verify(organization=org_a).ok and ledger_verify(organization=org_b).ok


def test_truncate_cascading_from_the_organizations_is_refused(org_a) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE ... CASCADE is PostgreSQL's; SQLite's deletes go through the row triggers")
    _chain(org_a, 2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        _no_pending_foreign_key_checks(cursor)
        cursor.execute("TRUNCATE accounts_organization CASCADE")
    assert LedgerEntry.objects.filter(organization=org_a).count() == 2
    assert ledger_verify(organization=org_a).ok


def test_truncation_allowance_ends_with_its_block(org_a) -> None:
    _chain(org_a, 2)
    with ledger_truncation_allowed(), connection.cursor() as cursor:
        _empty_the_ledger_table(cursor)
        assert not LedgerEntry.objects.exists()
    # Still inside the test's transaction: the allowance did not outlive the block.
    ledger_append(organization=org_a, event="shown")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        _empty_the_ledger_table(cursor)
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_ledger_with_every_other_table_and_the_refusal_stays() -> None:
    organization = make_organization()
    _chain(organization, 3)
    call_command("flush", interactive=False, verbosity=0)
    assert not LedgerEntry.objects.exists() and not Organization.objects.exists()
    organization = make_organization()
    _chain(organization, 1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        _empty_the_ledger_table(cursor)
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_flush_where_the_ledger_may_not_go_fails_and_empties_nothing() -> None:
    organization = make_organization()
    _chain(organization, 3)
    with override_settings(VISAGE_LEDGER_FLUSH_ALLOWED=False), pytest.raises(CommandError):
        call_command("flush", interactive=False, verbosity=0)
    assert LedgerEntry.objects.count() == 3 and Organization.objects.filter(pk=organization.pk).exists()
    assert ledger_verify(organization=organization).ok


def test_an_erasure_may_cut_a_subject_but_not_swap_it(org_a) -> None:
    # The hash covers the subject's digest, so cutting the public id keeps the chain whole; the triggers allow
    # that one change, and the walk still tells a public id put in place of another.
    entries = [
        ledger_append(organization=org_a, event="granted", subject_ref=str(uuid.uuid4()), purposes="face_analysis")
        for _ in range(3)
    ]
    assert ledger_subject_cut(organization=org_a, subject_ref=entries[0].subject_ref) == 1
    assert LedgerEntry.objects.get(pk=entries[0].pk).subject_ref == ""
    assert ledger_verify(organization=org_a).ok
    someone_else = str(uuid.uuid4())
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET subject_ref = %s WHERE id = %s", [someone_else, entries[1].pk])
    with _triggers_bypassed() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET subject_ref = %s WHERE id = %s", [someone_else, entries[1].pk])
    result = ledger_verify(organization=org_a)
    assert not result.ok and result.first_broken_sequence == 2 and "subject" in result.reason
