"""Seed a demo organization with a marketer login and a fresh partner key, printed to the terminal."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Organization
from accounts.services import api_key_create, membership_set, organization_create

DEMO_SLUG = "demo"
DEMO_USERNAME = "marketer"
DEMO_PASSWORD = "visage-demo"  # noqa: S105  (local demo on 127.0.0.1 only)


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization, its marketer login and a new partner API key."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
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

        demo_seeded.send(sender=self.__class__, organization=organization, user=user)
        _, raw_key = api_key_create(organization=organization, name="Demo partner key")

        self.stdout.write(self.style.SUCCESS("Demo organization ready: Demo Shop"))
        admin_url = f"http://127.0.0.1:8000/{settings.ADMIN_URL}"
        self.stdout.write(f"  Admin login:  {admin_url}  user {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"  Partner key:  {raw_key}")
        self.stdout.write(
            f'  Try:          curl -H "Authorization: Bearer {raw_key}" http://127.0.0.1:8000/api/v1/'
        )
