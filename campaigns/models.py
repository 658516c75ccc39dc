"""Campaigns: what a marketer runs, which consent purposes it needs, its content variants and personalization
rules, and the append-only log of the decisions and events they produce."""

import secrets
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
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
        SCHEDULED = "scheduled", _("Scheduled")  # beat starts it at starts_at
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")  # no consent page, camera or decision until it runs again
        ENDED = "ended", _("Ended")

    class Goal(models.TextChoices):
        CONVERSION = "conversion", _("Conversion")
        ENGAGEMENT = "engagement", _("Engagement")
        UX_TEST = "ux_test", _("UX test")
        VIDEO_REACTION = "video_reaction", _("Video reaction")

    class SettingOfUse(models.TextChoices):
        """Where the campaign is used. EU AI Act Art. 5(1)(f) forbids emotion recognition at work and in
        education: there, expression conditions can be neither saved nor evaluated."""

        GENERAL = "general", _("General (consumers online)")
        RETAIL = "retail", _("Retail and events")
        WORKPLACE = "workplace", _("Workplace")
        EDUCATION = "education", _("Education")

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
    goal = models.CharField(max_length=20, choices=Goal.choices, default=Goal.CONVERSION)
    setting_of_use = models.CharField(
        max_length=20, choices=SettingOfUse.choices, default=SettingOfUse.GENERAL,
        help_text=_("At work and in education emotion recognition is forbidden (EU AI Act Art. 5(1)(f))."),
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text=_("A scheduled campaign starts running then."))
    ends_at = models.DateTimeField(null=True, blank=True, help_text=_("A running or paused campaign ends then."))
    allowed_origins = models.TextField(
        blank=True, default="",
        help_text=_("Origins of the partner pages that may ask for decisions with personalize.js, one per line "
                    "(https://shop.example)."),
    )
    decision_ttl_seconds = models.PositiveIntegerField(
        default=60, help_text=_("How long a page may reuse a decision before asking again."),
    )
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

    @staticmethod
    def setting_forbids_emotion_recognition(setting_of_use: str | None) -> bool:
        """EU AI Act Art. 5(1)(f): no emotion recognition in the workplace or in education."""
        return setting_of_use in (Campaign.SettingOfUse.WORKPLACE, Campaign.SettingOfUse.EDUCATION)

    @property
    def emotion_recognition_forbidden(self) -> bool:
        """Whether this campaign's setting forbids emotion recognition (see setting_forbids_emotion_recognition)."""
        return self.setting_forbids_emotion_recognition(self.setting_of_use)

    @property
    def allowed_origin_list(self) -> list[str]:
        """The partner origins allowed to ask for decisions from a browser, as written (scheme://host[:port])."""
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]

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


class Variant(TenantModel):
    """One version of a campaign's content; exactly one variant of a campaign is its default, shown when no rule
    fires. `html` is stored only as sanitised (nh3) by the service that writes it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=64, help_text=_("Stable key partners and the snippet use (calm-offer)."))
    name = models.CharField(max_length=200)
    headline = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(blank=True, default="", max_length=5000)
    image_url = models.URLField(max_length=500, blank=True, default="")
    cta_text = models.CharField(max_length=100, blank=True, default="")
    cta_url = models.URLField(max_length=500, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True, help_text=_("Free JSON for partners (at most 16 KB)."))
    html = models.TextField(blank=True, default="", max_length=20000, help_text=_("Optional; sanitised on save."))
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["campaign", "-is_default", "key"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "key"], name="cmp_variant_key_unique"),
            models.UniqueConstraint(
                fields=["campaign"], condition=models.Q(is_default=True), name="cmp_one_default_variant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Rule(TenantModel):
    """A personalization rule: when its condition tree matches the visitor's context, its variant is shown.
    Rules are tried by ascending priority (then id); the first that matches wins. The tree is JSON validated by
    `campaigns.conditions` (see docs/personalization.md)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=200)
    priority = models.PositiveIntegerField(default=100, help_text=_("Lower runs first."))
    enabled = models.BooleanField(default=True)
    condition = models.JSONField(help_text=_("The condition tree (all / any / not over fields)."))
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="rules")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "priority", "id"]
        indexes = [models.Index(fields=["campaign", "priority"], name="cmp_rule_order_idx")]

    def __str__(self) -> str:
        return self.name


