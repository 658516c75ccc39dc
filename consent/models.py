"""Consent: purposes, notices, pseudonymous subjects, grants and the append-only, hash-chained ledger."""

import uuid
from datetime import UTC

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel, TenantQuerySet
from consent import derived, retention

# BIPA 740 ILCS 14/15(a): biometric identifiers are destroyed within 3 years of the last interaction.
MAX_RETENTION_DAYS = 3 * 365


class Purpose(models.TextChoices):
    """What biometric processing is for; each needs its own explicit consent."""

    FACE_ANALYSIS = "face_analysis", _("Face analysis")
    PERSONALIZATION = "personalization", _("Personalization from face features")
    PARTNER_SHARING = "partner_sharing", _("Sharing aggregates with a partner")
    FACE_VERIFICATION = "face_verification", _("Face verification")


def purposes_key(purposes: "list[str] | tuple[str, ...] | set[str]") -> str:
    """The canonical, comparable form of a set of purposes: sorted, comma-joined."""
    return ",".join(sorted(set(purposes)))


def purpose_labels(purposes: "list[str] | tuple[str, ...] | set[str]") -> list[str]:
    """Display names of purposes, in the order given; an unknown key stays as it is."""
    return [str(Purpose(p).label) if p in Purpose.values else p for p in purposes if p]


ACCESS_TOKEN_MAX_LENGTH = 128


class Channel(models.TextChoices):
    """How a consent decision reached Visage."""

    CONSENT_PAGE = "consent_page", _("Consent page")
    PARTNER_API = "partner_api", _("Partner API (partner's own UI)")
    ADMIN_PAPER = "admin_paper", _("Admin, on paper evidence")
    MY_DATA_PAGE = "my_data_page", _("'My data' page")
    SYSTEM = "system", _("System")


class RetentionPolicy(TenantModel):
    """How long an organization keeps each category of what it holds; its schedule is public (BIPA). One column
    per category of `consent.retention.CATEGORIES`; the service (`retention_policy_set`) saves a value above its
    legal cap capped, and the check constraints hold the absolute limits."""

    jurisdiction = models.CharField(
        max_length=8, choices=retention.Jurisdiction.CHOICES, default=retention.Jurisdiction.EU,
        help_text=_("Where your subjects are: Texas caps everything biometric at one year."),
    )
    frame_bytes_seconds = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(1), MaxValueValidator(retention.FRAME_BYTES_MAX_SECONDS)],
        help_text=_("A frame's bytes wait at most this many seconds for analysis (at most 10 minutes)."),
    )
    feature_retention_days = models.PositiveIntegerField(
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_("Derived face features are deleted after this many days (at most 3 years)."),
    )
    aggregate_retention_days = models.PositiveIntegerField(
        default=365, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_("Capture sessions' aggregates are deleted after this many days (at most 3 years)."),
    )
    face_context_retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_("A subject's face context is deleted this many days after its last update (at most 3 years)."),
    )
    membership_retention_days = models.PositiveIntegerField(
        default=365, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_("Ended segment memberships are deleted after this many days (at most 3 years)."),
    )
    decision_retention_days = models.PositiveIntegerField(
        default=730, validators=[MinValueValidator(1), MaxValueValidator(retention.RECORD_MAX_DAYS)],
        help_text=_("Decision logs are deleted after this many days."),
    )
    event_retention_days = models.PositiveIntegerField(
        default=730, validators=[MinValueValidator(1), MaxValueValidator(retention.RECORD_MAX_DAYS)],
        help_text=_("Events (impressions, clicks, conversions) are deleted after this many days."),
    )
    exposure_retention_days = models.PositiveIntegerField(
        default=730, validators=[MinValueValidator(1), MaxValueValidator(retention.RECORD_MAX_DAYS)],
        help_text=_("Experiment exposures lose their visitor after this many days; the arms' counts stay."),
    )
    consent_record_retention_days = models.PositiveIntegerField(
        default=6 * 365, validators=[MinValueValidator(365), MaxValueValidator(retention.RECORD_MAX_DAYS)],
        help_text=_("Ended grants are kept as proof this many days after they ended (at least one year)."),
    )
    grant_validity_days = models.PositiveIntegerField(
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_("A consent expires after this many days and must be asked for again (at most 3 years)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "retention policy"
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="consent_one_retention_policy_per_org"),
            models.CheckConstraint(
                condition=models.Q(feature_retention_days__gte=1, feature_retention_days__lte=MAX_RETENTION_DAYS),
                name="consent_feature_retention_capped",
            ),
            models.CheckConstraint(
                condition=models.Q(grant_validity_days__gte=1, grant_validity_days__lte=MAX_RETENTION_DAYS),
                name="consent_grant_validity_capped",
            ),
            models.CheckConstraint(
                condition=models.Q(frame_bytes_seconds__gte=1,
                                   frame_bytes_seconds__lte=retention.FRAME_BYTES_MAX_SECONDS),
                name="consent_frame_bytes_capped",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    aggregate_retention_days__lte=MAX_RETENTION_DAYS,
                    face_context_retention_days__lte=MAX_RETENTION_DAYS,
                    membership_retention_days__lte=MAX_RETENTION_DAYS,
                ),
                name="consent_biometric_retention_capped",
            ),
        ]

    def __str__(self) -> str:
        return f"Retention: features {self.feature_retention_days} d, consent {self.grant_validity_days} d"

    def period(self, category: "retention.Category") -> int:
        """The category's configured period, in its unit."""
        return int(getattr(self, category.field))

    def snapshot(self) -> dict[str, int | str]:
        """The schedule as frozen into a published notice."""
        return {
            "jurisdiction": self.jurisdiction,
            **{category.field: self.period(category) for category in retention.CATEGORIES},
            "grant_validity_days": self.grant_validity_days,
        }


