"""Where a sandbox may listen. A sandbox answers as the provider would, without checking who
asks, and the PayPal one has an unauthenticated control API (faults, clock, item changes),
so it listens on loopback unless whoever starts it says, explicitly, that it may not."""
from __future__ import annotations

import ipaddress


class PublicBindRefused(ValueError):
    """A sandbox was asked to listen beyond loopback without the explicit flag."""


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (brackets allowed); False for anything else,
    the wildcard addresses (`0.0.0.0`, `::`, ``""``) and host names included."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_public: bool) -> None:
    """Refuse a non-loopback `host` unless `allow_public` (``--allow-public``) is given."""
    if allow_public or is_loopback(host):
        return
    raise PublicBindRefused(
        f"refusing to listen on {host!r}: a sandbox is a test tool that answers anyone (the "
        f"PayPal one has an unauthenticated control API); bind a loopback address "
        f"(127.0.0.1, ::1, localhost), or pass allow_public=True (--allow-public) to expose "
        f"it on purpose")
