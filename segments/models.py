"""Audience segments: a definition (a condition tree, or a list for a static segment), its members with the time
each entered and left, and the runs that computed them. Members are pseudonymous subjects; no feature value is
stored here, only that a subject met the definition from one time to another."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel

KEY_MAX_LENGTH = 64
# Beat recomputes a dynamic segment this often at least, and backs off to `MAX_CADENCE_SECONDS` when a run takes
# long (segments.services.next_cadence): a slow definition never loads the database more than a share of the time.
MIN_CADENCE_SECONDS = 60
MAX_CADENCE_SECONDS = 24 * 3600


class Segment(TenantModel):
    """One audience of an organization, known by its key (the name rules and the API use)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic")
        STATIC = "static", _("Static")

    key = models.SlugField(
        max_length=KEY_MAX_LENGTH, help_text=_("How rules and the API name it, e.g. smiled-at-spring."),
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(
        max_length=8, choices=Kind.choices, default=Kind.DYNAMIC,
        help_text=_("Dynamic: recomputed on a cadence and when a member's data changes. Static: a snapshot taken on "
                    "demand, or an uploaded list of your user ids."),
    )
    definition = models.JSONField(
        default=dict, blank=True,
        help_text=_("The condition tree (docs/segments.md); a static segment's snapshot is taken from it."),
    )
    # Written by the services from the definition: a segment with a face condition counts only subjects whose
    # face-analysis and personalization consents are live, and its members leave when either ends.
    face_based = models.BooleanField(default=False, editable=False)
    # It reads expressions or smiles (itself or through a segment it names): emotion recognition in the EU AI
    # Act's sense, which a campaign in a workplace or education setting may not target on.
    emotion_based = models.BooleanField(default=False, editable=False)
    cadence_seconds = models.PositiveIntegerField(
        default=MIN_CADENCE_SECONDS, editable=False,
        validators=[MinValueValidator(MIN_CADENCE_SECONDS), MaxValueValidator(MAX_CADENCE_SECONDS)],
    )
    next_run_at = models.DateTimeField(default=timezone.now, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    size = models.PositiveIntegerField(default=0, editable=False, help_text=_("Members at the last run."))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="seg_segment_key_unique")]
        indexes = [models.Index(fields=["kind", "next_run_at"], name="seg_segment_due_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class SegmentMembership(TenantModel):
    """One stretch of a subject's membership: entered at one time, exited at another (or still a member). The
    size at any time, and who entered or left since, are counted from these rows."""

    class ExitReason(models.TextChoices):
        LEFT = "left", _("No longer meets the definition")
        CONSENT_ENDED = "consent_ended", _("Consent ended (the purge cut the subject)")
        ERASED = "erased", _("Subject erased (the purge cut the subject)")
        REPLACED = "replaced", _("Replaced by a new snapshot or list")
        REDEFINED = "redefined", _("The definition changed")

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    # Cut (NULL) by the purge when the subject's consent ends or the subject is erased: the stretch stays for the
    # size history, and nothing in it points at the person.
    subject = models.ForeignKey(
        "consent.Subject", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True)

    class Meta:
        ordering = ["segment", "-entered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "subject"], condition=models.Q(exited_at__isnull=True),
                name="seg_membership_open_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["subject", "exited_at"], name="seg_membership_subject_idx"),
            models.Index(fields=["segment", "entered_at"], name="seg_membership_entered_idx"),
            models.Index(fields=["segment", "exited_at"], name="seg_membership_exited_idx"),
            models.Index(fields=["organization", "exited_at"], name="seg_membership_org_exit_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} in {self.segment_id} from {self.entered_at:%Y-%m-%d %H:%M}"


class SegmentRun(TenantModel):
    """One computation of a segment's members: when, how long, how many, how many entered and left."""

    class Kind(models.TextChoices):
        FULL = "full", _("Full recompute")
        SNAPSHOT = "snapshot", _("Static snapshot")
        UPLOAD = "upload", _("Uploaded list")

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.FULL)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField()
    exited = models.PositiveIntegerField()
    details = models.JSONField(default=dict, blank=True, help_text=_("Counts only, e.g. ids of an upload not found."))

    class Meta:
        ordering = ["segment", "-started_at"]
        indexes = [models.Index(fields=["segment", "started_at"], name="seg_run_segment_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.segment_id} at {self.started_at:%Y-%m-%d %H:%M}: {self.size}"


class AudienceExportRecipient(TenantModel):
    """One subject named by one audience export (a CSV or JSON export, a page of members, a match of the partner's
    ids): which people left Visage in which export, so a subject's own export can say so. Written in bulk with the
    export's ledger entry (which holds the counts); deleted when the subject is erased (segments.purgers)."""

    class What(models.TextChoices):
        MEMBERS = "members", _("Export of the members")
        MEMBERS_PAGE = "members_page", _("A page of members through the API")
        PARTNER_MATCH = "partner_match", _("A match of the partner's own ids")

    subject = models.ForeignKey("consent.Subject", on_delete=models.CASCADE, related_name="+")
    # The segment may be deleted later; its key stays here as the export named it.
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    segment_key = models.CharField(max_length=KEY_MAX_LENGTH)
    what = models.CharField(max_length=16, choices=What.choices)
    # The export's entry in the consent ledger (no foreign key: the ledger is referenced by nothing).
    ledger_sequence = models.PositiveBigIntegerField()
    requested_by = models.CharField(max_length=80)
    exported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-exported_at", "-pk"]
        verbose_name = "audience export recipient"
        indexes = [
            models.Index(fields=["subject", "exported_at"], name="seg_export_subject_idx"),
            models.Index(fields=["organization", "exported_at"], name="seg_export_org_time_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} in export #{self.ledger_sequence} of {self.segment_key}"