class Decision(TenantModel):
    """One decision, appended to the decision log and never changed: which variant a visitor got in a campaign
    and why. Holds no face value: only the rule that fired and, per rule skipped, the reason code."""

    class Reason(models.TextChoices):
        RULE = "rule", _("A rule fired")
        EXPERIMENT = "experiment", _("The experiment's arm")
        HOLDOUT = "holdout", _("Held out of the experiment (default variant)")
        STICKY = "sticky", _("Kept the visitor's earlier variant")
        DEFAULT = "default", _("Default variant")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="+")
    visitor_id = models.CharField(max_length=64, help_text=_("The page's anonymous visitor id (first-party cookie)."))
    subject = models.ForeignKey("consent.Subject", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    experiment_arm = models.ForeignKey(
        "campaigns.ExperimentArm", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("The arm the experiment chose, when it decided."),
    )
    reason = models.CharField(max_length=10, choices=Reason.choices)
    channel = models.CharField(max_length=10, default="api", help_text=_("api (partner key) or snippet."))
    trace = models.JSONField(default=list, blank=True, help_text=_("Per rule tried: matched, not matched or skipped, "
                                                                   "with the node or reason; never a face value."))
    attributes = models.JSONField(default=dict, blank=True, help_text=_("Coarse request attributes (device, language, "
                                                                        "country); no IP, no user agent."))
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["campaign", "visitor_id", "-created_at"], name="cmp_decision_visitor_idx"),
            models.Index(fields=["organization", "created_at"], name="cmp_decision_org_time_idx"),
        ]

    def __str__(self) -> str:
        return f"Decision {self.public_id}"


class Event(TenantModel):
    """An impression, click, conversion or custom event on a decision, attributed to the decision's variant and
    rule; one per (decision, client event id), so a retried post records nothing twice. Append-only."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression", _("Impression")
        CLICK = "click", _("Click")
        CONVERSION = "conversion", _("Conversion")
        CUSTOM = "custom", _("Custom")

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="events")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.ForeignKey("consent.Subject", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    exposure = models.ForeignKey(
        "campaigns.Exposure", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("The visitor's entry into the experiment's open phase the event counts for, if any."),
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    name = models.CharField(max_length=64, blank=True, default="", help_text=_("purchase, signup, video_50 ..."))
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    client_event_id = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "client_event_id"], name="cmp_event_once_per_client_id"),
        ]
        indexes = [
            models.Index(fields=["campaign", "kind", "received_at"], name="cmp_event_campaign_idx"),
            models.Index(fields=["organization", "received_at"], name="cmp_event_org_time_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.decision_id}"


def new_seed() -> str:
    """An experiment's hash seed: random, so two experiments never bucket visitors alike."""
    return secrets.token_hex(8)


