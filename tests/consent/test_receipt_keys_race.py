"""Racing first uses and rotations of an organization's receipt signing key leave exactly one current key."""


import pytest
from django.db import connection

from consent import receipts
from consent.models import SigningKey
from tests.factories import make_organization
from tests.races import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Concurrent transactions need PostgreSQL: run with DATABASE_URL=postgres://...")


def test_racing_first_uses_make_one_key() -> None:
    organization = make_organization()
    results = race(*[lambda: receipts.signing_key_current(organization).pk] * 6)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    assert SigningKey.objects.filter(organization=organization).count() == 1


def test_racing_rotations_leave_one_current_key_and_every_other_retired() -> None:
    organization = make_organization()
    first = receipts.signing_key_current(organization)
    results = race(*[lambda: receipts.signing_key_rotate(organization).pk] * 4)
    assert all(isinstance(r, int) for r in results), results
    keys = SigningKey.objects.filter(organization=organization)
    assert keys.count() == 5 and keys.filter(retired_at__isnull=True).count() == 1
    assert keys.get(pk=first.pk).retired_at is not None
