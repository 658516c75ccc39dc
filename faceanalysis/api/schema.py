"""Tells drf-spectacular how capture tokens authenticate."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class CaptureTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "faceanalysis.api.authentication.CaptureTokenAuthentication"
    name = "captureToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "vcs_<secret>"}
