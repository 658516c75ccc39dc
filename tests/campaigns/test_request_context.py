"""The request's attributes for rules: device classes of real user agents, and junk that becomes unknown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.request_context import DEVICES, WEEKDAYS, device_class, request_attributes

NOW = datetime(2024, 3, 4, 23, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(("user_agent", "device"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
     "Safari/537.36", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
     "Safari/605.1.15", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "desktop"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
     "Mobile/15E148 Safari/604.1", "tablet"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
     "Safari/537.36", "mobile"),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
     "Safari/537.36", "tablet"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "mobile"),
    ("Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0", "tablet"),
    ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like "
     "Chrome/124.0.6367.179 Safari/537.36", "tablet"),
    ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0 Mobile "
     "Safari/537.36", "mobile"),
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; Tablet PC 2.0)", "desktop"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
     "Safari/537.36", "bot"),
    ("curl/8.5.0", "bot"),
    ("python-requests/2.31.0", "bot"),
    ("Wget/1.21.4", "bot"),
    ("", "desktop"),
])
def test_device_class_of_real_user_agents(user_agent: str, device: str) -> None:
    assert device_class(user_agent) == device


def test_language_prefers_the_page_then_the_most_preferred_accept_language() -> None:
    assert request_attributes(language="de-CH", accept_language="fr", now=NOW).language == "de"
    assert request_attributes(accept_language="fr-CH, fr;q=0.9, en;q=0.8", now=NOW).language == "fr"
    assert request_attributes(accept_language="en;q=0.5, de;q=0.9", now=NOW).language == "de"
    assert request_attributes(language="12", accept_language="*, es;q=0.1", now=NOW).language == "es"
    assert request_attributes(accept_language="x-klingon, i-default", now=NOW).language == ""
    assert request_attributes(accept_language="de;q=0, en;q=nan", now=NOW).language == ""


@pytest.mark.parametrize(("raw", "country"), [("de", "DE"), (" FR ", "FR"), ("XX", ""), ("T1", ""), ("DEU", ""),
                                              ("", ""), ("ü", ""), ("ÄÖ", "")])
def test_country_is_two_ascii_letters_upper_case(raw: str, country: str) -> None:
    assert request_attributes(country=raw, now=NOW).country == country


def test_utm_parameters_come_from_the_url_query() -> None:
    attributes = request_attributes(
        url="https://shop.example/p?utm_source=Newsletter&utm_medium=&utm_campaign=spring+sale&utm_source=second"
            "&utm_other=1&x=2#frag", now=NOW)
    assert attributes.utm == {"utm_source": "Newsletter", "utm_campaign": "spring sale"}
    assert request_attributes(url="https://[::1/?utm_source=a", now=NOW).utm == {}
    assert len(request_attributes(url="https://x/?utm_term=" + "a" * 5000, now=NOW).utm.get("utm_term", "")) <= 200


@pytest.mark.parametrize(("referrer", "host"), [
    ("https://WWW.Google.DE:443/search?q=x", "www.google.de"), ("http://example.com./", "example.com"),
    ("android-app://com.google.android.gm/", "com.google.android.gm"), ("example.com/no-scheme", ""),
    ("http://[::1", ""), ("", ""), ("https://exa mple.com/", ""), ("https://user:pw@host.example/", "host.example"),
])
def test_referrer_host_is_lower_case_without_port(referrer: str, host: str) -> None:
    assert request_attributes(referrer=referrer, now=NOW).referrer_host == host


def test_local_hour_and_weekday_follow_the_time_zone_and_fall_back_to_utc() -> None:
    berlin = request_attributes(timezone="Europe/Berlin", now=NOW)
    assert (berlin.local_hour, berlin.weekday) == (0, "tue")
    new_york = request_attributes(timezone="America/New_York", now=NOW)
    assert (new_york.local_hour, new_york.weekday) == (18, "mon")
    for junk in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Europe/", "\x00", "A" * 300, ""):
        attributes = request_attributes(timezone=junk, now=NOW)
        assert (attributes.local_hour, attributes.weekday) == (23, "mon"), junk
    naive = request_attributes(now=NOW.replace(tzinfo=None))
    assert naive.local_hour == 23


def test_coarse_attributes_are_device_language_country_only() -> None:
    attributes = request_attributes(user_agent="curl/8", language="de", country="DE", now=NOW, returning=True,
                                    url="https://x/?utm_source=a", referrer="https://r.example/")
    assert attributes.coarse() == {"device": "bot", "language": "de", "country": "DE"}
    assert attributes.returning is True


@settings(max_examples=300, deadline=None)
@given(user_agent=st.text(max_size=300), accept_language=st.text(max_size=100), language=st.text(max_size=30),
       country=st.text(max_size=5), url=st.text(max_size=200), referrer=st.text(max_size=200),
       timezone=st.text(max_size=40))
def test_junk_never_raises_and_stays_bounded(user_agent: str, accept_language: str, language: str, country: str,
                                             url: str, referrer: str, timezone: str) -> None:
    attributes = request_attributes(user_agent=user_agent, accept_language=accept_language, language=language,
                                    country=country, url="https://x/?" + url, referrer=referrer, timezone=timezone,
                                    now=NOW)
    assert attributes.device in DEVICES and attributes.weekday in WEEKDAYS and 0 <= attributes.local_hour <= 23
    assert len(attributes.language) <= 3 and len(attributes.country) in (0, 2)
    assert all(0 < len(value) <= 200 for value in attributes.utm.values())
    assert len(attributes.referrer_host) <= 253
