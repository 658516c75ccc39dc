"""Signed consent receipts: a Kantara Consent Receipt v1.1 per grant, signed as a compact JWS (alg EdDSA, an
Ed25519 key of the organization), verifiable by anyone with the organization's published JWKS.

- Keys: `signing_key_current` (made on first use; one current key per organization, held by a constraint),
  `signing_key_rotate` (the old key is retired: it signs nothing new and stays published). The private half is
  kept sealed with AES-GCM under a key derived from SECRET_KEY (HKDF-SHA256); it is never logged, never shown.
- Receipts: `receipt_claims` (the JSON), `receipt_sign` (the JWS), `receipt_verify` (claims or `ReceiptInvalid`
  with a stable reason), `receipt_verify_published` (against the database's keys of the organization the receipt
  names), `receipt_jwks` (what `/consent/o/<slug>/receipts/jwks.json` publishes).

Receipts are signed when asked for, not stored: each download is a fresh signature over the grant as it stands
(`grantState`), with a `consentReceiptID` that stays the same for the grant.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, SecurityWarning
from joserfc.jwk import OKPKey

from accounts.models import Organization
from consent import retention
from consent.guards import grant_state
from consent.models import Channel, Grant, Purpose, RetentionPolicy, SigningKey, Subject

logger = logging.getLogger(__name__)

# joserfc warns that RFC 9864 deprecates "EdDSA" for the fully specified "Ed25519". Receipts keep "EdDSA": it is
# what every JOSE library a third party may verify with understands today (RFC 8037), with the curve in the JWK.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

RECEIPT_VERSION = "KI-CR-v1.1.0"
ALGORITHM = "EdDSA"
CURVE = "Ed25519"
MEDIA_TYPE = "application/jose"
SERVICE_NAME = "Visage face analytics"
# consentReceiptID = uuid5(RECEIPT_ID_NAMESPACE, "<organization id>:<grant id>"): the same id for every receipt
# of one grant, and no two grants share one.
RECEIPT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:visage:consent-receipt")
MAX_RECEIPT_BYTES = 64 * 1024

_SEAL_VERSION = "v1"
_SEAL_INFO = b"visage.consent.receipts.signing-key.v1"

# How consent reached Visage, in words (collectionMethod).
COLLECTION_METHODS: dict[str, str] = {
    Channel.CONSENT_PAGE: "Web consent page: an explicit opt-in per purpose after the notice",
    Channel.PARTNER_API: "The partner's own user interface, recorded through the partner API",
    Channel.ADMIN_PAPER: "Paper form, recorded by an administrator",
    Channel.MY_DATA_PAGE: "The subject's own 'my data' page",
    Channel.SYSTEM: "Recorded by the system",
}
# Kantara CR v1.1 purpose categories (its Appendix), per purpose.
PURPOSE_CATEGORIES: dict[str, list[str]] = {
    Purpose.FACE_ANALYSIS: ["1 - Core Function"],
    Purpose.PERSONALIZATION: ["5 - Personalized Experience"],
    Purpose.PARTNER_SHARING: ["7 - Marketing Third Parties"],
    Purpose.FACE_VERIFICATION: ["1 - Core Function"],
}
PII_CATEGORIES: dict[str, list[str]] = {
    Purpose.FACE_ANALYSIS: ["biometric"],
    Purpose.PERSONALIZATION: ["biometric", "profiling"],
    Purpose.PARTNER_SHARING: ["biometric"],
    Purpose.FACE_VERIFICATION: ["biometric"],
}


class ReceiptInvalid(Exception):
    """A receipt that does not verify; `reason` is stable: malformed, unsupported_algorithm, unknown_kid,
    bad_signature, unknown_organization."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ReceiptKeysInvalid(ValueError):
    """The key set given to verify with is not a JWKS of Ed25519 public keys."""


# --- keys ----------------------------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _wrapping_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret.encode())


def _associated_data(organization_id: int, kid: str) -> bytes:
    # A sealed key opens only on its own row: copying it to another organization or kid fails the tag.
    return f"{organization_id}:{kid}".encode()


def _seal(private_raw: bytes, *, organization_id: int, kid: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_wrapping_key(settings.SECRET_KEY)).encrypt(
        nonce, private_raw, _associated_data(organization_id, kid)
    )
    return f"{_SEAL_VERSION}.{_b64(nonce + sealed)}"


