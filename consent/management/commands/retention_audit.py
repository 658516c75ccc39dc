"""Audit retention per organization and category; exit 1 on any violation, 2 for an unknown organization."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from consent.retention_audit import retention_audit


class Command(BaseCommand):
    help = ("Per organization and retention category: the oldest row, the policy, the cap that applies, the "
            "effective period and any violation (a row kept past its period plus one run interval, or past its "
            "legal cap). Exits 1 on a violation.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="Slug of one organization; all when omitted.")

    def handle(self, *args, **options) -> None:
        organizations = Organization.objects.order_by("pk")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No organization with slug {options['organization']!r}.", returncode=2)
        rows = retention_audit(organizations=list(organizations))
        for row in rows:
            line = row.describe()
            self.stdout.write(self.style.ERROR(line) if row.violation else line)
        violations = sum(1 for row in rows if row.violation)
        if violations:
            raise CommandError(f"{violations} retention violation(s).", returncode=1)
        self.stdout.write(self.style.SUCCESS("No retention violation."))
