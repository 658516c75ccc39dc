"""Cheap checks on a frame before anything is stored: declared and sniffed type, byte size, pixel count from
the header, animation, and the structure of the body, without decoding a pixel.

What the body check sees, per format (bench/frame_check_bench.py has the costs that decided it):

- JPEG: every segment up to the end-of-image marker is walked: lengths inside the file, a frame header and at
  least one scan, scan headers that fit the frame, and entropy-coded data that holds no marker a JPEG cannot
  have there. A truncation at any offset, a cut-off file with an end marker glued on before its first scan,
  and garbage that breaks the marker structure are refused. Damage inside the entropy-coded data that keeps
  the structure (zeroed or altered scan bytes, a scan cut short with an end marker added) needs a decode of
  the whole scan, about 0.6 ms of the 2.5 ms an intake request costs, so intake does not see it: the worker's
  strict decode does (`jpeg_scan_intact`), and fails the frame with reason `corrupt_image`.
- PNG: every chunk's CRC, the chunk order, and the IDAT zlib stream inflated to its end, whose length must be
  what IHDR declares (up to PNG_INFLATE_MAX_BYTES of pixels). Milliseconds per 640x480 PNG; PNG is not the
  capture page's format, and intake runs this check after the frame-rate bound, so it is bounded per session.
- WebP: the RIFF chunks fit the file, the image chunk is there, and a lossy frame's first partition fits its
  chunk. Lossy VP8 data has no checksum: altered bytes inside it decode (to a damaged picture) anywhere, so
  such a frame is analysed like any other.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
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


def _corrupt(what: str) -> FrameRejected:
    return FrameRejected(f"The image is corrupt ({what}).", code="corrupt_image")


def _truncated(what: str) -> FrameRejected:
    return FrameRejected(f"The image is truncated ({what}).", code="truncated_image")


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Segments a JPEG may carry between SOI and EOI: frame headers, tables (DHT, DAC, DQT, DRI, DNL), EXP, APPn, COM.
_SEGMENTS = _SOF | {0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, *range(0xE0, 0xF0), 0xFE}
# Inside entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker; anything else ends it.
_SCAN_END = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _check_jpeg_structure(data: bytes) -> None:
    """Walk the segments from SOI to EOI; the entropy-coded data is searched for its end, not decoded."""
    end = len(data.rstrip(b"\x00"))  # some encoders pad after EOI with zeros
    pos, components, scans = 2, set(), 0
    while True:
        while pos < end and data[pos] == 0xFF and pos + 1 < end and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 2 > end:
            raise _truncated("it ends inside its headers")
        if data[pos] != 0xFF:
            raise _corrupt("a segment does not start with a marker")
        marker = data[pos + 1]
        if marker == 0xD9:
            if scans == 0:
                raise _corrupt("no image data before the end-of-image marker")
            if pos + 2 != end:
                raise _corrupt("data after the end-of-image marker")
            return
        if marker not in _SEGMENTS:
            raise _corrupt(f"unexpected marker 0x{marker:02x}")
        if pos + 4 > end:
            raise _truncated("it ends inside a segment header")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = pos + 4
        if length < 2 or pos + 2 + length > end:
            raise _truncated("a segment runs past the end of the file")
        if marker in _SOF:
            count = data[body + 5] if length >= 8 else 0
            if not 1 <= count <= 4 or length != 8 + 3 * count:
                raise _corrupt("the frame header is malformed")
            components = {data[body + 6 + 3 * i] for i in range(count)}
        elif marker == 0xDA:
            count = data[body] if length >= 3 else 0
            if not components:
                raise _corrupt("a scan comes before the frame header")
            if not 1 <= count <= 4 or length != 6 + 2 * count or any(
                data[body + 1 + 2 * i] not in components for i in range(count)
            ):
                raise _corrupt("a scan header does not fit the frame")
            start = pos + 2 + length
            found = _SCAN_END.search(data, start, end)
            if found is None:
                raise _truncated("the image data has no end")
            if found.start() == start:
                raise _corrupt("a scan holds no image data")
            scans += 1
            pos = found.start()
            continue
        pos += 2 + length


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 20  # bytes of pixels inflated at a time, so a check never holds a whole image
# Inflating costs about 2 ms per MB of pixels; past this (a 1920x1080 RGBA frame is 8.3 MB) intake checks the
# chunks and their CRCs only, and a damaged stream is the worker's `decode_error`.
PNG_INFLATE_MAX_BYTES = 16 << 20


def _png_raw_size(width: int, height: int, depth: int, color: int, interlace: int) -> int:
    """Bytes of filtered scanlines IHDR promises: a filter byte plus the packed pixels per row (per Adam7 pass)."""
    bits = _PNG_CHANNELS[color] * depth
    if not interlace:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            total += h * (1 + (w * bits + 7) // 8)
    return total


def _check_png_structure(data: bytes) -> None:
    """Chunk by chunk: length, CRC, order; then the IDAT stream inflated to its end, as long as IHDR says."""
    pos, header, idat, ended, last = 8, None, [], False, b""
    while pos < len(data) and not ended:
        if pos + 12 > len(data):
            raise _truncated("it ends inside a chunk header")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if length > len(data) - pos - 12:
            raise _truncated(f"the {kind[:4]!r} chunk runs past the end of the file")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise _corrupt("a chunk's checksum does not match")
        if header is None and kind != b"IHDR":
            raise _corrupt("the first chunk is not IHDR")
        if kind == b"IHDR":
            if header is not None or length != 13:
                raise _corrupt("the header chunk is malformed")
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if color not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16) or interlace > 1:
                raise _corrupt("the header chunk is malformed")
            header = (width, height, depth, color, interlace)
        elif kind == b"IDAT":
            if idat and last != b"IDAT":
                raise _corrupt("the image data chunks are not consecutive")
            idat.append(body)
        elif kind == b"IEND":
            ended = True
        last = kind
        pos += 12 + length
    if header is None or not ended:
        raise _truncated("no IEND chunk")
    if not idat:
        raise _corrupt("no image data")
    expected = _png_raw_size(*header)
    if expected > PNG_INFLATE_MAX_BYTES:
        return
    inflater, produced = zlib.decompressobj(), 0
    try:
        for chunk in idat:
            pending = chunk
            while pending and not inflater.eof:
                produced += len(inflater.decompress(pending, _INFLATE_STEP))
                pending = inflater.unconsumed_tail
                if produced > expected:
                    raise _corrupt("more image data than the header declares")
        while not inflater.eof and (out := inflater.decompress(b"", _INFLATE_STEP)):
            produced += len(out)
    except zlib.error:
        raise _corrupt("the compressed image data is damaged") from None
    if not inflater.eof or produced != expected:
        raise _truncated("the compressed image data ends early")


def _check_webp_structure(data: bytes) -> None:
    """The RIFF chunks fit, an image chunk is there, and a lossy frame's first partition fits its chunk."""
    (riff_size,) = struct.unpack("<I", data[4:8])
    end, pos, image = min(len(data), riff_size + 8), 12, False
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        payload = data[pos + 8 : pos + 8 + size]
        if pos + 8 + size > end:
            raise _truncated(f"the {kind!r} chunk runs past the end of the file")
        if kind == b"VP8 ":
            if size < 10 or payload[3:6] != b"\x9d\x01\x2a":
                raise _corrupt("the VP8 frame header is malformed")
            tag = payload[0] | payload[1] << 8 | payload[2] << 16
            if tag & 1 or (tag >> 5) + 10 > size:  # not a key frame, or a first partition past the chunk
                raise _corrupt("the VP8 frame header does not fit its chunk")
            image = True
        elif kind == b"VP8L":
            if size < 5 or payload[0] != 0x2F:
                raise _corrupt("the lossless header is malformed")
            image = True
        pos += 8 + size + (size & 1)
    if pos < end:
        raise _truncated("it ends inside a chunk header")
    if not image:
        raise _corrupt("no image data")


