"""Verify a signed consent receipt file (a compact JWS) against a JWKS: a file, a URL, or by default the keys
this installation publishes for the organization the receipt names. Exit 0 valid, 1 invalid, 2 unreadable."""

import json
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent.receipts import (
    MAX_RECEIPT_BYTES,
    ReceiptInvalid,
    ReceiptKeysInvalid,
    receipt_verify,
    receipt_verify_published,
)

MAX_JWKS_BYTES = 1024 * 1024


class Unreadable(Exception):
    """A file or URL that cannot be read as asked (exit 2)."""


def _read_limited(path: str, limit: int) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise Unreadable(f"Cannot read {path}: {error.strerror or error}.") from None
    if len(data) > limit:
        raise Unreadable(f"{path} is larger than {limit} bytes.")
    return data


def _read_receipt(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read(MAX_RECEIPT_BYTES + 1)
    return _read_limited(source, MAX_RECEIPT_BYTES)


def _load_jwks(source: str) -> Any:
    if source.startswith(("https://", "http://")):
        try:
            with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - http(s) only, checked above
                data = response.read(MAX_JWKS_BYTES + 1)
        except OSError as error:
            raise Unreadable(f"Cannot fetch {source}: {error}.") from None
        if len(data) > MAX_JWKS_BYTES:
            raise Unreadable(f"{source} is larger than {MAX_JWKS_BYTES} bytes.")
    else:
        data = _read_limited(source, MAX_JWKS_BYTES)
    try:
        return json.loads(data)
    except ValueError:
        raise Unreadable(f"{source} is not JSON.") from None


def _summary(claims: dict[str, Any]) -> list[str]:
    """The receipt's main fields, one per line."""
    purposes = [p.get("purpose", "") for s in claims.get("services", []) for p in s.get("purposes", [])]
    controllers = [c.get("piiController", "") for c in claims.get("piiControllers", [])]
    timestamp = claims.get("consentTimestamp")
    granted = "?"
    if isinstance(timestamp, int):
        granted = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return [
        f"Receipt:      {claims.get('consentReceiptID', '?')} ({claims.get('version', '?')})",
        f"Subject:      {claims.get('piiPrincipalId', '?')}",
        f"Controller:   {', '.join(controllers) or '?'} ({claims.get('organization', '?')})",
        f"Purposes:     {', '.join(purposes) or '?'}",
        f"Consented at: {granted} via {claims.get('collectionMethod', '?')}",
        f"State:        {claims.get('grantState', '?')} at signing",
        f"Notice:       {claims.get('policyUrl', '?')}",
        f"Jurisdiction: {claims.get('jurisdiction', '?')}",
    ]


class Command(BaseCommand):
    help = (
        "Verify a signed consent receipt (compact JWS) against the organization's JWKS: --jwks FILE or URL, else "
        "the keys published here for the organization the receipt names. Exit 0 valid, 1 invalid, 2 unreadable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The receipt file (consent-receipt-<id>.jws), or - for standard input.")
        parser.add_argument("--jwks", help="A JWKS file or http(s) URL; default: this installation's published keys.")

    def handle(self, *args, **options) -> None:
        try:
            token = _read_receipt(options["file"])
            keys = _load_jwks(options["jwks"]) if options["jwks"] else None
            claims = receipt_verify(token, keys=keys) if keys is not None else receipt_verify_published(token)
        except (Unreadable, ReceiptKeysInvalid) as error:
            self.stderr.write(f"unreadable: {error}")
            sys.exit(2)
        except ReceiptInvalid as error:
            self.stdout.write(self.style.ERROR(f"invalid ({error.reason}): {error}"))
            sys.exit(1)
        for line in _summary(claims):
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("valid"))
