"""Campaigns: what a marketer runs, and which consent purposes it needs."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from consent import derived
from consent.models import Purpose, purposes_key


def new_public_id() -> str:
    """A short, unguessable id for public URLs (72 random bits)."""
    return secrets.token_urlsafe(9)


class Campaign(TenantModel):
    """A marketing campaign; its public consent page offers the purposes it declares (those the camera needs and
    optional extras) and it derives from faces only the attributes it chose."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    name = models.CharField(max_length=200)
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    required_purposes = models.CharField(
        max_length=200,
        help_text=_("Consent purposes the camera needs, every one of them, comma-separated (see consent.Purpose)."),
    )
    optional_purposes = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text=_("Consent purposes offered as extras: the camera works without them, comma-separated."),
    )
    derived_attributes = models.CharField(
        max_length=200,
        default=derived.ALL_CANONICAL,
        help_text=_("What is derived from faces (see consent.derived); the notice must name exactly these."),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        required = [p for p in self.required_purposes.split(",") if p]
        optional = [p for p in self.optional_purposes.split(",") if p]
        errors: dict[str, str] = {}
        if not required or set(required) - set(Purpose.values):
            errors["required_purposes"] = _("Choose at least one known purpose the camera needs.")
        elif Purpose.FACE_ANALYSIS not in required:  # the camera always needs it (capture_purposes)
            errors["required_purposes"] = _("The camera always needs face analysis: tick it among these.")
        if set(optional) - set(Purpose.values):
            errors["optional_purposes"] = _("Choose known purposes only.")
        elif set(optional) & set(required):
            errors["optional_purposes"] = _("A purpose is either needed for the camera or optional, not both.")
        try:
            self.derived_attributes = derived.canonical(self.derived_attributes.split(","))
        except ValueError as error:
            errors["derived_attributes"] = str(error)
        if errors:
            raise ValidationError(errors)
        self.required_purposes = purposes_key(required)
        self.optional_purposes = purposes_key(optional)

    @property
    def required_purpose_list(self) -> list[str]:
        """Purposes the camera needs, every one."""
        return [p for p in self.required_purposes.split(",") if p]

    @property
    def optional_purpose_list(self) -> list[str]:
        """Purposes offered as extras."""
        return [p for p in self.optional_purposes.split(",") if p and p not in self.required_purpose_list]

    @property
    def purpose_list(self) -> list[str]:
        """Every purpose the consent page offers (and its notice covers), required and optional, canonical."""
        return sorted({*self.required_purpose_list, *self.optional_purpose_list})

    @property
    def capture_purposes(self) -> list[str]:
        """What must all be live for the camera: face analysis and every required purpose."""
        return sorted({Purpose.FACE_ANALYSIS.value, *self.required_purpose_list})

    @property
    def derived_attribute_set(self) -> frozenset[str]:
        """The attribute keys the campaign derives (consent.derived), core ones included."""
        return derived.parse(self.derived_attributes)

    @property
    def context_ref(self) -> str:
        """How consent ledger entries refer to this campaign without the consent app knowing campaigns."""
        return f"campaign:{self.public_id}"
