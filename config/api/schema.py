"""The OpenAPI schema states what the API answers, errors included.

`VisageAutoSchema` documents, on every operation, each error status it can answer, all in the one error shape
(the `Error` component, see config.api.errors): 400 where it reads a body or query parameters, 401 and 403
where it authenticates, 404 where a path names an object or a list has pages, 415 where it reads a body, 429
where it is throttled, 503 everywhere (a service it needs is away). Views add the statuses only they know (409
for an ended session, 413 for a large upload) with `error_response`. Request text fields also say what DRF
accepts of them: no NUL character, and not blank after trimming unless blank is allowed.
"""

from __future__ import annotations

from typing import Any

import uritemplate
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "Stable and machine-readable: `invalid`, `not_found`, `consent_required`, ...",
        },
        "message": {"type": "string", "description": "For people; never contains personal data or frame bytes."},
        "details": {
            "type": "object",
            "additionalProperties": {},
            "description": "For `invalid`, the messages per field; otherwise what the code needs (e.g. "
            "`retry_after_seconds`, `reason`); empty when there is nothing to add.",
        },
        "path": {
            "type": "string",
            "description": "Only when the error is about one member of the request body: where it sits, in dotted "
            "form with list indexes, e.g. `rules[2].condition.all[1].value` or `variants[0].cta_url`.",
        },
    },
    "required": ["code", "message", "details"],
}


@extend_schema_field(ERROR_BODY_SCHEMA)
class _ErrorBodyField(serializers.DictField):
    """The inner object of an error response."""


class ErrorSerializer(serializers.Serializer):
    """Every response that is not a success: `{"error": {"code", "message", "details"}}`."""

    error = _ErrorBodyField()


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed or a field is invalid (`details` names the fields); nothing was written.",
    401: "No credentials, or unknown, malformed, expired or revoked ones.",
    403: "The credentials may not do this (a missing scope, a capture token on another endpoint), or the "
    "subject's consent does not allow it.",
    404: "No such object in the caller's organization (one answer for missing and not yours), or no such page.",
    409: "The object's state does not allow this now.",
    413: "The request body is larger than accepted; it was refused before it was read.",
    415: "The body's Content-Type is not one this operation reads.",
    429: "Too many requests; `Retry-After` says when to try again.",
    503: "A service the API needs (database, cache, frame store or broker) is unavailable; nothing was kept. "
    "Try again later.",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "The scheme to authenticate with."}},
    429: {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "Seconds to wait."}},
}

# DRF's CharField refuses NUL and, when it trims, text that is blank once trimmed.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NOT_BLANK_NO_NUL_PATTERN = r"^\s*[^\s\u0000][^\u0000]*$"


def error_response(description: str) -> OpenApiResponse:
    """An error status of one operation, with what it means there, in the one error shape."""
    return OpenApiResponse(response=ErrorSerializer, description=description)


class VisageAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error statuses each operation can answer."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, response in responses.items():
            if code >= "400" and "content" not in response:  # a view that gave only a description
                error = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["content"] = error["content"]
        for code in self._error_statuses():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    error_response(ERROR_DESCRIPTIONS[code]), str(code), direction=direction
                )
        for code, headers in _HEADERS.items():
            if str(code) in responses:
                responses[str(code)].setdefault("headers", {}).update(headers)
        return dict(sorted(responses.items()))

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        # Raw schemas (uploads) cannot say it themselves; a view that always reads a body says so.
        if body is not None and getattr(self.view, "request_body_required", False):
            body["required"] = True
        return body

    def _error_statuses(self) -> list[int]:
        """The errors that follow from the view's makeup: what it reads, who may call it, what it names."""
        codes = [503]
        reads_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        has_query = any(parameter["in"] == "query" for parameter in self._get_parameters())
        if reads_body or has_query:
            codes.append(400)
        if reads_body:
            codes.append(415)
        if self.view.get_authenticators():
            codes.append(401)
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes.append(403)
        if uritemplate.variables(self.path) or (self._is_list_view() and self._get_paginator() is not None):
            codes.append(404)
        if self.view.get_throttles():
            codes.append(429)
        return sorted(codes)

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict):
            return schema
        if isinstance(field, serializers.ListField) and not field.allow_empty:
            schema.setdefault("minItems", 1)
        if isinstance(field, serializers.IPAddressField) and "format" not in schema:
            protocol = field.protocol.lower()
            if protocol in ("ipv4", "ipv6"):
                schema["format"] = protocol
            else:
                schema["anyOf"] = [{"format": "ipv4"}, {"format": "ipv6"}]
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        outer, self._direction = getattr(self, "_direction", None), direction
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            self._direction = outer

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)
        # Added after DRF's validators: a pattern before them would make spectacular split blank values out.
        if (
            getattr(self, "_direction", None) == "request"
            and isinstance(field, serializers.CharField)
            and not isinstance(field, serializers.IPAddressField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum", "oneOf", "anyOf"} & schema.keys()
        ):
            trims_to_blank = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NOT_BLANK_NO_NUL_PATTERN if trims_to_blank else NO_NUL_PATTERN
