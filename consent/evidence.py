"""Minimal evidence of how a consent decision was made: never more than needed to prove it."""

import ipaddress

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


def request_evidence(request: HttpRequest) -> dict[str, str]:
    """Truncated IP and user-agent class of a request. REMOTE_ADDR only: a proxy sets it correctly or not at all."""
    return {
        "ip_prefix": truncate_ip(request.META.get("REMOTE_ADDR")),
        "user_agent_class": user_agent_class(request.META.get("HTTP_USER_AGENT")),
    }
