"""The event feed's query: a cursor, a page size and a type filter, each refused with a 400 that says why."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import QueryDict
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from consent.models import OutboxEvent
from consent.selectors import EVENT_FEED_DEFAULT_LIMIT, EVENT_FEED_MAX_LIMIT

# A sequence is a PositiveBigIntegerField: a cursor past it names no event there can ever be.
MAX_SEQUENCE = 2**63 - 1


class UnknownEventType(APIException):
    """A `type` the feed does not have; the details list the known ones."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "unknown_event_type"

    def __init__(self, unknown: list[str]) -> None:
        known = ", ".join(OutboxEvent.Type.values)
        super().__init__(detail=f"Unknown event type: {', '.join(unknown)}. Known: {known}.")
        self.details = {"unknown": unknown, "known": list(OutboxEvent.Type.values)}
        self.path = "type"


@dataclass(frozen=True)
class EventFeedQuery:
    after: int
    limit: int
    types: list[str] | None


def _whole_number(query: QueryDict, name: str, *, minimum: int, maximum: int, default: int) -> int:
    values = query.getlist(name)
    if not values:
        return default
    text = values[0]
    if len(values) > 1 or not text.isascii() or not text.isdigit() or len(text) > 19 \
            or not minimum <= int(text) <= maximum:
        raise ValidationError({name: [f"Give {name} once, as a whole number from {minimum} to {maximum}."]})
    return int(text)


def event_feed_query(query: QueryDict) -> EventFeedQuery:
    """`after` (exclusive cursor, default 0: from the start), `limit` (1 to EVENT_FEED_MAX_LIMIT) and `type` (one
    or several, comma-separated; absent: every type)."""
    after = _whole_number(query, "after", minimum=0, maximum=MAX_SEQUENCE, default=0)
    limit = _whole_number(query, "limit", minimum=1, maximum=EVENT_FEED_MAX_LIMIT, default=EVENT_FEED_DEFAULT_LIMIT)
    types = None
    if "type" in query:
        values = query.getlist("type")
        types = values[0].split(",")
        if len(values) > 1 or not all(types):
            raise ValidationError({"type": ["Give type once: one or more event types, comma-separated."]})
        unknown = sorted(set(types) - set(OutboxEvent.Type.values))
        if unknown:
            raise UnknownEventType(unknown)
        types = sorted(set(types))
    return EventFeedQuery(after=after, limit=limit, types=types)
