"""Campaigns' Celery tasks. Thin: one service call each."""

from celery import shared_task
from django.utils import timezone

from campaigns.services import campaign_schedules_advance

ADVANCE_SCHEDULES = "campaigns.advance_schedules"


@shared_task(name=ADVANCE_SCHEDULES, acks_late=True, time_limit=120, soft_time_limit=100, ignore_result=True)
def advance_schedules() -> dict[str, int]:
    """Periodic: start scheduled campaigns that are due and ready, end those whose time is over."""
    result = campaign_schedules_advance(now=timezone.now())
    return {"started": len(result.started), "ended": len(result.ended), "not_ready": len(result.not_ready)}


REWEIGHT_BANDITS = "campaigns.reweight_bandits"


@shared_task(name=REWEIGHT_BANDITS, acks_late=True, time_limit=300, soft_time_limit=240, ignore_result=True)
def reweight_bandits() -> dict[str, int]:
    """Periodic: reweight each running bandit whose cadence (default hourly) has passed since its last weights."""
    from campaigns.experiments import bandits_reweight_due

    return {"reweighted": len(bandits_reweight_due(now=timezone.now()))}
