"""The marketer's home in the admin, as reads: running campaigns with their visitors, conversion rate and the arm
ahead, live capture sessions, the consent rate of the last seven days, and what needs attention (a sample-ratio
mismatch, a running campaign whose consent page visitors cannot see, no retention policy, frames failing).

Scoped like every admin list: a member's organization, every organization for an operator, nothing for anyone
else. The numbers are cheap counts for a glance; the campaign's report has the statistics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import organization_for_user
from campaigns.models import Campaign, Decision, Event, Experiment, ExperimentPhase
from campaigns.results import PhaseGlance, phase_glance
from campaigns.selectors import campaign_readiness
from campaigns.statistics import SRM_THRESHOLD
from consent.models import LedgerEntry, RetentionPolicy
from faceanalysis.models import CaptureSession, Frame

LIVE_SESSION_WINDOW = timedelta(hours=1)  # a session not ended and started within it counts as live
CONSENT_DAYS = 7
FRAME_WINDOW = timedelta(hours=24)
FRAME_FAILURE_SHARE = 0.05  # above this share of failed frames in FRAME_WINDOW, analysis needs a look
FRAME_FAILURE_MIN_FRAMES = 20  # below this many frames a share says little
LIVE_SESSIONS_SHOWN = 10


@dataclass(frozen=True)
class DashboardScope:
    """Whose rows the dashboard reads: one organization, or every one (an operator). Fails closed: no
    organization and not an operator, no rows."""

    organization: Organization | None
    everyone: bool = False

    def rows(self, queryset: QuerySet) -> QuerySet:
        if self.everyone:
            return queryset
        if self.organization is None:
            return queryset.none()
        return queryset.filter(organization=self.organization)

    def organizations(self) -> QuerySet[Organization]:
        if self.everyone:
            return Organization.objects.order_by("name")
        if self.organization is None:
            return Organization.objects.none()
        return Organization.objects.filter(pk=self.organization.pk)


def dashboard_scope(*, user) -> DashboardScope:
    """An operator sees every organization; a member theirs; anyone else nothing."""
    if user is not None and user.is_authenticated and user.is_active and user.is_superuser:
        return DashboardScope(None, everyone=True)
    return DashboardScope(organization_for_user(user))


@dataclass(frozen=True)
class RunningCampaign:
    """A running campaign at a glance: visitors of its running experiment's current phase (else the distinct
    visitors it decided for), how many converted, and the arm with the highest observed conversion rate."""

    campaign: Campaign
    experiment: Experiment | None
    visitors: int
    conversions: int
    leader: str | None  # the arm's variant name; observed, not a significance claim

    @property
    def rate(self) -> float | None:
        return self.conversions / self.visitors if self.visitors else None


@dataclass(frozen=True)
class ConsentDay:
    """Consent decisions of one day: granted / (granted + refused); withdrawals are not decisions of that day's
    visitors, so they are left out."""

    day: date
    granted: int
    refused: int

    @property
    def rate(self) -> float | None:
        decided = self.granted + self.refused
        return self.granted / decided if decided else None


@dataclass(frozen=True)
class AttentionItem:
    """Something to look at, with the campaign or organization it concerns and a sentence saying why."""

    kind: str  # "srm" | "not_ready" | "no_retention_policy" | "frames_failing"
    organization: Organization
    message: str
    campaign: Campaign | None = None


@dataclass(frozen=True)
class Dashboard:
    """Everything the admin's home shows above the app list."""

    scope: DashboardScope
    running: list[RunningCampaign]
    live_sessions: list[CaptureSession]
    live_session_count: int
    consent_days: list[ConsentDay]
    attention: list[AttentionItem] = field(default_factory=list)

    @property
    def consent_rate(self) -> float | None:
        return ConsentDay(
            date.min, sum(d.granted for d in self.consent_days), sum(d.refused for d in self.consent_days)
        ).rate


def _current_phase(experiment: Experiment) -> ExperimentPhase | None:
    return ExperimentPhase.objects.filter(experiment=experiment).order_by("-number").first()


@dataclass(frozen=True)
class RunningExperiment:
    """A running experiment of the scope with its current phase's glance (None before its first phase)."""

    experiment: Experiment
    glance: PhaseGlance | None


def running_experiments(*, scope: DashboardScope) -> dict[int, RunningExperiment]:
    """The scope's running experiments by campaign id, each phase counted once for the whole home page."""
    running = {}
    experiments = scope.rows(Experiment.objects.filter(status=Experiment.Status.RUNNING)).select_related(
        "campaign__organization"
    )
    for experiment in experiments.order_by("name", "pk"):
        phase = _current_phase(experiment)
        running[experiment.campaign_id] = RunningExperiment(experiment, phase_glance(phase) if phase else None)
    return running


def _experiment_glance(campaign: Campaign, running: RunningExperiment) -> RunningCampaign:
    """Visitors and converters of the arms of the current phase, counted as the report counts them."""
    experiment, glance = running.experiment, running.glance
    if glance is None:
        return RunningCampaign(campaign, experiment, 0, 0, None)
    counts = glance.counts
    names = {arm.pk: arm.variant.name for arm in experiment.arms.select_related("variant")}
    rated = [(x / n, names.get(arm_id, "")) for arm_id, (n, x) in counts.items() if n]
    best = max(rated, default=None)
    leader = best[1] if best is not None and best[0] > 0 else None
    return RunningCampaign(
        campaign, experiment, sum(n for n, _ in counts.values()), sum(x for _, x in counts.values()), leader
    )


