"""The auditor's view of retention (`manage.py retention_audit`): per organization and category, the oldest row
still held, the policy, the cap that applies, the period a run applies, and whether anything is kept too long.

A violation is a row older than the effective period plus one run interval (VISAGE_RETENTION_RUN_SECONDS: a
row that expired just after a run goes at the next one), or older than the legal cap at all. Frame bytes are no
table: the frame store's TTL keeps them (capped at 10 minutes), so they are shown without a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from consent.purging import retention_oldest, retention_targets
from consent.retention import CATEGORIES, Cap, Category, effective_period
from consent.selectors import frame_bytes_ttl_seconds, retention_policy_in_force


@dataclass(frozen=True, slots=True)
class RetentionAuditRow:
    """One organization's one category, as the auditor's command prints it."""

    organization: Organization
    category: Category
    held_in_tables: bool
    oldest: datetime | None
    policy: int  # as stored, in the category's unit
    cap: Cap
    effective: int  # the policy capped at run time
    violation: str  # empty when none
    frame_ttl_seconds: int | None = None  # frame bytes: the TTL the frame store applies

    def describe(self) -> str:
        unit = "s" if self.category.unit == "seconds" else "d"
        oldest = self.oldest.isoformat(timespec="seconds") if self.oldest else "none"
        if not self.held_in_tables:
            oldest = f"not a table (frame store TTL {self.frame_ttl_seconds} s)"
        verdict = f"VIOLATION: {self.violation}" if self.violation else "ok"
        return (
            f"{self.organization.slug}  {self.category.key:<16} oldest={oldest}  policy={self.policy} {unit}  "
            f"cap={self.cap.value} {unit} ({self.cap.name})  effective={self.effective} {unit}  {verdict}"
        )


def retention_audit(*, organizations: list[Organization], now: datetime | None = None) -> list[RetentionAuditRow]:
    """Every category of each organization, with its verdict. Cheap on big tables: one index-backed min() per
    retention target (consent.purging.retention_oldest)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.VISAGE_RETENTION_RUN_SECONDS)
    rows = []
    for organization in organizations:
        policy = retention_policy_in_force(organization=organization)
        for category in CATEGORIES:
            effective, cap = effective_period(category, policy.period(category), policy.jurisdiction)
            held = bool(retention_targets(category.key))
            oldest = retention_oldest(organization_id=organization.pk, category=category.key) if held else None
            violation = ""
            if oldest is not None:
                age = now - oldest
                if age > timedelta(seconds=category.seconds(cap.value)):
                    violation = f"older than the legal cap ({cap.name})"
                elif age > timedelta(seconds=category.seconds(effective)) + grace:
                    violation = "older than the effective period plus one run interval"
            ttl = None
            if category.key == "frame_bytes":
                ttl = frame_bytes_ttl_seconds(policy.frame_bytes_seconds if policy.pk else None)
            rows.append(RetentionAuditRow(organization, category, held, oldest, policy.period(category), cap,
                                          effective, violation, ttl))
    return rows