def check_body(data: bytes, content_type: str) -> None:
    """The structural checks of the module docstring; FrameRejected (400) for a body that cannot be an image."""
    if content_type == JPEG:
        _check_jpeg_structure(data)
    elif content_type == PNG:
        _check_png_structure(data)
    elif content_type == WEBP:
        _check_webp_structure(data)


def jpeg_scan_intact(data: bytes) -> bool:
    """Whether FFmpeg's JPEG decoder, with every error check on and at 1/8 scale, decodes the whole scan: it
    sees the damaged entropy-coded data that libjpeg and OpenCV decode silently into a damaged picture. For
    the worker (about 0.6 ms a 640x480 frame); a feature FFmpeg lacks (arithmetic coding) counts as intact."""
    import av

    context = av.CodecContext.create("mjpeg", "r")
    context.options = {"err_detect": "explode", "lowres": "3"}
    try:
        return bool(context.decode(av.Packet(data)))
    except av.error.InvalidDataError:
        return False
    except av.error.FFmpegError:
        return True


def inspect_frame(
    data: bytes, declared_type: str | None, *, max_bytes: int, max_pixels: int, body: bool = True
) -> FrameInfo:
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
    if body:
        check_body(data, sniffed)
    return FrameInfo(content_type=sniffed, width=width, height=height, byte_size=size)
