"""pingmon reads HTTP(S)_PROXY, ALL_PROXY and NO_PROXY as the real curl does: every case of
the unit tables is put to curl, which must decide the same (loopback only: host names are
pinned to 127.0.0.1 with --resolve, and every proxy is a closed loopback port)."""

from __future__ import annotations

import re
import subprocess

import pytest

from pingmon.proxies import environment_proxy
from tests.processes import free_port
from tests.tools import require_tool
from tests.unit.test_proxies import NO_PROXY_CASES, VARIABLE_CASES

TARGET_PORT = 7  # nothing listens there: a direct attempt is refused at once


def curl_proxy_port(url: str, host: str, environ: dict[str, str]) -> int | None:
    """The port curl first tries: a proxy's, or None when it connects to the target itself."""
    curl = require_tool("curl")
    resolve = [] if re.fullmatch(r"[\d.]+|\[.*\]", host) else ["--resolve", f"{host}:7:127.0.0.1"]
    done = subprocess.run(
        [curl, "-q", "-sv", "--max-time", "3", *resolve, url],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    match = re.search(r"Trying (?:127\.0\.0\.1|[\d.]+|\[[0-9a-f:]+\]):(\d+)", done.stderr)
    assert match, done.stderr
    port = int(match.group(1))
    return None if port == TARGET_PORT else port


@pytest.mark.parametrize(("host", "no_proxy", "exempt"), NO_PROXY_CASES)
def test_curl_exempts_the_same_hosts(host: str, no_proxy: str, exempt: bool) -> None:
    proxy_port = free_port()
    environ = {"http_proxy": f"http://127.0.0.1:{proxy_port}", "NO_PROXY": no_proxy}
    url = f"http://{host}:{TARGET_PORT}/"
    curl_went_direct = curl_proxy_port(url, host, environ) is None
    assert curl_went_direct is exempt
    assert (environment_proxy(url, environ) is None) is exempt


@pytest.mark.parametrize(
    ("scheme", "environ", "variable"),
    # pingmon reads HTTP_PROXY for http:// on purpose; curl skips it (CGI's httpoxy).
    [case for case in VARIABLE_CASES if case[2] != "HTTP_PROXY"],
)
def test_curl_takes_the_same_variable(
    scheme: str, environ: dict[str, str], variable: str | None
) -> None:
    ports = {name: free_port() for name, value in environ.items() if value}
    curl_environ = {
        name: f"http://127.0.0.1:{ports[name]}" if value else "" for name, value in environ.items()
    }
    url = f"{scheme}://api.example.com:{TARGET_PORT}/"
    port = curl_proxy_port(url, "api.example.com", curl_environ)
    curl_variable = next((name for name, used in ports.items() if used == port), None)
    assert curl_variable == variable
    proxy = environment_proxy(url, curl_environ)
    assert (proxy.source if proxy else None) == variable
