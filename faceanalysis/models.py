"""Capture sessions, frames (metadata only: pixels live in the ephemeral frame store, never here), the
features derived from them, and the latest face context a decision may read."""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from consent import derived


class CaptureSession(TenantModel):
    """One stretch of capture for one subject in one campaign, under the consent it started with."""

    class Source(models.TextChoices):
        BROWSER_STREAM = "browser_stream", _("Browser stream")
        IMAGE_UPLOAD = "image_upload", _("Image upload")
        VIDEO_UPLOAD = "video_upload", _("Video upload")
        PARTNER = "partner", _("Partner")

    class EndReason(models.TextChoices):
        CLIENT = "client", _("Ended by the client")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        OPERATOR = "operator", _("Ended by an operator")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subject = models.ForeignKey("consent.Subject", on_delete=models.CASCADE, related_name="capture_sessions")
    # PROTECT: deleting a campaign must not delete derived data past its purge requests and receipts.
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.PROTECT, related_name="capture_sessions")
    # The face-analysis grant in force when the session started; frames carry the grant of their own time.
    grant = models.ForeignKey("consent.Grant", on_delete=models.CASCADE, related_name="+")
    purposes = models.CharField(max_length=200, help_text=_("The subject's consented purposes at the start."))
    # The campaign's choice when the session started: every frame is checked against it and derives no more.
    required_purposes = models.CharField(
        max_length=200,
        default="face_analysis",
        help_text=_("Purposes that must all be live for a frame to be accepted and analysed."),
    )
    derived_attributes = models.CharField(
        max_length=200,
        default=derived.ALL_CANONICAL,
        help_text=_("What is derived from its frames (see consent.derived); the rest is neither computed nor kept."),
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    media_ref = models.CharField(
        max_length=200, blank=True, help_text=_("Id of the video or page being watched; frames carry its media time.")
    )
    started_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True, editable=False)
    # SHA-256 of the end user's capture token; the token itself is shown once and never stored.
    token_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Snapshot written by the worker after each analysed frame (see faceanalysis.aggregates).
    aggregates = models.JSONField(default=dict, blank=True, editable=False)
    aggregates_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["organization", "subject", "ended_at"], name="fa_session_subject_open_idx"),
            # The retention run's cutoff scan and the audit's oldest row (started_at never changes: updates of the
            # aggregates stay HOT).
            models.Index(fields=["organization", "started_at"], name="fa_session_org_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Capture {self.public_id} ({self.get_source_display()})"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def required_purpose_list(self) -> list[str]:
        """Purposes every frame of this session needs live consent to."""
        return [p for p in self.required_purposes.split(",") if p]

    @property
    def derived_attribute_set(self) -> frozenset[str]:
        """The attribute keys derived from this session's frames."""
        return derived.parse(self.derived_attributes)


class Frame(TenantModel):
    """One frame's passage through the pipeline. Metadata only: the bytes are in the frame store until a
    worker takes them, and nowhere else."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        ANALYZED = "analyzed", _("Analysed")
        DROPPED = "dropped", _("Dropped (no consent)")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired before analysis")

    class Origin(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Sampled from a video")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(CaptureSession, on_delete=models.CASCADE, related_name="frames")
    # Denormalised from the session so that the withdrawal cascade finds a subject's frames in one query.
    subject = models.ForeignKey("consent.Subject", on_delete=models.CASCADE, related_name="+")
    grant = models.ForeignKey("consent.Grant", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=40, blank=True, help_text=_("Why it was dropped or failed."))
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.IMAGE)
    content_type = models.CharField(max_length=20)
    byte_size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    queue = models.CharField(max_length=20)
    captured_at = models.DateTimeField(null=True, blank=True, help_text=_("Client clock, when given."))
    media_time_ms = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "pk"]
        indexes = [
            models.Index(fields=["organization", "status", "received_at"], name="fa_frame_org_status_idx"),
            models.Index(fields=["subject", "status"], name="fa_frame_subject_status_idx"),
            models.Index(fields=["session", "status"], name="fa_frame_session_status_idx"),
            models.Index(fields=["status", "queue", "received_at"], name="fa_frame_queue_idx"),
            models.Index(fields=["organization", "received_at"], name="fa_frame_org_time_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"Frame {self.public_id} ({self.status})"


class FrameFeatures(TenantModel):
    """What was derived from one frame: the largest face's headline features, every face's engine output
    (no landmarks, no embedding), the model versions, and the grant that allowed the analysis."""

    frame = models.OneToOneField(Frame, on_delete=models.CASCADE, related_name="features")
    session = models.ForeignKey(CaptureSession, on_delete=models.CASCADE, related_name="features")
    subject = models.ForeignKey("consent.Subject", on_delete=models.CASCADE, related_name="+")
    grant = models.ForeignKey("consent.Grant", on_delete=models.CASCADE, related_name="+")
    media_time_ms = models.PositiveIntegerField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    face_count = models.PositiveSmallIntegerField()
    quality_ok = models.BooleanField(help_text=_("The largest face passed the engine's quality gate."))
    quality_reasons = models.JSONField(default=list, blank=True)
    attention_score = models.FloatField(null=True, blank=True)
    looking_at_screen = models.BooleanField(null=True, blank=True)
    eyes_open = models.BooleanField(null=True, blank=True)
    smile = models.FloatField(null=True, blank=True, help_text=_("Mean of the two mouthSmile blendshapes."))
    expression = models.CharField(max_length=12, blank=True)
    expression_confidence = models.FloatField(null=True, blank=True)
    # The largest face's age and gender as columns too (they are in `faces` as well), so that segments aggregate
    # them in SQL without reading JSON.
    age_years = models.FloatField(null=True, blank=True)
    gender = models.CharField(max_length=8, blank=True)
    gender_confidence = models.FloatField(null=True, blank=True)
    faces = models.JSONField(default=list, blank=True)
    model_versions = models.JSONField(
        default=list, blank=True, help_text=_("Model names and versions that produced it.")
    )
    received_at = models.DateTimeField()
    analyzed_at = models.DateTimeField(default=timezone.now)
    latency_ms = models.FloatField(help_text=_("From intake to these features being written."))

    # The derived attribute (consent.derived) each headline column carries: a column of an attribute the session
    # did not choose stays empty. `faces` holds the engine's per-face output, trimmed the same way.
    ATTRIBUTE_COLUMNS = {
        "face_count": "face_position",
        "quality_ok": "quality",
        "quality_reasons": "quality",
        "attention_score": "gaze",
        "looking_at_screen": "gaze",
        "eyes_open": "eyes",
        "smile": "expression",
        "expression": "expression",
        "expression_confidence": "expression",
        "age_years": "age",
        "gender": "gender",
        "gender_confidence": "gender",
    }

    class Meta:
        ordering = ["session", "frame"]
        verbose_name_plural = "frame features"
        indexes = [
            models.Index(fields=["organization", "analyzed_at"], name="fa_features_org_time_idx"),
            # A segment's update for one subject reads that subject's recent rows only.
            models.Index(fields=["subject", "analyzed_at"], name="fa_features_subject_time_idx"),
        ]

    def __str__(self) -> str:
        return f"Features of frame {self.frame_id}"


class FaceContext(TenantModel):
    """The latest aggregates of a subject's session in a campaign, written by each recount (services.context).
    Decisions read the subject's per-frame signals instead (`selectors.face_signals_for_decision`)."""

    subject = models.ForeignKey("consent.Subject", on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(CaptureSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    grant = models.ForeignKey("consent.Grant", on_delete=models.CASCADE, related_name="+")
    features = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["subject", "campaign"], name="fa_one_context_per_subject")]
        indexes = [models.Index(fields=["organization", "updated_at"], name="fa_context_org_time_idx")]  # retention

    def __str__(self) -> str:
        return f"Face context of {self.subject_id} in {self.campaign_id}"
