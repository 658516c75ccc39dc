"""The request's attributes that rules read (`request.*` in docs/personalization.md). Pure: no database, no
settings; the views hand in the raw header and body values. Junk never raises: a value that cannot be read
becomes unknown ("" or UTC), and every string kept is bounded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

DEVICES = ("desktop", "mobile", "tablet", "bot")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

MAX_USER_AGENT = 1024
MAX_URL = 4096
MAX_HEADER = 1024
MAX_VALUE = 200  # a UTM value, as conditions.MAX_STRING: longer ones could never be compared anyway
MAX_HOST = 253  # RFC 1035
MAX_TIMEZONE = 64  # the longest IANA name is about 32

# Checked in this order: a crawler or a headless browser says so, whatever device it imitates.
# "bot" only as a word's end ("Googlebot/2.1", "bingbot", "AdsBot-Google"), but not the phone brand CUBOT.
_BOT = re.compile(
    r"(?<!cu)bot\b|crawl|spider|slurp|headless|phantomjs|lighthouse|pagespeed|facebookexternalhit|"
    r"mediapartners|inspectiontool|aiohttp|^curl/|^wget/|^python|^go-http-client|^java/|^libwww-perl|"
    r"^httpie|^axios/|^node-fetch|^scrapy|^apache-httpclient|^ruby|^guzzle|^postmanruntime",
    re.IGNORECASE,
)
# Tablets before phones: Android tablets leave out "Mobile", Kindle Fire says Silk, Firefox says "Tablet".
# "Tablet PC" is a touch laptop of the Windows XP/7 era, a desktop. iPadOS 13+ Safari presents itself as a Mac
# and is a desktop here: the user agent cannot tell.
_TABLET = re.compile(r"ipad|kindle|silk/|playbook|tablet(?! pc)|android(?!.*mobi)", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|blackberry|bb10|windows phone|opera mini|webos", re.IGNORECASE)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_HOST = re.compile(r"[a-z0-9._:-]+")  # names, IPv4 and (unbracketed) IPv6; anything else is not a host


def device_class(user_agent: str) -> str:
    """desktop, mobile, tablet or bot, from the user agent: bots (crawlers, headless browsers, HTTP libraries)
    first, then tablets, then phones; anything else (an empty user agent too: it tells nothing) is a desktop."""
    if not isinstance(user_agent, str):
        return "desktop"
    text = user_agent[:MAX_USER_AGENT].strip()
    if _BOT.search(text):
        return "bot"
    if _TABLET.search(text):
        return "tablet"
    if _MOBILE.search(text):
        return "mobile"
    return "desktop"


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What a rule may read of the request; coarse, and nothing that identifies the visitor."""

    device: str  # desktop | mobile | tablet | bot
    language: str  # primary subtag, lower case, "" unknown
    country: str  # ISO alpha-2 upper case, "" unknown
    utm: dict[str, str] = field(default_factory=dict)  # utm_source, utm_medium, ... (only those present)
    referrer_host: str = ""  # "" none
    local_hour: int = 0  # 0..23
    weekday: str = "mon"  # mon..sun
    returning: bool = False

    def coarse(self) -> dict[str, str]:
        """What the decision log keeps: device, language, country."""
        return {"device": self.device, "language": self.language, "country": self.country}


def primary_language(tag: str) -> str:
    """The primary subtag of a language tag ("de-CH" -> "de"), lower case; "" when it is not 2-3 letters."""
    if not isinstance(tag, str):
        return ""
    primary = tag.strip()[:MAX_HEADER].replace("_", "-").split("-", 1)[0]
    return primary.lower() if _LANGUAGE.fullmatch(primary) else ""


def accept_language_primary(header: str) -> str:
    """The primary subtag of the most preferred language in an Accept-Language header (the highest q, the first
    among equals: for a browser, its first tag); "*", q=0 and junk are skipped."""
    if not isinstance(header, str):
        return ""
    best, best_q = "", 0.0
    for item in header[:MAX_HEADER].split(","):
        tag, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # NaN too
                    q = 0.0
        language = primary_language(tag)
        if language and q > best_q:
            best, best_q = language, q
    return best


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper case; "" for anything else, and for Cloudflare's XX (unknown)."""
    if not isinstance(value, str):
        return ""
    code = value.strip()
    if not _COUNTRY.fullmatch(code):
        return ""
    code = code.upper()
    return "" if code == "XX" else code


def utm_parameters(url: str) -> dict[str, str]:
    """The UTM parameters of a URL's query (the first of each, trimmed, bounded); empty values are left out."""
    if not isinstance(url, str) or not url:
        return {}
    try:
        query = urlsplit(url[:MAX_URL]).query
        pairs = parse_qsl(query, keep_blank_values=False, max_num_fields=100)
    except ValueError:  # a malformed IPv6 host, or too many fields
        return {}
    utm: dict[str, str] = {}
    for name, value in pairs:
        if name in UTM_KEYS and name not in utm:
            value = value.strip()[:MAX_VALUE]
            if value:
                utm[name] = value
    return utm


def referrer_host(referrer: str) -> str:
    """The referrer's host name, lower case, without port or trailing dot; "" when there is none."""
    if not isinstance(referrer, str) or not referrer:
        return ""
    try:
        host = urlsplit(referrer[:MAX_URL].strip()).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    return host if len(host) <= MAX_HOST and _HOST.fullmatch(host) else ""


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError, UnicodeError):  # ZoneInfoNotFoundError is a KeyError
        return None


def time_zone(name: str) -> ZoneInfo | None:
    """The IANA zone of that name, or None (unknown, malformed, too long)."""
    if not isinstance(name, str) or not name or len(name) > MAX_TIMEZONE or "\x00" in name:
        return None
    return _zone(name.strip())


def request_attributes(
    *,
    user_agent: str = "",
    accept_language: str = "",
    language: str = "",
    country: str = "",
    url: str = "",
    referrer: str = "",
    timezone: str = "",
    now: datetime,
    returning: bool = False,
) -> RequestAttributes:
    """The attributes of one request. `language` (the snippet's navigator.language, or the partner's) wins over
    Accept-Language; `timezone` is an IANA name (UTC when unknown or invalid); `now` is aware (naive: UTC).
    Never raises on junk: bad values become unknown ("" / UTC)."""
    zone = time_zone(timezone) or UTC
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return RequestAttributes(
        device=device_class(user_agent),
        language=primary_language(language) or accept_language_primary(accept_language),
        country=country_code(country),
        utm=utm_parameters(url),
        referrer_host=referrer_host(referrer),
        local_hour=local.hour,
        weekday=WEEKDAYS[local.weekday()],
        returning=returning is True,
    )
