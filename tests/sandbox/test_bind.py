"""A sandbox listens on loopback only, unless whoever starts it asks for more explicitly:
its answers are a test tool's, and the PayPal one has an unauthenticated control API."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from sandboxes import amazon
from sandboxes import paypal
from sandboxes.bind import PublicBindRefused, is_loopback

BEYOND_LOOPBACK = ["0.0.0.0", "", "::", "192.0.2.10", "10.0.0.1", "example.com"]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _sandbox_config(base_url: str) -> dict:
    with _OPENER.open(base_url.replace("0.0.0.0", "127.0.0.1") + "/_sandbox/config",
                      timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("host", ["127.0.0.1", "127.255.255.254", "localhost", "LOCALHOST",
                                  "::1", "[::1]"])
def test_loopback_hosts_are_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", BEYOND_LOOPBACK)
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", BEYOND_LOOPBACK)
def test_sandbox_refuses_non_loopback_bind_without_flag(host):
    with pytest.raises(PublicBindRefused, match="allow_public=True"):
        paypal.serve(host=host)
    with pytest.raises(PublicBindRefused, match="allow_public=True"):
        amazon.serve(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_sandbox_serves_on_loopback(host):
    server, base_url = paypal.serve(host=host, client_id="bind-test")
    with server:
        assert _sandbox_config(base_url)["client_id"] == "bind-test"
    with amazon.serve(host=host) as card_server:
        assert card_server.base_url.startswith(f"http://{host}:")


def test_sandbox_binds_beyond_loopback_with_the_explicit_flag():
    server, base_url = paypal.serve(host="0.0.0.0", allow_public=True, client_id="bind-test")
    with server:
        assert _sandbox_config(base_url)["client_id"] == "bind-test"
    with amazon.serve(host="0.0.0.0", allow_public=True) as card_server:
        assert card_server.httpd.server_address[0] == "0.0.0.0"


@pytest.mark.parametrize("module", ["sandboxes.paypal", "sandboxes.amazon"])
def test_sandbox_command_refuses_non_loopback_host_without_allow_public(module):
    done = subprocess.run([sys.executable, "-m", module, "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to listen on '0.0.0.0'" in done.stderr
    assert "--allow-public" in done.stderr
