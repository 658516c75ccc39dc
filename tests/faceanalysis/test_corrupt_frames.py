"""A frame whose header is valid but whose body is truncated or corrupt is refused at intake (400, nothing
queued) for JPEG, PNG and WebP, while every valid frame still gets 202. The one class intake cannot see
without decoding the whole scan, a JPEG whose entropy-coded data is damaged but keeps its structure, is
failed by the worker's strict decode with reason `corrupt_image` and never analysed."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from faceanalysis.models import CaptureSession, Frame
from faceanalysis.validation import check_body, jpeg_scan_intact
from tests.faceanalysis.conftest import stored_frame_count
from tests.faceanalysis.factories import astronaut_rgb, make_capture_session

pytestmark = pytest.mark.django_db


def _encode(fmt: str, rgb: np.ndarray | None = None, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(astronaut_rgb() if rgb is None else rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _png_with_idat(transform, *, keep_crc_of_original: bool = False) -> bytes:
    """The astronaut PNG with each IDAT body transformed; CRCs recomputed unless kept from the original."""
    png = _encode("PNG")
    out = png[:8]
    for kind, body in _png_chunks(png):
        if kind == b"IDAT":
            original_crc = zlib.crc32(kind + body) & 0xFFFFFFFF
            out += _chunk(kind, transform(body), original_crc if keep_crc_of_original else None)
        else:
            out += _chunk(kind, body)
    return out


def _garbage(body: bytes, seed: int = 0, size: int = 2000) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    start = len(body) // 3
    return body[:start] + noise + body[start + size :]


def _jpeg_scan(data: bytes) -> tuple[int, int]:
    """Where the entropy-coded data of a baseline JPEG starts and ends (before EOI)."""
    pos = 2
    while True:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xDA:
            return pos + 2 + length, len(data) - 2
        pos += 2 + length


def _jpeg_zeroed(data: bytes, start: float, stop: float) -> bytes:
    begin, end = _jpeg_scan(data)
    a, b = begin + int((end - begin) * start), begin + int((end - begin) * stop)
    return data[:a] + b"\x00" * (b - a) + data[b:]


def _jpeg_noise(data: bytes, seed: int) -> bytes:
    begin, end = _jpeg_scan(data)
    middle = (begin + end) // 2
    noise = bytes(np.random.default_rng(seed).integers(0, 256, 400, dtype=np.uint8))
    return data[:middle] + noise + data[middle + 400 :]


def _webp_resized_riff(data: bytes) -> bytes:
    """A WebP cut short whose RIFF size was then fixed to the new length (so only the chunk walk sees it)."""
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


JPEG = _encode("JPEG", quality=90)
PNG = _encode("PNG")
WEBP = _encode("WEBP", quality=80)
WEBP_LOSSLESS = _encode("WEBP", lossless=True)

CORRUPT_AT_INTAKE: dict[str, bytes] = {}
for fraction in (0.05, 0.3, 0.5, 0.9, 0.999):
    CORRUPT_AT_INTAKE[f"jpeg_truncated_at_{fraction}"] = JPEG[: int(len(JPEG) * fraction)]
    CORRUPT_AT_INTAKE[f"png_truncated_at_{fraction}"] = PNG[: int(len(PNG) * fraction)]
    CORRUPT_AT_INTAKE[f"png_truncated_at_{fraction}_iend_added"] = PNG[: int(len(PNG) * fraction)] + _chunk(
        b"IEND", b"")
    CORRUPT_AT_INTAKE[f"webp_truncated_at_{fraction}"] = WEBP[: max(16, int(len(WEBP) * fraction))]
    CORRUPT_AT_INTAKE[f"webp_truncated_at_{fraction}_riff_fixed"] = _webp_resized_riff(
        WEBP[: max(16, int(len(WEBP) * fraction))])
    CORRUPT_AT_INTAKE[f"webp_lossless_truncated_at_{fraction}_riff_fixed"] = _webp_resized_riff(
        WEBP_LOSSLESS[: max(16, int(len(WEBP_LOSSLESS) * fraction))])
for offset in (3, 20, 200, 400, 600):  # inside the headers, an end marker glued on
    CORRUPT_AT_INTAKE[f"jpeg_cut_at_byte_{offset}_eoi_added"] = JPEG[:offset] + b"\xff\xd9"
for seed in range(3):
    CORRUPT_AT_INTAKE[f"jpeg_marker_garbage_in_scan_{seed}"] = _jpeg_noise(JPEG, seed)
CORRUPT_AT_INTAKE.update({
    "jpeg_without_a_scan": JPEG[: _jpeg_scan(JPEG)[0] - 14] + b"\xff\xd9",
    "jpeg_empty_scan": JPEG[: _jpeg_scan(JPEG)[0]] + b"\xff\xd9",
    "jpeg_bytes_after_eoi": JPEG + b"trailing junk",
    "jpeg_bad_segment_length": JPEG[:4] + b"\xff\xff" + JPEG[6:],
    "png_garbage_idat_crc_fixed": _png_with_idat(_garbage),
    "png_garbage_idat_crc_broken": _png_with_idat(_garbage, keep_crc_of_original=True),
    "png_zeroed_idat_crc_fixed": _png_with_idat(lambda body: body[:100] + b"\x00" * (len(body) - 100)),
    "png_idat_cut_short_crc_fixed": _png_with_idat(lambda body: body[: len(body) // 2]),
    "png_flipped_byte_crc_broken": _png_with_idat(lambda b: b[:500] + bytes([b[500] ^ 0xFF]) + b[501:],
                                                  keep_crc_of_original=True),
    "png_without_idat": PNG[:33] + _chunk(b"IEND", b""),
    "webp_vp8_partition_past_chunk": WEBP[:20] + b"\xff\xff\xff" + WEBP[23:],
    "webp_vp8_start_code_broken": WEBP[:23] + b"\x00\x00\x00" + WEBP[26:],
})

# Damage that keeps every marker in place: only a decode of the whole scan sees it.
CORRUPT_FOR_THE_WORKER = {
    "jpeg_scan_zeroed": _jpeg_zeroed(JPEG, 0.0, 1.0),
    "jpeg_scan_zeroed_second_half": _jpeg_zeroed(JPEG, 0.5, 1.0),
    "jpeg_scan_zeroed_middle": _jpeg_zeroed(JPEG, 0.3, 0.6),
    "jpeg_scan_cut_short_eoi_added": JPEG[: len(JPEG) // 2] + b"\xff\xd9",
    "jpeg_scan_cut_at_a_tenth_eoi_added": JPEG[: _jpeg_scan(JPEG)[0] + 500] + b"\xff\xd9",
}


def _valid_frames() -> dict[str, bytes]:
    rgb = astronaut_rgb()
    frames = {}
    for quality in (10, 50, 75, 95, 100):
        frames[f"jpeg_q{quality}"] = _encode("JPEG", quality=quality)
        frames[f"webp_q{quality}"] = _encode("WEBP", quality=quality)
    frames.update({
        "jpeg_progressive": _encode("JPEG", quality=80, progressive=True),
        "jpeg_optimized": _encode("JPEG", quality=80, optimize=True),
        "jpeg_444": _encode("JPEG", quality=80, subsampling=0),
        "jpeg_restart_markers": _encode("JPEG", quality=80, restart_marker_blocks=4),
        "jpeg_grayscale": _encode("JPEG", rgb[:, :, 0], quality=80),
        "jpeg_black_optimized": _encode("JPEG", np.zeros((480, 640, 3), np.uint8), quality=80, optimize=True),
        "jpeg_opencv": _opencv_jpeg(rgb),
        "jpeg_zero_padding_after_eoi": _encode("JPEG", quality=80) + b"\x00" * 16,
        "png": PNG,
        "png_compress_level_0": _encode("PNG", compress_level=0),
        "png_compress_level_9": _encode("PNG", compress_level=9),
        "png_interlaced": _opencv_png_interlaced_or_plain(rgb),
        "png_grayscale": _encode("PNG", rgb[:, :, 0]),
        "png_rgba": _encode("PNG", np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])),
        "png_palette": _palette_png(rgb),
        "png_16_bit": _sixteen_bit_png(rgb),
        "webp_lossless": WEBP_LOSSLESS,
        "webp_with_alpha": _encode("WEBP", np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]), quality=80),
        "webp_odd_size": _encode("WEBP", rgb[:101, :77], quality=80),
        "jpeg_odd_size": _encode("JPEG", rgb[:101, :77], quality=80),
        "png_odd_size": _encode("PNG", rgb[:101, :77]),
    })
    return frames


def _opencv_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _opencv_png_interlaced_or_plain(rgb: np.ndarray) -> bytes:
    """An Adam7-interlaced PNG (Pillow writes none; rebuilt here from the raw passes with zlib)."""
    height, width, _ = rgb.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def _palette_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).quantize(colors=16).save(buffer, format="PNG")
    return buffer.getvalue()


def _sixteen_bit_png(rgb: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", (rgb.astype(np.uint16) * 257)[:, :, ::-1])[1].tobytes()


VALID = _valid_frames()


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _post(session: CaptureSession, token: str, data: bytes):
    url = reverse("api:capture-session-frames", kwargs={"session_id": session.public_id})
    return token_client(token).generic("POST", url, data, content_type="application/octet-stream")


@pytest.fixture
def open_session(org_a, settings) -> tuple[CaptureSession, str]:
    settings.VISAGE_CAPTURE_MAX_FPS = 10_000
    return make_capture_session(org_a)


@pytest.mark.parametrize("name", sorted(CORRUPT_AT_INTAKE))
def test_corrupt_or_truncated_body_is_400_at_intake_with_nothing_queued(name: str, open_session) -> None:
    session, token = open_session
    response = _post(session, token, CORRUPT_AT_INTAKE[name])
    assert response.status_code == 400, (response.status_code, response.content)
    assert response.json()["error"]["code"] in {"truncated_image", "corrupt_image"}
    assert not Frame.objects.filter(session=session).exists()
    assert stored_frame_count() == 0


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_frame_of_every_format_and_quality_is_accepted(name: str, open_session) -> None:
    session, token = open_session
    response = _post(session, token, VALID[name])
    assert response.status_code == 202, (name, response.content)
    assert Frame.objects.filter(session=session).count() == 1


@pytest.mark.parametrize("name", sorted(CORRUPT_FOR_THE_WORKER))
def test_damaged_jpeg_scan_passes_the_structure_but_not_the_strict_decode(name: str) -> None:
    data = CORRUPT_FOR_THE_WORKER[name]
    check_body(data, "image/jpeg")  # intake cannot afford to see it
    assert not jpeg_scan_intact(data)


@pytest.mark.parametrize("name", sorted(n for n in VALID if n.startswith("jpeg")))
def test_strict_decode_accepts_every_valid_jpeg(name: str) -> None:
    assert jpeg_scan_intact(VALID[name])


@pytest.mark.parametrize("name", sorted(CORRUPT_FOR_THE_WORKER))
def test_worker_fails_a_damaged_jpeg_as_corrupt_and_never_analyses_it(
    name: str, open_session, fake_engine, eager, django_capture_on_commit_callbacks
) -> None:
    session, token = open_session
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(session, token, CORRUPT_FOR_THE_WORKER[name])
    assert response.status_code == 202, response.content
    frame = Frame.objects.get(session=session)
    assert (frame.status, frame.reason) == (Frame.Status.FAILED, "corrupt_image")
    assert fake_engine.images == 0
    assert stored_frame_count() == 0


def test_worker_still_analyses_a_valid_jpeg(open_session, fake_engine, eager, django_capture_on_commit_callbacks):
    session, token = open_session
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(session, token, VALID["jpeg_q75"]).status_code == 202
    assert Frame.objects.get(session=session).status == Frame.Status.ANALYZED
    assert fake_engine.images == 1


def test_body_checks_run_within_the_frame_rate_bound(org_a, settings, monkeypatch) -> None:
    """A PNG's inflate costs milliseconds, so a session past its frame rate gets a 429 before any is spent."""
    from faceanalysis import validation
    from faceanalysis.services import intake

    settings.VISAGE_CAPTURE_MAX_FPS = 1
    now = intake.current_second()
    monkeypatch.setattr(intake, "current_second", lambda: now)
    inflated = []
    real = validation._check_png_structure
    monkeypatch.setattr(validation, "_check_png_structure", lambda data: inflated.append(1) or real(data))
    session, token = make_capture_session(org_a)
    assert _post(session, token, PNG).status_code == 202
    response = _post(session, token, CORRUPT_AT_INTAKE["png_garbage_idat_crc_fixed"])
    assert response.status_code == 429
    assert inflated == [1]


def test_png_beyond_the_inflate_budget_gets_its_chunks_checked_only(monkeypatch) -> None:
    from faceanalysis import validation

    monkeypatch.setattr(validation, "PNG_INFLATE_MAX_BYTES", 1000)
    check_body(CORRUPT_AT_INTAKE["png_garbage_idat_crc_fixed"], "image/png")  # left to the worker
    with pytest.raises(validation.FrameRejected):
        check_body(CORRUPT_AT_INTAKE["png_garbage_idat_crc_broken"], "image/png")