def _unseal(key: SigningKey) -> bytes | None:
    """The raw private key, or None when no current or fallback SECRET_KEY opens it."""
    version, _, body = key.private_key_encrypted.partition(".")
    if version != _SEAL_VERSION or not body:
        return None
    blob = _unb64(body)
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        try:
            return AESGCM(_wrapping_key(secret)).decrypt(
                blob[:12], blob[12:], _associated_data(key.organization_id, key.kid)
            )
        except InvalidTag:
            continue
    return None


def _public_jwk_dict(public_key: str, kid: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": CURVE, "x": public_key, "kid": kid, "use": "sig", "alg": ALGORITHM}


def signing_key_jwk(key: SigningKey) -> dict[str, str]:
    """The key's public half as a JWK (RFC 8037), as published."""
    return _public_jwk_dict(key.public_key, key.kid)


def _signing_key_create(organization: Organization, now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes_raw()
    # The kid is the key's RFC 7638 thumbprint: unique, and anyone can recompute it from the JWK.
    kid = OKPKey.import_key({"kty": "OKP", "crv": CURVE, "x": _b64(public_raw)}).thumbprint()
    return SigningKey.objects.create(
        organization=organization,
        kid=kid,
        public_key=_b64(public_raw),
        private_key_encrypted=_seal(private.private_bytes_raw(), organization_id=organization.pk, kid=kid),
        created_at=now,
    )


def signing_key_list(organization: Organization | None) -> list[SigningKey]:
    """Every key of the organization, current first, then retired ones newest first."""
    keys = SigningKey.objects.for_organization(organization)
    return sorted(keys, key=lambda k: (k.retired_at is not None, -k.created_at.timestamp()))


def _current_key(organization: Organization) -> SigningKey | None:
    return SigningKey.objects.for_organization(organization).filter(retired_at__isnull=True).first()


def signing_key_current(organization: Organization, *, now: datetime | None = None) -> SigningKey:
    """The organization's current signing key, made on first use. Race-safe: the constraint allows one current
    key, and the loser of two creations reads the winner's."""
    existing = _current_key(organization)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _signing_key_create(organization, now or timezone.now())
    except IntegrityError:
        winner = _current_key(organization)
        if winner is None:
            raise
        return winner


def signing_key_rotate(organization: Organization, *, now: datetime | None = None) -> SigningKey:
    """Retire the current key (it stays published, so its receipts keep verifying) and make a new one."""
    now = now or timezone.now()
    with transaction.atomic():
        # Rotations of one organization take turns, so each retires exactly the key before it.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        SigningKey.objects.for_organization(organization).filter(retired_at__isnull=True).update(retired_at=now)
        return _signing_key_create(organization, now)


def _signer(organization: Organization) -> tuple[SigningKey, OKPKey]:
    """The current key with its private half. A key that no SECRET_KEY opens any more (the secret changed
    without a fallback) is retired and replaced: what it signed still verifies from its public half."""
    key = signing_key_current(organization)
    private_raw = _unseal(key)
    if private_raw is None:
        logger.warning("Receipt signing key %s no longer opens with SECRET_KEY; rotating it.", key.kid)
        key = signing_key_rotate(organization)
        private_raw = _unseal(key)
        if private_raw is None:  # a key sealed a moment ago always opens
            raise RuntimeError("A new receipt signing key does not open.")
    private = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(private_raw), {"kid": key.kid})
    return key, private


def receipt_jwks(organization: Organization | None) -> dict[str, list[dict[str, str]]]:
    """The organization's JWKS: every key, current and retired, public halves only."""
    return {"keys": [signing_key_jwk(key) for key in signing_key_list(organization)]}


# --- claims --------------------------------------------------------------------------------------------------------


def public_base_url(request: HttpRequest | None = None) -> str:
    """Where the public pages are: the request's own scheme and host, else VISAGE_PUBLIC_URL."""
    if request is not None:
        return f"{request.scheme}://{request.get_host()}"
    return settings.VISAGE_PUBLIC_URL.rstrip("/")


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d\s()./-]{5,}\d")
_CONTACT_LABEL = re.compile(r"(?i)(tel|telefon|phone|fon|fax|e-?mail|mail)\.?:?")


