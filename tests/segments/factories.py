"""Rows for segment tests, written directly (fast enough for hypothesis and a week of simulated activity): a
subject with grants, capture sessions, feature rows with chosen values and times, and events."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from campaigns.models import Campaign, Decision, Event, Variant
from consent.models import Grant, NoticeVersion, Purpose, Subject
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from tests.factories import make_campaign, make_grant, make_notice, make_subject, make_variant

ALL_PURPOSES = (Purpose.FACE_ANALYSIS, Purpose.PERSONALIZATION, Purpose.PARTNER_SHARING)


class World:
    """One organization's campaign, its default variant and a notice for every purpose."""

    def __init__(self, organization, *, campaign: Campaign | None = None) -> None:
        self.organization = organization
        self.campaign = campaign or make_campaign(organization, purposes=("face_analysis", "personalization"))
        self.variant: Variant = self.campaign.variants.filter(is_default=True).first() or make_variant(
            self.campaign, key="standard", default=True
        )
        self.notice: NoticeVersion = make_notice(organization, purposes=tuple(p.value for p in ALL_PURPOSES))

    def subject(self, *, purposes: tuple[str, ...] = tuple(ALL_PURPOSES), partner_user_id: str | None = None,
                created_at: datetime | None = None) -> Subject:
        subject = make_subject(self.organization, partner_user_id=partner_user_id)
        if purposes:
            make_grant(subject, self.notice, purposes=purposes)
        if created_at is not None:
            Subject.objects.filter(pk=subject.pk).update(created_at=created_at)
            subject.created_at = created_at
        return subject

    def session(self, subject: Subject, *, started_at: datetime | None = None,
                campaign: Campaign | None = None) -> CaptureSession:
        grant = Grant.objects.filter(subject=subject, purpose=Purpose.FACE_ANALYSIS).order_by("-granted_at").first()
        if grant is None:  # a subject without face consent: a session from before it ended
            grant = make_grant(subject, self.notice, purposes=(Purpose.FACE_ANALYSIS,))
        session = CaptureSession.objects.create(
            organization=self.organization, subject=subject, campaign=campaign or self.campaign, grant=grant,
            purposes="face_analysis", source=CaptureSession.Source.BROWSER_STREAM,
        )
        if started_at is not None:
            CaptureSession.objects.filter(pk=session.pk).update(started_at=started_at)
        return session

    def frame(self, session: CaptureSession, *, at: datetime, face_count: int = 1, quality_ok: bool = True,
              looking: bool | None = None, smile: float | None = None, expression: str = "",
              expression_confidence: float | None = None, age_years: float | None = None, gender: str = "",
              gender_confidence: float | None = None) -> FrameFeatures:
        frame = Frame.objects.create(
            organization=self.organization, session=session, subject_id=session.subject_id,
            grant_id=session.grant_id, status=Frame.Status.ANALYZED, content_type="image/jpeg", byte_size=1,
            width=1, height=1, queue="analysis", received_at=at, finished_at=at,
        )
        return FrameFeatures.objects.create(
            organization=self.organization, frame=frame, session=session, subject_id=session.subject_id,
            grant_id=session.grant_id, face_count=face_count, quality_ok=quality_ok, looking_at_screen=looking,
            smile=smile, expression=expression, expression_confidence=expression_confidence, age_years=age_years,
            gender=gender, gender_confidence=gender_confidence, received_at=at, analyzed_at=at, latency_ms=1.0,
        )

    def event(self, subject: Subject | None, kind: str, *, at: datetime, name: str = "",
              value: Decimal | None = None, campaign: Campaign | None = None) -> Event:
        campaign = campaign or self.campaign
        variant = self.variant if campaign == self.campaign else campaign.variants.first()
        decision = Decision.objects.create(
            organization=self.organization, campaign=campaign, variant=variant, subject=subject,
            visitor_id=f"visitor-{uuid.uuid4().hex}", reason=Decision.Reason.DEFAULT, channel="api",
        )
        return Event.objects.create(
            organization=self.organization, decision=decision, campaign=campaign, variant=variant, subject=subject,
            kind=kind, name=name, value=value, client_event_id=uuid.uuid4().hex, occurred_at=at, received_at=at,
        )