class NoticeImmutableError(Exception):
    """A published notice is evidence: its text never changes."""


class NoticeVersion(TenantModel):
    """The notice shown before consent, per organization, purpose set and language. Published text is frozen
    and identified by the SHA-256 of its exact text."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")  # offered for new grants
        SUPERSEDED = "superseded", _("Superseded")  # a newer version is offered; existing grants stay valid
        RETIRED = "retired", _("Retired")  # no longer valid: grants given under it stop covering processing

    language = models.CharField(max_length=8, choices=[("en", "English"), ("de", "Deutsch")])
    purposes = models.CharField(
        max_length=200, help_text=_("Canonical purpose set, comma-separated (see Purpose).")
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, editable=False)
    controller_name = models.CharField(max_length=200, help_text=_("The controller, as named in the notice."))
    controller_contact = models.CharField(max_length=300, help_text=_("Postal or e-mail address for requests."))
    recipients = models.TextField(blank=True, help_text=_("Who receives data (processors, partners)."))
    introduction = models.TextField(blank=True, help_text=_("Your own words, placed at the top of the notice."))
    # Which attributes the text names (consent.derived): a grant under this notice covers deriving only these.
    derived_attributes = models.CharField(
        max_length=200,
        default=derived.ALL_CANONICAL,
        help_text=_("What is derived from faces, as the notice names it (see consent.derived), comma-separated."),
    )
    # Filled when published, never changed afterwards.
    text = models.TextField(blank=True, editable=False)
    text_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    retention_snapshot = models.JSONField(default=dict, blank=True, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # Only the life-cycle columns may change once a version left the draft state.
    LIFECYCLE_FIELDS = frozenset({"status", "retired_at", "updated_at"})

    class Meta:
        ordering = ["language", "purposes", "-version"]
        verbose_name = "notice version"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "language", "purposes", "version"], name="consent_notice_version_unique"
            ),
            # One offered text per purpose set and attribute choice: campaigns that derive less have their own.
            models.UniqueConstraint(
                fields=["organization", "language", "purposes", "derived_attributes"],
                condition=models.Q(status="published"),
                name="consent_one_published_notice_per_choice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purposes} [{self.language}] v{self.version} ({self.get_status_display()})"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_status = instance.status
        return instance

    def clean(self) -> None:
        keys = [p for p in self.purposes.split(",") if p]
        unknown = set(keys) - set(Purpose.values)
        if not keys or unknown:
            raise ValidationError({"purposes": _("Choose at least one known purpose.")})
        self.purposes = purposes_key(keys)
        try:
            self.derived_attributes = derived.canonical(self.derived_attributes.split(","))
        except ValueError as error:
            raise ValidationError({"derived_attributes": str(error)}) from None

    def save(self, *args, **kwargs) -> None:
        loaded = getattr(self, "_loaded_status", None)
        if loaded is not None and loaded != self.Status.DRAFT:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= self.LIFECYCLE_FIELDS:
                raise NoticeImmutableError(f"Notice {self.pk} is {loaded}; only a draft can be edited.")
        super().save(*args, **kwargs)
        self._loaded_status = self.status

    def delete(self, *args, **kwargs):
        if getattr(self, "_loaded_status", self.status) != self.Status.DRAFT:
            raise NoticeImmutableError(f"Notice {self.pk} was published; it is kept as evidence.")
        return super().delete(*args, **kwargs)

    @property
    def purpose_list(self) -> list[str]:
        return [p for p in self.purposes.split(",") if p]

    @property
    def is_current(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def derived_attribute_set(self) -> frozenset[str]:
        """The attribute keys this notice names; a grant under it covers deriving these and no others."""
        return derived.parse(self.derived_attributes)


class Subject(TenantModel):
    """A person, pseudonymous within one organization. A partner's user id is kept only as a keyed hash."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # HMAC-SHA256(organization.subject_hash_secret, partner user id); empty for visitors of a consent page.
    partner_ref_hash = models.CharField(max_length=64, blank=True, editable=False)
    # SHA-256 of the "my data" token; the token itself is shown once and never stored.
    access_token_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    access_token_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "partner_ref_hash"],
                condition=~models.Q(partner_ref_hash=""),
                name="consent_subject_partner_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Subject {self.public_id}"

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class ReplacedAccessToken(TenantModel):
    """A "my data" token that was replaced by a newer one, as its hash only, so that the old link can say it was
    replaced instead of looking forged. It points at no subject: the old link's page reveals nothing about whose
    it was, and the row holds nothing personal."""

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    replaced_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-replaced_at"]
        verbose_name = "replaced access token"

    def __str__(self) -> str:
        return f"Replaced token {self.token_hash[:8]}… ({self.replaced_at:%Y-%m-%d})"


