"""Django's flush, able to empty the consent ledger along with every other table where that is allowed."""

from typing import Any

from django.conf import settings
from django.core.management.commands.flush import Command as FlushCommand

from consent.ledger import ledger_truncation_allowed


class Command(FlushCommand):
    """Empty the database. The ledger's trigger refuses TRUNCATE; this lets it through only inside the flush
    and only where VISAGE_LEDGER_FLUSH_ALLOWED is set (tests, developer machines). Elsewhere the ledger is
    evidence, and the flush fails with nothing emptied."""

    help = FlushCommand.help + " The consent ledger goes too only where VISAGE_LEDGER_FLUSH_ALLOWED is set."

    def handle(self, **options: Any) -> None:
        if not settings.VISAGE_LEDGER_FLUSH_ALLOWED:
            return super().handle(**options)
        with ledger_truncation_allowed(using=options["database"]):
            return super().handle(**options)
