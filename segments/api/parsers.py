"""The body of a list upload as text: CSV or plain text, one partner user id per line, UTF-8. The JSON parser of
the API refuses what no later step can store; this one does the same for text (NUL, bytes that are not UTF-8)
and reads no more than DATA_UPLOAD_MAX_MEMORY_SIZE."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from config.api.errors import RequestTooLarge


class PlainTextParser(BaseParser):
    """A text/plain body as one string (a leading byte-order mark dropped)."""

    media_type = "text/plain"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> str:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8 text.") from None
        if "\x00" in text:
            raise ParseError("The body must not contain NUL characters.")
        return text


class CsvTextParser(PlainTextParser):
    """A text/csv body of one column, as one string."""

    media_type = "text/csv"
