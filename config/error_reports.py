"""Error reports (Django's debug page, AdminEmailHandler mails, the log) that never carry a frame's bytes.

Frames and videos pass through views and services as bytes, base64 text, numpy arrays and lists of them, so
every local variable of every traceback frame is shown only when it is plainly harmless (a number, a short
string, a small container of such, an object whose repr is short and holds no binary or base64 run); POST
values are hidden whatever their names; exception messages that carry such runs are withheld. This holds in
every setting, DEBUG included: a developer's debug page is where the demo showed a frame's base64, twice.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from typing import Any

from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

# 48 characters of base64 (or hex) in a row are 36 bytes of something: no name, path or message of ours has
# them (dashes, dots and underscores break a run). Bytes literals of 8 characters on, escaped bytes in a row.
BINARY_RUN = re.compile(
    r"[A-Za-z0-9+/]{48,}={0,2}"
    r"|b'(?:[^'\\\n]|\\.){8,}'|b\"(?:[^\"\\\n]|\\.){8,}\""
    r"|(?:\\x[0-9a-fA-F]{2}){4,}"
)
WITHHELD = "[withheld from error reports: may hold frame data]"
MAX_SHOWN_CHARS = 2000
MAX_ITEMS = 50
_SCALARS = (type(None), bool, int, float, complex, decimal.Decimal, datetime.date, datetime.time,
            datetime.timedelta, uuid.UUID)


def carries_binary(text: str) -> bool:
    """Whether a text holds a run that looks like encoded bytes (base64, hex, escaped bytes)."""
    return bool(BINARY_RUN.search(text))


def redact(text: str) -> str:
    """`text` with every run that looks like encoded bytes replaced."""
    return BINARY_RUN.sub("[withheld]", text)


def is_plainly_safe(value: Any, *, depth: int = 0) -> bool:
    """True for values that cannot hold a frame: scalars, short plain strings, small containers of them, and
    objects whose repr is short and plain. Bytes, arrays and anything large are never shown."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, bytes | bytearray | memoryview):
        return False
    if type(value).__module__.startswith("numpy") or hasattr(value, "__array_interface__"):
        return False
    if isinstance(value, str):
        return len(value) <= MAX_SHOWN_CHARS and not carries_binary(value)
    if depth >= 3:
        return False
    if isinstance(value, dict):
        return len(value) <= MAX_ITEMS and all(
            is_plainly_safe(k, depth=depth + 1) and is_plainly_safe(v, depth=depth + 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return len(value) <= MAX_ITEMS and all(is_plainly_safe(item, depth=depth + 1) for item in value)
    try:
        text = repr(value)
    except Exception:  # a repr that fails (a lazy object whose database is away) shows nothing
        return False
    return len(text) <= MAX_SHOWN_CHARS and not carries_binary(text)


class FrameSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """DEFAULT_EXCEPTION_REPORTER_FILTER: active in every setting; POST values hidden; a local variable shown
    only when `is_plainly_safe`."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> dict[str, str]:
        if request is None:
            return {}
        try:
            names = list(request.POST.keys())
        except Exception:  # a body that cannot be parsed (again) is not worth a second error
            return {}
        return {name if is_plainly_safe(name) else WITHHELD: self.cleansed_substitute for name in names}

    def get_cleansed_multivaluedict(self, request: HttpRequest | None, multivaluedict: Any) -> Any:
        return {key: self.cleansed_substitute for key in multivaluedict}

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> list[tuple[str, Any]]:
        return [
            (name, value if is_plainly_safe(value) else WITHHELD)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class _Withheld(Exception):
    """Stands in for an exception (a cause in the chain) whose message carries encoded bytes."""


class FrameSafeExceptionReporter(ExceptionReporter):
    """DEFAULT_EXCEPTION_REPORTER: the filter above, and exception messages (of the error and of its causes)
    with every run of encoded bytes withheld; no Unicode-error excerpt of the offending bytes."""

    def get_traceback_frames(self) -> list[dict[str, Any]]:
        frames = super().get_traceback_frames()
        for frame in frames:
            cause = frame.get("exc_cause")
            if cause is not None and carries_binary(str(cause)):
                frame["exc_cause"] = _Withheld(f"{type(cause).__name__}: {WITHHELD}")
        return frames

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        data["unicode_hint"] = ""
        for key in ("exception_value", "exception_notes"):
            if key in data and carries_binary(str(data[key])):
                data[key] = WITHHELD
        return data