def controller_contact_parts(contact: str) -> dict[str, Any]:
    """A notice's free-text contact split into the receipt's email, phone and address where they can be told
    apart; the address is what is left (the whole text when nothing was found)."""
    parts: dict[str, Any] = {}
    rest = contact
    email = _EMAIL.search(rest)
    if email:
        parts["email"] = email.group(0)
        rest = rest.replace(email.group(0), " ")
    phone = next((m for m in _PHONE.finditer(rest) if sum(c.isdigit() for c in m.group(0)) >= 7), None)
    if phone:
        parts["phone"] = phone.group(0).strip()
        rest = rest.replace(phone.group(0), " ")
    # What is left, by segment, without the labels that stood before the email or the phone number.
    segments = [re.sub(r"\s+", " ", segment).strip(" /-") for segment in re.split(r"[,;|\n]", rest)]
    address = ", ".join(s for s in segments if s and not _CONTACT_LABEL.fullmatch(s))
    parts["address"] = {"streetAddress": address or contact}
    return parts


def _jurisdiction(organization: Organization, grant: Grant) -> str:
    """The organization's jurisdiction in words (its retention policy); without a policy, the controller's
    address as the notice gives it."""
    policy = RetentionPolicy.objects.for_organization(organization).first()
    if policy is not None:
        labels = dict(retention.Jurisdiction.CHOICES)
        if policy.jurisdiction in labels:
            return str(labels[policy.jurisdiction])
    return grant.notice.controller_contact


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def receipt_id(grant: Grant) -> str:
    """The grant's consentReceiptID: stable across downloads and signing keys."""
    return str(uuid.uuid5(RECEIPT_ID_NAMESPACE, f"{grant.organization_id}:{grant.pk}"))


def receipt_claims(
    grant: Grant,
    request: HttpRequest | None = None,
    *,
    signing_key: SigningKey | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Kantara Consent Receipt v1.1 of one grant, plus extensions: `iat`, `organization` (slug),
    `noticeHash`, `purposeKey`, `grantState` (the consent guard's state at signing), `derivedAttributes` (what the
    notice says is derived from faces) and `jwksUrl`. Words are English; `language` is the notice's."""
    now = now or timezone.now()
    organization = grant.organization
    notice = grant.notice
    subject: Subject = grant.subject
    signing_key = signing_key or signing_key_current(organization)
    base = public_base_url(request)
    with translation.override("en"):
        purpose_words = str(Purpose(grant.purpose).label) if grant.purpose in Purpose.values else grant.purpose
        jurisdiction = _jurisdiction(organization, grant)
    shared = grant.purpose == Purpose.PARTNER_SHARING
    purpose: dict[str, Any] = {
        "purpose": purpose_words,
        "purposeCategory": PURPOSE_CATEGORIES.get(grant.purpose, ["1 - Core Function"]),
        "consentType": "EXPLICIT",
        "piiCategory": PII_CATEGORIES.get(grant.purpose, ["biometric"]),
        "primaryPurpose": True,
        "termination": f"{_utc(grant.expires_at)} or withdrawal on the 'my data' page",
        "thirdPartyDisclosure": shared,
    }
    if shared and notice.recipients.strip():
        purpose["thirdPartyName"] = notice.recipients.strip()
    controller = {
        "piiController": notice.controller_name,
        "onBehalf": False,
        "contact": notice.controller_contact,
        **controller_contact_parts(notice.controller_contact),
    }
    notice_path = reverse("consent:notice", kwargs={"org_slug": organization.slug, "text_hash": grant.notice_hash})
    keys_path = reverse("consent:receipt-keys", kwargs={"org_slug": organization.slug})
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": jurisdiction,
        "consentTimestamp": int(grant.granted_at.timestamp()),
        "collectionMethod": COLLECTION_METHODS.get(grant.channel, grant.channel),
        "consentReceiptID": receipt_id(grant),
        "publicKey": signing_key_jwk(signing_key),
        "language": grant.language,
        "piiPrincipalId": str(subject.public_id),
        "piiControllers": [controller],
        "policyUrl": f"{base}{notice_path}",
        "services": [{"service": SERVICE_NAME, "purposes": [purpose]}],
        "sensitive": True,
        "spiCat": ["biometric"],
        # Extensions.
        "iat": int(now.timestamp()),
        "organization": organization.slug,
        "noticeHash": grant.notice_hash,
        "purposeKey": grant.purpose,
        "grantState": grant_state(grant, at=now).value,
        "derivedAttributes": sorted(notice.derived_attribute_set),
        "jwksUrl": f"{base}{keys_path}",
    }