class GrantQuerySet(TenantQuerySet):
    """Grants; `open()` are those not ended by withdrawal, replacement or expiry bookkeeping. Open is not live:
    whether a grant covers processing is `consent.guards`' to say (`live_grants`, `grant_state`)."""

    def open(self) -> "GrantQuerySet":
        return self.filter(ended_at__isnull=True)


class Grant(TenantModel):
    """One explicit consent of one subject to one purpose, under one published notice version."""

    class EndReason(models.TextChoices):
        WITHDRAWN = "withdrawn", _("Withdrawn")
        REPLACED = "replaced", _("Replaced by a newer grant")
        EXPIRED = "expired", _("Expired")

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="grants")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    notice = models.ForeignKey(NoticeVersion, on_delete=models.PROTECT, related_name="grants")
    notice_hash = models.CharField(max_length=64)
    language = models.CharField(max_length=8)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    context_ref = models.CharField(max_length=100, blank=True, help_text=_("Where it was given, e.g. campaign:<id>."))
    evidence = models.JSONField(default=dict, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=12, choices=EndReason.choices, blank=True)
    end_channel = models.CharField(max_length=20, choices=Channel.choices, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "purpose"],
                condition=models.Q(ended_at__isnull=True),
                name="consent_one_open_grant_per_purpose",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "purpose", "ended_at"], name="consent_grant_state_idx"),
            models.Index(fields=["organization", "ended_at"], name="consent_grant_ended_idx"),  # retention
        ]

    def __str__(self) -> str:
        # Open or how it ended, never "active": liveness is the guard's (consent.guards.grant_state).
        return f"{self.get_purpose_display()} by {self.subject_id} ({self.end_reason or 'open'})"


class LedgerAppendOnlyError(Exception):
    """Ledger rows are evidence: they are appended, never changed or deleted."""