class Experiment(TenantModel):
    """An A/B/n test or a Thompson-sampling bandit among some of a campaign's variants, for the visitors no rule
    claimed (docs/experiments.md). Assignment is GrowthBook's hash v2 of `seed` and the visitor id; its arms,
    weights, coverage and holdout are snapshotted per phase, and a change of any of them while it runs starts a
    new phase. At most one experiment of a campaign runs at a time."""

    class Kind(models.TextChoices):
        AB = "ab", _("A/B/n test (fixed weights)")
        BANDIT = "bandit", _("Bandit (Thompson sampling on conversion)")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="experiments")
    key = models.SlugField(max_length=64, help_text=_("Stable key for partners, exports and GrowthBook SDKs."))
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True, default="", max_length=2000)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.AB)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False)
    seed = models.CharField(
        max_length=64, default=new_seed,
        help_text=_("Hash seed (GrowthBook's `seed`); fixed while the experiment runs."),
    )
    coverage = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0001), MaxValueValidator(1.0)],
        help_text=_("Share of eligible visitors who enter, in (0, 1]."),
    )
    holdout = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("Share of entering visitors held out: they see the default variant and are measured apart."),
    )
    custom_events = models.JSONField(
        default=list, blank=True, help_text=_("Names of custom events to analyse as metrics (per visitor)."),
    )
    sequential = models.BooleanField(
        default=True, help_text=_("Always-valid p-values and intervals (mSPRT): safe to look at any time."),
    )
    bandit_cadence_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60)], help_text=_("How often a bandit reweights its arms."),
    )
    bandit_top_two = models.BooleanField(default=False, help_text=_("Top-two Thompson sampling (explores more)."))
    bandit_burn_in_per_arm = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)],
        help_text=_("Equal weights until this many visitors per arm have entered."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["campaign", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "key"], name="cmp_experiment_key_unique"),
            models.UniqueConstraint(
                fields=["campaign"], condition=models.Q(status="running"), name="cmp_one_running_experiment"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ExperimentArm(TenantModel):
    """One arm: a variant of the experiment's campaign with its configured weight. The first arm (position 0) is
    the control. An arm left out of a later phase is retired, never deleted: earlier phases' visitors point at it."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["experiment", "retired", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "variant"], name="cmp_arm_variant_unique"),
        ]

    def __str__(self) -> str:
        return f"Arm {self.position + 1}" + (" (control)" if self.position == 0 else "")


class ExperimentPhase(TenantModel):
    """A period with one configuration: the arms in GrowthBook's variation order, their weights, the coverage,
    holdout and seed. Results never mix phases."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="phases")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    arm_ids = models.JSONField(help_text=_("ExperimentArm ids in variation order; the first is the control."))
    weights = models.JSONField(help_text=_("The configured weights, in arm order."))
    coverage = models.FloatField()
    holdout = models.FloatField()
    seed = models.CharField(max_length=64)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["experiment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="cmp_phase_number_unique"),
        ]

    def __str__(self) -> str:
        return f"Phase {self.number}"


class Allocation(TenantModel):
    """The weights in force from `starts_at` within a phase: number 0 is the phase's configured (or, for a bandit,
    equal) weights; a bandit's beat adds one per reweighting. Kept, so weights over time can be shown and the
    sample-ratio check can compare each period's visitors with the weights of that period."""

    phase = models.ForeignKey(ExperimentPhase, on_delete=models.CASCADE, related_name="allocations")
    number = models.PositiveIntegerField()
    starts_at = models.DateTimeField(default=timezone.now)
    weights = models.JSONField(help_text=_("Weights in arm order, summing to 1."))
    visitors = models.PositiveBigIntegerField(default=0, help_text=_("Visitors in the phase when computed."))
    chance_to_be_best = models.JSONField(null=True, blank=True)
    note = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["phase", "number"]
        constraints = [
            models.UniqueConstraint(fields=["phase", "number"], name="cmp_allocation_number_unique"),
        ]

    def __str__(self) -> str:
        return f"Allocation {self.number}"


class Exposure(TenantModel):
    """A visitor's first entry into a phase: their arm (NULL in the holdout), under which allocation, and the coarse
    attributes breakdowns group by. One per (phase, visitor): it keeps the visitor in their arm when a bandit
    moves the weights. `subject` links a consenting visitor's face features for reaction metrics; cut by the
    purger when that consent ends."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    phase = models.ForeignKey(ExperimentPhase, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="+")
    arm = models.ForeignKey(ExperimentArm, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    allocation_number = models.PositiveIntegerField(default=0)
    visitor_id = models.CharField(max_length=64)
    subject = models.ForeignKey("consent.Subject", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    device = models.CharField(max_length=16, blank=True, default="")
    language = models.CharField(max_length=16, blank=True, default="")
    exposed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["phase", "exposed_at"]
        constraints = [
            models.UniqueConstraint(fields=["phase", "visitor_id"], name="cmp_exposure_once_per_phase"),
        ]
        indexes = [
            models.Index(fields=["phase", "arm"], name="cmp_exposure_arm_idx"),
            models.Index(fields=["campaign", "visitor_id"], name="cmp_exposure_visitor_idx"),
            # Retention: exposures not yet cut loose (campaigns.purgers), by age.
            models.Index(fields=["organization", "exposed_at"], condition=~models.Q(visitor_id__startswith="~"),
                         name="cmp_exposure_org_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.visitor_id} in phase {self.phase_id}"
