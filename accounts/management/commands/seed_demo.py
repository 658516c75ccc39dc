"""Seed a demo organization with a marketer login and a fresh partner key, printed to the terminal."""

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.demo import DEFAULT_DEMO_ADDR, demo_base_url, demo_host
from accounts.models import Membership, Organization
from accounts.services import api_key_create, membership_set, organization_create

DEMO_SLUG = "demo"
DEMO_USERNAME = "marketer"
DEMO_PASSWORD = "visage-demo"  # noqa: S105  (local demo on 127.0.0.1 only)


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization, its marketer login and a new partner API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--addr",
            default=os.environ.get("VISAGE_DEMO_ADDR") or DEFAULT_DEMO_ADDR,
            help="Where the demo serves (port or host:port, as runserver takes it); the printed URLs use it.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            base_url = demo_base_url(options["addr"])
        except ValueError as error:
            raise CommandError(f"VISAGE_DEMO_ADDR: {error}") from None
        organization = Organization.objects.filter(slug=DEMO_SLUG).first() or organization_create(
            name="Demo Shop", slug=DEMO_SLUG
        )
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "marketer@demo.test"})
        user.set_password(DEMO_PASSWORD)
        user.save()
        membership_set(user=user, organization=organization, role=Membership.Role.MARKETER)
        # Other apps extend the demo through this hook (campaigns, notices) without this app knowing them.
        from accounts.signals import demo_seeded

        demo_seeded.send(sender=self.__class__, organization=organization, user=user, base_url=base_url)
        # The demo's own key may export its audiences too (segments' members, export and match need `export`).
        _, raw_key = api_key_create(organization=organization, name="Demo partner key",
                                    scopes=("read", "write", "export"))

        self.stdout.write(self.style.SUCCESS("Demo organization ready: Demo Shop"))
        admin_url = f"{base_url}{settings.ADMIN_URL}"
        self.stdout.write(f"  Admin login:  {admin_url}  user {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"  Partner key:  {raw_key}")
        self.stdout.write(
            f'  Try:          curl -H "Authorization: Bearer {raw_key}" {base_url}api/v1/'
        )
        host = demo_host(options["addr"])
        if host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            self.stdout.write(
                self.style.WARNING(f"  Requests for {host} are refused until DJANGO_ALLOWED_HOSTS lists it.")
            )
