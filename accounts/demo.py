"""Where the demo serves, as a URL a person can open. `VISAGE_DEMO_ADDR` takes what runserver takes: a port,
or host:port (IPv4, [IPv6] or a name); a wildcard address (0.0.0.0, 0, [::]) is printed as the loopback
address, which reaches it from the same machine and is an allowed host by default.

Usable without Django: `python -m accounts.demo 0.0.0.0:8001` prints http://127.0.0.1:8001/.
"""

from __future__ import annotations

import ipaddress
import re
import sys

DEFAULT_DEMO_ADDR = "127.0.0.1:8000"

# runserver's own pattern (django.core.management.commands.runserver.naiveip_re).
_ADDRPORT = re.compile(
    r"^(?:(?P<addr>\d{1,3}(?:\.\d{1,3}){3}|\[[a-fA-F0-9:]+\]|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*):)?(?P<port>\d+)$"
)


def demo_host(addr: str) -> str:
    """The host part of `demo_base_url`, an IPv6 address in brackets (as URLs and ALLOWED_HOSTS spell it)."""
    match = _ADDRPORT.match(addr.strip())
    if match is None:
        raise ValueError(f"{addr!r} is not a port or host:port (as runserver takes it).")
    host = match.group("addr") or "127.0.0.1"
    if host.startswith("["):
        try:
            ip = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{addr!r} has no valid IPv6 address.") from None
        return "[::1]" if ip.is_unspecified else f"[{ip}]"
    if host in ("0", "0.0.0.0"):  # noqa: S104 - recognising the wildcard, not binding to it
        return "127.0.0.1"
    return host


def demo_base_url(addr: str) -> str:
    """The URL, ending in '/', that the demo served on `addr` answers at."""
    match = _ADDRPORT.match(addr.strip())
    if match is None:
        raise ValueError(f"{addr!r} is not a port or host:port (as runserver takes it).")
    port = int(match.group("port"))
    if not 0 < port < 65536:
        raise ValueError(f"{addr!r} has no valid port.")
    return f"http://{demo_host(addr)}:{port}/"


if __name__ == "__main__":
    try:
        print(demo_base_url(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DEMO_ADDR))
    except ValueError as error:
        sys.exit(f"VISAGE_DEMO_ADDR: {error}")
