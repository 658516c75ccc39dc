"""The campaign schedule: beat starts a scheduled campaign at its start when it is ready (an unready one stays
scheduled and is reported), ends a running or paused one at its end, and a second pass changes nothing."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_schedules_advance
from config.celery import app as visage_app
from tests.factories import make_campaign, make_notice

pytestmark = pytest.mark.django_db


def _campaign(org, status: str, *, starts=None, ends=None) -> Campaign:
    campaign = make_campaign(org, status=status)
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=starts, ends_at=ends)
    return campaign


def _status(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


def test_a_due_ready_scheduled_campaign_starts_running_and_a_later_one_waits(org_a) -> None:
    make_notice(org_a)
    now = timezone.now()
    due = _campaign(org_a, "scheduled", starts=now - timedelta(seconds=1))
    later = _campaign(org_a, "scheduled", starts=now + timedelta(minutes=5))
    result = campaign_schedules_advance(now=now)
    assert result.started == (due.pk,) and result.not_ready == () and result.ended == ()
    assert _status(due) == "running" and _status(later) == "scheduled"


def test_a_due_scheduled_campaign_that_is_not_ready_stays_scheduled_and_is_reported(org_a) -> None:
    now = timezone.now()
    unready = _campaign(org_a, "scheduled", starts=now - timedelta(minutes=1))  # no notice, no retention policy
    result = campaign_schedules_advance(now=now)
    assert result.not_ready == (unready.pk,) and result.started == ()
    assert _status(unready) == "scheduled"
    make_notice(org_a)
    assert campaign_schedules_advance(now=now).started == (unready.pk,)
    assert _status(unready) == "running"


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_running_or_paused_campaign_ends_at_its_end(org_a, status: str) -> None:
    now = timezone.now()
    over = _campaign(org_a, status, ends=now)
    going = _campaign(org_a, status, ends=now + timedelta(seconds=1))
    assert campaign_schedules_advance(now=now).ended == (over.pk,)
    assert _status(over) == "ended" and _status(going) == status


def test_drafts_are_never_started_or_ended_by_the_schedule(org_a) -> None:
    make_notice(org_a)
    now = timezone.now()
    draft = _campaign(org_a, "draft", starts=now - timedelta(hours=2), ends=now - timedelta(hours=1))
    result = campaign_schedules_advance(now=now)
    assert result.started == () and result.ended == ()
    assert _status(draft) == "draft"


def test_a_scheduled_campaign_whose_window_passed_ends_without_running(org_a) -> None:
    make_notice(org_a)
    now = timezone.now()
    missed = _campaign(org_a, "scheduled", starts=now - timedelta(hours=2), ends=now - timedelta(hours=1))
    result = campaign_schedules_advance(now=now)
    assert result.ended == (missed.pk,) and result.started == ()
    assert _status(missed) == "ended"


def test_a_second_pass_changes_nothing(org_a) -> None:
    make_notice(org_a)
    now = timezone.now()
    _campaign(org_a, "scheduled", starts=now - timedelta(seconds=5))
    _campaign(org_a, "running", ends=now - timedelta(seconds=5))
    first = campaign_schedules_advance(now=now)
    assert len(first.started) == 1 and len(first.ended) == 1
    second = campaign_schedules_advance(now=now)
    assert second.started == () and second.ended == () and second.not_ready == ()


def test_beat_runs_the_schedule_task_every_minute_and_it_advances_campaigns(org_a) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["campaigns-advance-schedules"]
    assert entry["schedule"] == 60.0
    visage_app.loader.import_default_modules()
    task = visage_app.tasks[entry["task"]]
    assert task.name == "campaigns.advance_schedules"
    make_notice(org_a)
    now = timezone.now()
    due = _campaign(org_a, "scheduled", starts=now - timedelta(seconds=1))
    over = _campaign(org_a, "paused", ends=now - timedelta(seconds=1))
    assert task.apply().get() == {"started": 1, "ended": 1, "not_ready": 0}
    assert _status(due) == "running" and _status(over) == "ended"
    assert task.apply().get() == {"started": 0, "ended": 0, "not_ready": 0}