class LedgerQuerySet(TenantQuerySet):
    """Refuses bulk changes; the database triggers refuse the rest."""

    def update(self, **kwargs):
        raise LedgerAppendOnlyError("The consent ledger is append-only.")

    def delete(self):
        raise LedgerAppendOnlyError("The consent ledger is append-only.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerAppendOnlyError("The consent ledger is append-only.")

    def update_or_create(self, *args, **kwargs):
        raise LedgerAppendOnlyError("The consent ledger is append-only.")


class LedgerEntry(TenantModel):
    """One consent event, appended to its organization's hash chain:
    hash = sha256(canonical JSON of the row + prev_hash)."""

    class Event(models.TextChoices):
        SHOWN = "shown", _("Notice shown")
        GRANTED = "granted", _("Granted")
        REFUSED = "refused", _("Refused")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        EXPIRED = "expired", _("Expired")
        PURGED = "purged", _("Purge receipt")
        EXPORTED = "exported", _("Audience exported")

    sequence = models.PositiveBigIntegerField()
    event = models.CharField(max_length=12, choices=Event.choices)
    occurred_at = models.DateTimeField()
    # No foreign keys: the ledger outlives the rows it speaks about (an erased subject, a deleted campaign).
    subject_ref = models.CharField(max_length=36, blank=True, help_text="Subject public id, if any.")
    # sha256 of subject_ref, written with the entry: the hash covers it, so an erasure can cut subject_ref (the
    # one change the triggers allow) and the chain still verifies. Empty on entries written before it existed.
    subject_digest = models.CharField(max_length=64, blank=True)
    purposes = models.CharField(max_length=200, blank=True)
    notice_hash = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=8, blank=True)
    channel = models.CharField(max_length=20, blank=True)
    context_ref = models.CharField(max_length=100, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "sequence"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="consent_ledger_sequence_unique"),
        ]
        indexes = [
            models.Index(fields=["organization", "event", "context_ref"], name="consent_ledger_funnel_idx"),
            models.Index(fields=["organization", "subject_ref"], name="consent_ledger_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise LedgerAppendOnlyError("The consent ledger is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerAppendOnlyError("The consent ledger is append-only.")

    @property
    def purpose_labels(self) -> list[str]:
        return purpose_labels(self.purposes.split(","))

    def canonical_content(self) -> dict:
        """What the hash covers: every column but the hashes themselves and the row id."""
        occurred = self.occurred_at.astimezone(UTC) if self.occurred_at.tzinfo else self.occurred_at
        # Entries with a digest cover it instead of the public id, which an erasure may cut.
        subject = {"subject_digest": self.subject_digest} if self.subject_digest else {"subject": self.subject_ref}
        return {
            "organization": self.organization_id,
            "sequence": self.sequence,
            "event": self.event,
            "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **subject,
            "purposes": self.purposes,
            "notice_hash": self.notice_hash,
            "language": self.language,
            "channel": self.channel,
            "context": self.context_ref,
            "evidence": self.evidence,
            "payload": self.payload,
        }


class ChainHead(TenantModel):
    """The end of an organization's ledger chain; locking it serializes appends per organization."""

    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    # The partner event feed's sequence (consent.outbox): taken under the same lock, so the feed's order is the
    # order of commits and a cursor never skips an event that commits late.
    last_event_sequence = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "ledger chain head"
        constraints = [models.UniqueConstraint(fields=["organization"], name="consent_one_chain_head_per_org")]

    def __str__(self) -> str:
        return f"chain head #{self.last_sequence}"


class PurgeRequest(TenantModel):
    """What is owed when consent ends, a subject is erased or a retention period runs out: for whom, which purposes,
    why. Recorded in the transaction that makes it owed; each app's purger does its part (consent.purging) and
    writes its own receipt. Ids only: it points at no subject row, so it outlives an erasure as the ledger does."""

    class Reason(models.TextChoices):
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        CONSENT_EXPIRED = "consent_expired", _("Consent expired")
        SUBJECT_ERASED = "subject_erased", _("Subject erased")
        RETENTION_PERIOD_ENDED = "retention_period_ended", _("Retention period ended")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reason = models.CharField(max_length=30, choices=Reason.choices)
    # The subject's row id and public id (no foreign key: see above); empty for an organization-wide retention run.
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject_ref = models.CharField(max_length=36, blank=True, help_text=_("Subject public id, if any."))
    purposes = models.CharField(max_length=200, blank=True, help_text=_("The purposes whose data is purged."))
    # A retention run purges what is older than this.
    before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "purge request"

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.subject_ref or ''} ({self.created_at:%Y-%m-%d %H:%M})".replace(
            "  ", " ")

    @property
    def purpose_list(self) -> list[str]:
        return [p for p in self.purposes.split(",") if p]


