"""Plain typed makers for face-analysis test data: consented subjects, campaigns, sessions and real frames."""

from __future__ import annotations

import io
import itertools
from functools import cache

import numpy as np

from accounts.models import Organization
from campaigns.models import Campaign
from consent.models import Grant, NoticeVersion, RetentionPolicy, Subject
from faceanalysis.models import CaptureSession

_counter = itertools.count(1)
ALL_PURPOSES = ("face_analysis", "personalization")


def make_campaign(
    organization: Organization, *, purposes: tuple[str, ...] = ("face_analysis",),
    derived_attributes: tuple[str, ...] | None = None,
) -> Campaign:
    """An active campaign whose camera needs `purposes`, deriving `derived_attributes` (None: everything)."""
    from consent import derived

    return Campaign.objects.create(
        organization=organization, name=f"Campaign {next(_counter)}", required_purposes=",".join(sorted(purposes)),
        derived_attributes=derived.canonical(derived.ALL_KEYS if derived_attributes is None else derived_attributes),
        status=Campaign.Status.RUNNING,
    )


def make_published_notice(organization: Organization, *, purposes: tuple[str, ...] = ALL_PURPOSES) -> NoticeVersion:
    from consent.services import notice_draft_create, notice_publish, retention_policy_set

    if not RetentionPolicy.objects.filter(organization=organization).exists():
        retention_policy_set(organization=organization, feature_retention_days=365, grant_validity_days=365)
    notice = notice_draft_create(
        organization=organization, language="en", purposes=purposes, controller_name=f"{organization.name} GmbH",
        controller_contact="privacy@example.test",
    )
    return notice_publish(notice=notice)


def make_consented_subject(
    organization: Organization, *, purposes: tuple[str, ...] = ALL_PURPOSES
) -> tuple[Subject, Grant]:
    """A subject with live grants for `purposes`; returns the face-analysis grant (or the first)."""
    from consent.services import consent_grant, subject_create

    notice = (
        NoticeVersion.objects.filter(organization=organization, status=NoticeVersion.Status.PUBLISHED,
                                     purposes=",".join(sorted(purposes))).first()
        or make_published_notice(organization, purposes=purposes)
    )
    subject = subject_create(organization=organization)
    grants = consent_grant(
        organization=organization, subject=subject, notice=notice, purposes=purposes, channel="partner_api",
        evidence={"ip_prefix": "203.0.113.0/24", "user_agent_class": "browser/desktop"},
    )
    face = [g for g in grants if g.purpose == "face_analysis"]
    return subject, (face or grants)[0]


def make_capture_session(
    organization: Organization, *, source: str = "browser_stream", media_ref: str = "video-42",
    purposes: tuple[str, ...] = ALL_PURPOSES, campaign: Campaign | None = None,
) -> tuple[CaptureSession, str]:
    """A consented subject's open capture session (in `campaign`, or a new one) and its capture token."""
    from campaigns.services import capture_session_open

    subject, _ = make_consented_subject(organization, purposes=purposes)
    return capture_session_open(
        organization=organization, subject=subject, campaign=campaign or make_campaign(organization), source=source,
        media_ref=media_ref,
    )


def withdraw(subject: Subject, purposes: tuple[str, ...] = ("face_analysis",)) -> None:
    from consent.services import consent_withdraw

    consent_withdraw(organization=subject.organization, subject=subject, purposes=purposes, channel="partner_api")


@cache
def astronaut_rgb() -> np.ndarray:
    """skimage's astronaut: a real, smiling, frontal face (512x512 RGB)."""
    from skimage.data import astronaut

    return astronaut()


def encode(rgb: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def astronaut_jpeg(*, quality: int = 90, size: tuple[int, int] | None = None, comment: bytes = b"") -> bytes:
    """The astronaut as a JPEG, optionally letterboxed into `size` (w, h); `comment` makes the bytes unique."""
    rgb = astronaut_rgb()
    if size is not None:
        import cv2

        width, height = size
        scale = min(width / rgb.shape[1], height / rgb.shape[0])
        small = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
        canvas = np.full((height, width, 3), 40, dtype=np.uint8)
        top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
        canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
        rgb = canvas
    options = {"quality": quality}
    if comment:
        options["comment"] = comment
    return encode(rgb, "JPEG", **options)


def make_video(*, frames: int = 10, fps: int = 5, codec: str = "libvpx", container: str = "webm") -> bytes:
    """A short video of the astronaut encoded in memory with PyAV."""
    import av

    buffer = io.BytesIO()
    rgb = astronaut_rgb()[:480, :480]
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()
