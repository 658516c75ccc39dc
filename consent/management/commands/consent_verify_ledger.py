"""Verify every organization's consent ledger chain (or one's); exit 1 and name the first broken link."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from consent.ledger import ledger_verify


class Command(BaseCommand):
    help = "Walk the hash-chained consent ledger per organization and report the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="Slug of one organization; all when omitted.")

    def handle(self, *args, **options) -> None:
        organizations = Organization.objects.order_by("pk")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No organization with slug {options['organization']!r}.")
        broken = 0
        for organization in organizations:
            result = ledger_verify(organization=organization)
            line = f"{organization.slug}: {result.describe()}"
            if result.ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                broken += 1
                self.stdout.write(self.style.ERROR(line))
        if broken:
            raise CommandError(f"{broken} ledger chain(s) broken.", returncode=1)
