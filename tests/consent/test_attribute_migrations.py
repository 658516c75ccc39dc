"""Existing data after the attribute migrations: published notices written before gender was named cover
everything but gender (and no expression scores where they had no emotion-recognition statement), drafts will
name everything, and existing campaigns keep deriving what those notices cover, so their pages keep working."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("consent", "0002_ledger_append_only_triggers"), ("campaigns", "0001_campaign")]
AFTER = [("consent", "0006_one_published_notice_per_attribute_choice"),
         ("campaigns", "0003_campaign_derived_attributes")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_notices_and_campaigns_get_what_their_texts_named() -> None:
    old = _migrate(BEFORE)
    try:
        Organization = old.get_model("accounts", "Organization")
        NoticeVersion = old.get_model("consent", "NoticeVersion")
        Campaign = old.get_model("campaigns", "Campaign")
        org = Organization.objects.create(name="Old Shop", slug="old-shop")
        common = {
            "organization": org, "controller_name": "C", "controller_contact": "c@x", "created_at": timezone.now()
        }
        published = NoticeVersion.objects.create(
            language="en", purposes="face_analysis", status="published", analyses_expressions=True, **common
        )
        no_expressions = NoticeVersion.objects.create(
            language="de", purposes="face_analysis", status="published", analyses_expressions=False, **common
        )
        draft = NoticeVersion.objects.create(
            language="en", purposes="face_analysis", version=2, status="draft", analyses_expressions=True, **common
        )
        campaign = Campaign.objects.create(organization=org, name="Old", required_purposes="face_analysis")

        new = _migrate(AFTER)
        NoticeVersion = new.get_model("consent", "NoticeVersion")
        Campaign = new.get_model("campaigns", "Campaign")
        named = dict(NoticeVersion.objects.values_list("pk", "derived_attributes"))
        assert named[published.pk] == "face_position,head_pose,gaze,eyes,quality,expression,age"
        assert named[no_expressions.pk] == "face_position,head_pose,gaze,eyes,quality,age"
        assert named[draft.pk] == "face_position,head_pose,gaze,eyes,quality,expression,age,gender"
        existing = Campaign.objects.get(pk=campaign.pk)
        assert existing.derived_attributes == named[published.pk]  # still covered by its published notice
        assert existing.required_purposes == "face_analysis" and existing.optional_purposes == ""
        fresh = Campaign.objects.create(organization_id=org.pk, name="New", required_purposes="face_analysis")
        assert fresh.derived_attributes.endswith(",gender")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
