"""Capture-token authentication: the end user's page holds a token for one capture session only.

`Authorization: Bearer vcs_<secret>` or `X-Capture-Token: vcs_<secret>`. The token opens one session: post
frames and video to it, read it, end it. Nothing else of the organization is reachable with it.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from faceanalysis.models import CaptureSession
from faceanalysis.selectors import capture_session_for_token
from faceanalysis.services.capture import CAPTURE_TOKEN_PREFIX


class CaptureCredential:
    """`request.auth` of a capture-token call: the one session it opens."""

    def __init__(self, session: CaptureSession) -> None:
        self.session = session

    @property
    def rate_limit_key(self) -> str:
        """The API rate limit's bucket: this session's own, never one shared by every capture token."""
        return f"capture:{self.session.pk}"

    @property
    def organization_id(self) -> int:
        """The organization whose rate ceiling this session's calls count against."""
        return self.session.organization_id


class CapturePrincipal:
    """`request.user` of a capture-token call: authenticated for one session, never staff."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, session: CaptureSession) -> None:
        self.session = session

    def __str__(self) -> str:
        return f"capture:{self.session.public_id}"


class CaptureTokenAuthentication(authentication.BaseAuthentication):
    """Finds the session by the token's hash; unknown and expired tokens answer 401."""

    def authenticate(self, request: Request) -> tuple[CapturePrincipal, CaptureCredential] | None:
        raw = request.headers.get("X-Capture-Token", "")
        header = request.headers.get("Authorization", "").split()
        if not raw and len(header) == 2 and header[0].lower() == "bearer":
            raw = header[1]
        if not raw.startswith(f"{CAPTURE_TOKEN_PREFIX}_"):
            return None  # not ours: an API key or a session goes to the next authenticator
        session = capture_session_for_token(token=raw)
        if session is None:
            raise exceptions.AuthenticationFailed("Unknown or expired capture token.")
        return CapturePrincipal(session), CaptureCredential(session)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