class PurgePart(TenantModel):
    """One purger's share of a purge request: owed until that purger has deleted its rows and written its receipt
    (in one transaction), then done, for good."""

    class Status(models.TextChoices):
        OWED = "owed", _("Owed")
        DONE = "done", _("Done")

    request = models.ForeignKey(PurgeRequest, on_delete=models.CASCADE, related_name="parts")
    purger = models.CharField(max_length=60, help_text=_("The registered purger (consent.purging) that owes it."))
    # A retention run has one part per purger and category (consent.retention); empty for other requests.
    category = models.CharField(max_length=30, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OWED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True, help_text=_("The last failure's type, never data."))
    dispatched_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    # The receipt's place in the organization's ledger (no foreign key: the ledger is referenced by nothing).
    receipt_sequence = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["request", "purger"]
        verbose_name = "purge part"
        constraints = [
            models.UniqueConstraint(fields=["request", "purger", "category"], name="consent_one_part_per_purger"),
        ]
        indexes = [models.Index(fields=["status", "dispatched_at"], name="consent_purge_owed_idx")]

    def __str__(self) -> str:
        return f"{self.purger} ({self.get_status_display()})"


class DataRequest(TenantModel):
    """A data subject's request (GDPR Art. 15, 17, 20): access, export or erasure, with its state, its due date
    (one month, Art. 12(3)) and who asked. Ids only, like a purge request: it outlives the subject's erasure as
    the proof that the request was received and answered."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("Access")
        EXPORT = "export", _("Export")
        ERASURE = "erasure", _("Erasure")

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    subject_id = models.PositiveBigIntegerField()
    subject_ref = models.CharField(max_length=36, help_text=_("Subject public id."))
    channel = models.CharField(max_length=20, choices=Channel.choices)
    # Who asked: "subject" (the "my data" link), or the partner API key's prefix, or an admin user's id.
    requested_by = models.CharField(max_length=80)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    due_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # An erasure runs through a purge request; its parts say what is done.
    purge_request = models.ForeignKey(PurgeRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="data_requests")
    # Counts and the like, never content.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = "data subject request"
        indexes = [models.Index(fields=["organization", "subject_id"], name="consent_request_subject_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject_ref} ({self.get_state_display()})"


class SigningKey(TenantModel):
    """An organization's Ed25519 key for signed consent receipts (JWS, alg EdDSA). The public half is published
    (consent.receipts); the private half is stored encrypted under a key derived from SECRET_KEY. A retired key
    signs nothing new and stays published, so old receipts keep verifying."""

    kid = models.CharField(max_length=64, unique=True, editable=False)
    public_key = models.CharField(max_length=64, editable=False, help_text=_("Raw public key, base64url."))
    private_key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["organization", "-created_at"]
        verbose_name = "receipt signing key"
        constraints = [
            # One key signs at a time: two requests that both find none create one between them (consent.receipts).
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(retired_at__isnull=True),
                name="consent_one_current_signing_key",
            ),
        ]

    def __str__(self) -> str:
        return f"Signing key {self.kid}"


class OutboxEvent(TenantModel):
    """One entry of the partner event feed (`GET /api/v1/events/`), written in the transaction of what it reports,
    numbered per organization in commit order (ChainHead.last_event_sequence). Webhooks will deliver from it.
    Ids and counts only, never feature values."""

    class Type(models.TextChoices):
        CONSENT_GRANTED = "consent.granted", _("Consent granted")
        CONSENT_WITHDRAWN = "consent.withdrawn", _("Consent withdrawn")
        ERASURE_REQUESTED = "erasure.requested", _("Erasure requested")
        ERASURE_DONE = "erasure.done", _("Erasure done")
        EXPORT_READY = "export.ready", _("Export ready")
        PURGE_DONE = "purge.done", _("Purge done")

    sequence = models.PositiveBigIntegerField()
    type = models.CharField(max_length=30, choices=Type.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    subject_ref = models.CharField(max_length=36, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["organization", "sequence"]
        verbose_name = "partner event"
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="consent_outbox_sequence_unique"),
        ]
        indexes = [models.Index(fields=["organization", "type", "sequence"], name="consent_outbox_type_idx")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.type}"
