"""Evidence keeps the client's network, not the proxy's, and never trusts what the client adds itself."""

import pytest

from consent.evidence import request_evidence


def test_without_trusted_proxies_remote_addr_is_the_client(rf, settings) -> None:
    settings.VISAGE_TRUSTED_PROXY_HOPS = 0
    request = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert request_evidence(request)["ip_prefix"] == "203.0.113.0/24"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.0/24"),
        # A client that forges an X-Forwarded-For entry only moves it further left; the proxy's entry wins.
        (1, "10.9.9.9, 198.51.100.7", "198.51.100.0/24"),
        (2, "10.9.9.9, 198.51.100.7, 192.0.2.1", "198.51.100.0/24"),
        # Fewer entries than trusted proxies: the header is not what the deployment promised; fall back.
        (2, "198.51.100.7", "203.0.113.0/24"),
    ],
)
def test_behind_trusted_proxies_the_entry_they_appended_is_the_client(
    rf, settings, hops: int, forwarded: str, expected: str
) -> None:
    settings.VISAGE_TRUSTED_PROXY_HOPS = hops
    request = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=forwarded)
    assert request_evidence(request)["ip_prefix"] == expected
