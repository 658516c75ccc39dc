"""Minimal evidence of how a consent decision was made: never more than needed to prove it."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def truncate_ip(raw: str | None) -> str:
    """The network, not the host: /24 for IPv4, /48 for IPv6. Empty when absent or unparsable."""
    if not raw:
        return ""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_BOT_MARKERS = ("bot", "crawler", "spider", "slurp", "headlesschrome", "python-requests", "curl/", "wget/")
_MOBILE_MARKERS = ("mobile", "iphone", "android", "ipod", "windows phone")
_TABLET_MARKERS = ("ipad", "tablet")


def user_agent_class(user_agent: str | None) -> str:
    """A coarse class such as "browser/desktop", "browser/mobile" or "bot"; never the user agent itself."""
    ua = (user_agent or "").lower()
    if not ua:
        return "unknown"
    if any(marker in ua for marker in _BOT_MARKERS):
        return "automated"
    if any(marker in ua for marker in _TABLET_MARKERS):
        return "browser/tablet"
    if any(marker in ua for marker in _MOBILE_MARKERS):
        return "browser/mobile"
    if "mozilla/" in ua:
        return "browser/desktop"
    return "other"


def client_address(request: HttpRequest) -> str:
    """The client's address. Behind VISAGE_TRUSTED_PROXY_HOPS reverse proxies it is the entry they appended
    to X-Forwarded-For; entries further left are the client's own word and never trusted."""
    hops = settings.VISAGE_TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def request_evidence(request: HttpRequest) -> dict[str, str]:
    """Truncated IP and user-agent class of a request."""
    return {
        "ip_prefix": truncate_ip(client_address(request)),
        "user_agent_class": user_agent_class(request.META.get("HTTP_USER_AGENT")),
    }