def _decision_glance(campaign: Campaign) -> RunningCampaign:
    visitors = Decision.objects.filter(campaign=campaign).values("visitor_id").distinct().count()
    conversions = (
        Event.objects.filter(campaign=campaign, kind=Event.Kind.CONVERSION)
        .values("decision__visitor_id").distinct().count()
    )
    return RunningCampaign(campaign, None, visitors, conversions, None)


def running_campaigns(*, scope: DashboardScope, experiments: dict[int, RunningExperiment]) -> list[RunningCampaign]:
    """The scope's running campaigns, each with its running experiment's numbers (or its decisions')."""
    campaigns = scope.rows(Campaign.objects.filter(status=Campaign.Status.RUNNING)).select_related("organization")
    out = []
    for campaign in campaigns.order_by("name", "pk"):
        running = experiments.get(campaign.pk)
        out.append(_experiment_glance(campaign, running) if running else _decision_glance(campaign))
    return out


def live_sessions(*, scope: DashboardScope, now: datetime) -> QuerySet[CaptureSession]:
    """Capture sessions not ended and started within the last hour, newest first."""
    return (
        scope.rows(CaptureSession.objects.filter(ended_at__isnull=True, started_at__gte=now - LIVE_SESSION_WINDOW))
        .select_related("campaign").order_by("-started_at")
    )


def consent_days(*, scope: DashboardScope, now: datetime) -> list[ConsentDay]:
    """Granted and refused consent decisions per day of the last seven (today included), in the site's time
    zone, from the consent ledger."""
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    first = today - timedelta(days=CONSENT_DAYS - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    counts = (
        scope.rows(LedgerEntry.objects.filter(
            event__in=(LedgerEntry.Event.GRANTED, LedgerEntry.Event.REFUSED), occurred_at__gte=start,
            occurred_at__lte=now,
        ))
        .annotate(day=TruncDate("occurred_at", tzinfo=tz)).values("day", "event").annotate(n=Count("pk")).order_by()
    )
    table: dict[date, dict[str, int]] = defaultdict(dict)
    for row in counts:
        table[row["day"]][row["event"]] = row["n"]
    return [
        ConsentDay(day, table[day].get(LedgerEntry.Event.GRANTED, 0), table[day].get(LedgerEntry.Event.REFUSED, 0))
        for day in (first + timedelta(days=i) for i in range(CONSENT_DAYS))
    ]


def _failing_frames(scope: DashboardScope, now: datetime) -> list[tuple[Organization, int, int]]:
    rows = (
        scope.rows(Frame.objects.filter(received_at__gte=now - FRAME_WINDOW))
        .values("organization_id")
        .annotate(total=Count("pk"), failed=Count("pk", filter=Q(status=Frame.Status.FAILED)))
        .order_by()
    )
    flagged = {
        row["organization_id"]: (row["failed"], row["total"])
        for row in rows
        if row["total"] >= FRAME_FAILURE_MIN_FRAMES and row["failed"] / row["total"] > FRAME_FAILURE_SHARE
    }
    organizations = Organization.objects.in_bulk(list(flagged))
    return [(organizations[pk], *flagged[pk]) for pk in sorted(flagged)]


def attention_items(
    *, scope: DashboardScope, now: datetime, experiments: dict[int, RunningExperiment]
) -> list[AttentionItem]:
    """What needs a look, most urgent kinds first. A sample-ratio mismatch is the phase's check in
    campaigns.results: per allocation period, the arms' visitors against that period's weights."""
    items: list[AttentionItem] = []
    for running in experiments.values():
        experiment = running.experiment
        p = running.glance.srm["p_value"] if running.glance is not None else None
        if p is not None and p < SRM_THRESHOLD:
            items.append(AttentionItem(
                "srm", experiment.campaign.organization,
                f"The experiment “{experiment.name}” has a sample ratio mismatch (p < {SRM_THRESHOLD}): its arms "
                "did not get the visitors their weights promise, so its results cannot be trusted until the cause "
                "is found.",
                experiment.campaign,
            ))
    running = scope.rows(Campaign.objects.filter(status=Campaign.Status.RUNNING)).select_related("organization")
    for campaign in running.order_by("name", "pk"):
        readiness = campaign_readiness(campaign=campaign)
        if not readiness.ready:
            items.append(AttentionItem(
                "not_ready", campaign.organization,
                f"“{campaign.name}” is running, but visitors cannot see its consent page. Missing: "
                + " ".join(readiness.missing),
                campaign,
            ))
    with_policy = set(scope.rows(RetentionPolicy.objects.all()).values_list("organization_id", flat=True))
    for organization in scope.organizations():
        if organization.pk not in with_policy:
            items.append(AttentionItem(
                "no_retention_policy", organization,
                f"{organization.name} has no retention policy: no notice can be published and no consent page "
                "shown until one is set.",
            ))
    for organization, failed, total in _failing_frames(scope, now):
        items.append(AttentionItem(
            "frames_failing", organization,
            f"{failed} of {total} frames ({failed / total:.0%}) failed analysis in the last 24 hours.",
        ))
    return items


def dashboard_for(*, user, now: datetime | None = None) -> Dashboard:
    """The dashboard of what `user` may see."""
    now = now or timezone.now()
    scope = dashboard_scope(user=user)
    experiments = running_experiments(scope=scope)
    sessions = live_sessions(scope=scope, now=now)
    return Dashboard(
        scope=scope,
        running=running_campaigns(scope=scope, experiments=experiments),
        live_sessions=list(sessions[:LIVE_SESSIONS_SHOWN]),
        live_session_count=sessions.count(),
        consent_days=consent_days(scope=scope, now=now),
        attention=attention_items(scope=scope, now=now, experiments=experiments),
    )
