"""Base of the face-analysis API views (here and in campaigns' capture-session start): capture tokens accepted where
a view allows them, a session found only within the caller's reach, domain errors rendered in the one shape."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.settings import api_settings

from accounts.api.base import OrganizationAPIView, found_or_404
from accounts.models import Organization
from accounts.permissions import HasOrganization
from config.api.errors import DomainErrorsMixin
from faceanalysis import selectors
from faceanalysis.api.authentication import CaptureCredential, CaptureTokenAuthentication
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession


class HasOrganizationOrCaptureToken(BasePermission):
    """API keys and members as everywhere; a capture token only on views that take one."""

    message = HasOrganization.message

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, CaptureCredential):
            return bool(getattr(view, "capture_token_allowed", False))
        allowed = HasOrganization()
        result = allowed.has_permission(request, view)
        self.message = allowed.message
        return result


class FaceAnalysisAPIView(DomainErrorsMixin, OrganizationAPIView):
    """Base of the face-analysis views: capture tokens accepted where allowed, domain errors rendered."""

    authentication_classes = [CaptureTokenAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    domain_errors = (FaceAnalysisError,)
    permission_classes = [HasOrganizationOrCaptureToken]
    capture_token_allowed = False

    @property
    def organization(self) -> Organization:
        if isinstance(self.request.auth, CaptureCredential):
            return self.request.auth.session.organization
        return super().organization

    def get_session(self, session_id: UUID) -> CaptureSession:
        """The caller's session; a token's own only. Missing and foreign are the same 404."""
        if isinstance(self.request.auth, CaptureCredential):
            session = self.request.auth.session
            return found_or_404(session if str(session.public_id) == str(session_id) else None)
        return found_or_404(selectors.capture_session_get(organization=self.organization, public_id=session_id))