def receipt_sign(grant: Grant, request: HttpRequest | None = None, *, now: datetime | None = None) -> str:
    """The grant's receipt as a compact JWS, signed with the organization's current key."""
    key, private = _signer(grant.organization)
    claims = receipt_claims(grant, request, signing_key=key, now=now)
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, private, algorithms=[ALGORITHM])


def receipt_grant_get(*, organization: Organization | None, subject: Subject, grant_id: int) -> Grant | None:
    """One grant of this subject in this organization (with what a receipt reads); None for another subject's,
    another organization's, or an id that cannot exist."""
    if organization is None or subject.organization_id != organization.pk or not 0 < grant_id < 2**63:
        return None
    return (
        Grant.objects.for_organization(organization)
        .select_related("organization", "notice", "subject")
        .filter(subject=subject, pk=grant_id)
        .first()
    )


# --- verification --------------------------------------------------------------------------------------------------


def _as_text(token: str | bytes) -> str:
    if isinstance(token, bytes):
        if len(token) > MAX_RECEIPT_BYTES:
            raise ReceiptInvalid("malformed", "The receipt is larger than any receipt.")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise ReceiptInvalid("malformed", "The receipt is not a compact JWS (not ASCII).") from None
    token = token.strip()
    if len(token) > MAX_RECEIPT_BYTES:
        raise ReceiptInvalid("malformed", "The receipt is larger than any receipt.")
    return token


def receipt_unverified(token: str | bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a receipt WITHOUT checking its signature (to find its keys); ReceiptInvalid
    "malformed" when it is not a compact JWS carrying a Kantara v1.1 receipt."""
    text = _as_text(token)
    try:
        compact = jws.extract_compact(text.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeDecodeError, TypeError):
        raise ReceiptInvalid("malformed", "The receipt is not a compact JWS with a JSON payload.") from None
    if not isinstance(claims, dict) or claims.get("version") != RECEIPT_VERSION:
        raise ReceiptInvalid("malformed", f"The payload is not a {RECEIPT_VERSION} consent receipt.")
    return dict(compact.headers()), claims


def _keys_by_kid(keys: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, OKPKey]:
    entries = keys.get("keys") if isinstance(keys, Mapping) else list(keys)
    if not isinstance(entries, list):
        raise ReceiptKeysInvalid('A JWKS is an object with a "keys" list.')
    found: dict[str, OKPKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("kty") != "OKP" or entry.get("crv") != CURVE:
            continue  # other keys may share a JWKS; they never verify a receipt
        if "d" in entry:
            raise ReceiptKeysInvalid("The key set holds a private key; verify with public keys only.")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ReceiptKeysInvalid("Every Ed25519 key of the set needs a kid.")
        try:
            found[kid] = OKPKey.import_key({"kty": "OKP", "crv": CURVE, "x": entry["x"]})
        except (JoseError, KeyError, TypeError, ValueError):
            raise ReceiptKeysInvalid(f"The key {kid!r} is not an Ed25519 public key.") from None
    return found


def receipt_verify(token: str | bytes, *, keys: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The receipt's claims when its signature verifies with the key its kid names in `keys` (a JWKS, or a list
    of JWKs); ReceiptInvalid with the reason otherwise. Only EdDSA over Ed25519 is accepted."""
    header, _ = receipt_unverified(token)
    if header.get("alg") != ALGORITHM:
        raise ReceiptInvalid(
            "unsupported_algorithm", f"Receipts are signed with {ALGORITHM}, not {header.get('alg')!r}."
        )
    kid = header.get("kid")
    key = _keys_by_kid(keys).get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ReceiptInvalid("unknown_kid", f"No published key has the kid {kid!r}.")
    try:
        verified = jws.deserialize_compact(_as_text(token), key, algorithms=[ALGORITHM])
    except BadSignatureError:
        raise ReceiptInvalid("bad_signature", "The signature does not match the receipt: it was changed or signed "
                             "with another key.") from None
    except JoseError as error:
        raise ReceiptInvalid("malformed", f"The receipt is not a valid JWS ({error.error}).") from None
    return json.loads(verified.payload)


def receipt_verify_published(token: str | bytes) -> dict[str, Any]:
    """Verify against the published keys of the organization the receipt names (`organization`), by kid: a key
    of another organization never verifies it."""
    _, claims = receipt_unverified(token)
    slug = claims.get("organization")
    organization = Organization.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if organization is None:
        raise ReceiptInvalid("unknown_organization", f"No organization {slug!r} publishes keys here.")
    return receipt_verify(token, keys=receipt_jwks(organization))
