"""The API's JSON parser: a body is valid JSON that every later step can take, or a 400 before any view runs.

On top of DRF's strict parser (no NaN or Infinity): numbers that overflow to infinity (`1e400`), duplicate keys
(two parsers could read the body differently), nesting deeper than any request of this API, NUL characters
(PostgreSQL refuses them in text, so they would fail a query later) and lone surrogates (not encodable as
UTF-8) are refused.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class _Refused(ValueError):
    """A JSON document that parses but is refused; the message says why."""


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Refused(f"The number {text[:40]} is out of range.")
    return number


def _no_constants(name: str) -> float:
    raise _Refused(f"{name} is not a JSON number.")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"The key {key[:40]!r} appears twice in one object.")
            seen.add(key)
    return result


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Refused("Strings must not contain NUL characters.")
    if not text.isascii():  # isascii() is a flag check; only non-ASCII strings pay for the encode
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("Strings must be valid Unicode (no lone surrogates).") from None


def check_document(value: Any) -> None:
    """Refuse too-deep nesting and strings that no later step can store; iterative, so depth cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _Refused(f"JSON nested deeper than {MAX_DEPTH} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the refusals above; every one is a ParseError (400 in the error shape)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(
                text, parse_float=_finite_float, parse_constant=_no_constants, object_pairs_hook=_unique_keys
            )
            check_document(data)
        except _Refused as error:
            raise ParseError(f"JSON parse error - {error}") from None
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        except (LookupError, UnicodeDecodeError):
            raise ParseError("JSON parse error - the body is not text in its declared charset.") from None
        except ValueError as error:  # json.JSONDecodeError, and ints beyond Python's digit limit
            raise ParseError(f"JSON parse error - {str(error)[:200]}") from None
        return data
