import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def _new_subject_secret() -> str:
    return secrets.token_hex(32)


class Organization(models.Model):
    """A tenant: a customer of Visage. Every row of customer data belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    # Keys the pseudonymous hash of a partner's user ids; never leaves the server.
    subject_hash_secret = models.CharField(max_length=64, default=_new_subject_secret, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantQuerySet(models.QuerySet):
    """Querysets of tenant data; scoping fails closed."""

    def for_organization(self, organization: Organization | None) -> "TenantQuerySet":
        """Rows of this organization only; no organization means no rows."""
        if organization is None or organization.pk is None:
            return self.none()
        return self.filter(organization=organization)


class TenantModel(models.Model):
    """Base for every model that holds customer data."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(models.Model):
    """A user's place in one organization, with a role that sets what they may do."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MARKETER = "marketer", "Marketer"
        ANALYST = "analyst", "Analyst"
        READ_ONLY = "read_only", "Read-only"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.READ_ONLY)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organization", "user"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.get_role_display()})"


class ApiKey(TenantModel):
    """A partner's API key. Only a hash is stored; the full key is shown once, at creation."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        # Ask for decisions and post events only: for a partner's front-end servers. Write implies it.
        DECIDE = "decide", "Decide"
        # Take an audience out of Visage (segment members, exports, matches of partner ids). Nothing implies it:
        # a key that may change campaigns may not carry people's ids off with it unless it was given this too.
        EXPORT = "export", "Export"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        """Whether the key may act in `scope`; a write key may also decide (keys made before the decide scope
        existed keep asking for decisions), never export."""
        if scope == self.Scope.DECIDE and self.Scope.WRITE in self.scopes:
            return True
        return scope in self.scopes
