"""Cheap checks on a frame before anything is stored: declared and sniffed type, byte size, structure
(truncation), pixel count from the header and animation, all without decoding a pixel."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from faceanalysis.errors import FrameRejected

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
ALLOWED_IMAGE_TYPES = (JPEG, PNG, WEBP)
# Types a client may declare when it does not know better; the sniffed type then decides.
UNSPECIFIC_TYPES = {"", "application/octet-stream"}
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG}
MIN_SIDE = 16


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What the cheap checks learned about a frame."""

    content_type: str
    width: int
    height: int
    byte_size: int


def sniff_image_type(data: bytes) -> str | None:
    """The image type by magic bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def _normalise_declared(declared: str | None) -> str:
    value = (declared or "").split(";")[0].strip().lower()
    return _ALIASES.get(value, value)


def _check_complete(data: bytes, content_type: str) -> None:
    """Structural end-of-file checks; truncated uploads are refused before they cost a decode."""
    if content_type == JPEG:
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise FrameRejected("The JPEG is truncated (no end-of-image marker).", code="truncated_image")
    elif content_type == PNG:
        if b"IEND" not in data[-12:]:
            raise FrameRejected("The PNG is truncated (no IEND chunk).", code="truncated_image")
    elif content_type == WEBP:
        (declared_size,) = struct.unpack("<I", data[4:8])
        if len(data) < declared_size + 8:
            raise FrameRejected("The WebP is truncated (shorter than its RIFF header says).", code="truncated_image")


def inspect_frame(data: bytes, declared_type: str | None, *, max_bytes: int, max_pixels: int) -> FrameInfo:
    """Validate a frame without decoding its pixels; raises FrameRejected with a clear reason."""
    size = len(data)
    if size == 0:
        raise FrameRejected("The frame is empty (zero bytes).", code="empty_frame")
    if size > max_bytes:
        raise FrameRejected(
            f"The frame is {size} bytes; at most {max_bytes} are accepted.",
            code="frame_too_large", status_code=413, details={"max_bytes": max_bytes},
        )
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise FrameRejected(
            "Not a JPEG, PNG or WebP image.", code="unsupported_media_type", status_code=415,
            details={"accepted": list(ALLOWED_IMAGE_TYPES)},
        )
    declared = _normalise_declared(declared_type)
    if declared not in UNSPECIFIC_TYPES and declared != sniffed:
        raise FrameRejected(
            f"Declared as {declared} but the bytes are {sniffed}.", code="content_type_mismatch", status_code=415,
        )
    _check_complete(data, sniffed)

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow warns (and past twice its limit raises) on huge headers; the explicit check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
                animated = bool(getattr(image, "is_animated", False)) or getattr(image, "n_frames", 1) > 1
    except Image.DecompressionBombError:
        raise FrameRejected(
            "The image declares too many pixels.", code="too_many_pixels", status_code=413,
            details={"max_pixels": max_pixels},
        ) from None
    except Exception:
        raise FrameRejected("The image header cannot be read.", code="corrupt_image") from None
    if width * height > max_pixels:
        raise FrameRejected(
            f"The image is {width}x{height}; at most {max_pixels} pixels are accepted.",
            code="too_many_pixels", status_code=413, details={"max_pixels": max_pixels},
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise FrameRejected(f"The image is {width}x{height}; both sides must be at least {MIN_SIDE}.",
                            code="image_too_small")
    if animated:
        raise FrameRejected("Animated images are not accepted; send single frames.", code="animated_image",
                            status_code=415)
    return FrameInfo(content_type=sniffed, width=width, height=height, byte_size=size)
