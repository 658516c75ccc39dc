"""Campaigns: what a marketer runs, and which consent purposes it needs."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from consent.models import Purpose, purposes_key


def new_public_id() -> str:
    """A short, unguessable id for public URLs (72 random bits)."""
    return secrets.token_urlsafe(9)


class Campaign(TenantModel):
    """A marketing campaign; its public consent page asks for the purposes it declares."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    name = models.CharField(max_length=200)
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    required_purposes = models.CharField(
        max_length=200, help_text=_("Consent purposes the campaign needs, comma-separated (see consent.Purpose).")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        keys = [p for p in self.required_purposes.split(",") if p]
        if not keys or set(keys) - set(Purpose.values):
            raise ValidationError({"required_purposes": _("Choose at least one known purpose.")})
        self.required_purposes = purposes_key(keys)

    @property
    def purpose_list(self) -> list[str]:
        return [p for p in self.required_purposes.split(",") if p]

    @property
    def context_ref(self) -> str:
        """How consent ledger entries refer to this campaign without the consent app knowing campaigns."""
        return f"campaign:{self.public_id}"
