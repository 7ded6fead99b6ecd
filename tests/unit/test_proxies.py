"""Proxies from the environment as curl reads them, and a provider's own proxy_url."""

from __future__ import annotations

import pytest

from pingmon.proxies import (
    Proxy,
    check_proxy_url,
    environment_proxy,
    no_proxy_matches,
    parse_proxy,
)

DEAD = "http://127.0.0.1:9"

# (host as written in the URL, NO_PROXY, exempt?): curl 7.88 decides each the same way
# (tests/integration/test_proxy_rules_match_curl.py asks the real curl).
NO_PROXY_CASES: list[tuple[str, str, bool]] = [
    ("api.example.com", "example.com", True),
    ("api.example.com", ".example.com", True),
    ("example.com", ".example.com", True),
    ("example.com", "example.com.", True),
    ("example.com.", "example.com", True),
    ("API.Example.COM", "example.com", True),
    ("api.example.com", "EXAMPLE.com", True),
    ("api.example.com", "xample.com", False),
    ("example.com", "api.example.com", False),
    ("api.example.com", "foo, example.com", True),
    ("api.example.com", "foo example.com", True),
    ("api.example.com", ",,example.com,,", True),
    ("api.example.com", "example.com:7", False),
    ("api.example.com", "*", True),
    ("api.example.com", "foo,*", False),
    ("api.example.com", " * ", False),
    ("api.example.com", "*.example.com", False),
    ("localhost", "", False),
    ("localhost", "LOCALHOST", True),
    ("127.0.0.1", "", False),
    ("127.0.0.1", "localhost", False),
    ("127.1.2.3", "127.1.2.3", True),
    ("127.1.2.3", "127.0.0.0/8", True),
    ("127.1.2.3", "127.1.2.0/24", True),
    ("127.1.2.3", "127.1.3.0/24", False),
    ("127.1.2.3", ".2.3", False),
    ("127.1.2.3", "2.3", False),
    ("127.1.2.3", "foo 127.1.2.3", True),
    ("[::1]", "::1", True),
    ("[::1]", "127.0.0.1", False),
]


@pytest.mark.parametrize(("host", "no_proxy", "exempt"), NO_PROXY_CASES)
def test_no_proxy_matches_hosts_as_curl_does(host: str, no_proxy: str, exempt: bool) -> None:
    proxy = environment_proxy(f"http://{host}:7/", {"http_proxy": DEAD, "NO_PROXY": no_proxy})
    assert (proxy is None) is exempt


def test_no_proxy_matches_ipv6_ranges_and_bracketed_addresses() -> None:
    """curl documents IPv6 CIDR entries since 7.86, but 7.88 misses them (and ``[::1]``)."""
    assert no_proxy_matches("fd00::1", "fd00::/8")
    assert no_proxy_matches("::1", "::/127")
    assert no_proxy_matches("::1", "[::1]")
    assert not no_proxy_matches("fe80::1", "fd00::/8")


# Which variable applies: (URL scheme, environment, the variable whose proxy is used or None).
VARIABLE_CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("https", {"HTTPS_PROXY": DEAD}, "HTTPS_PROXY"),
    ("https", {"https_proxy": DEAD}, "https_proxy"),
    ("https", {"https_proxy": DEAD, "HTTPS_PROXY": "http://127.0.0.1:10"}, "https_proxy"),
    ("https", {"https_proxy": "", "HTTPS_PROXY": DEAD}, "HTTPS_PROXY"),
    ("https", {"HTTP_PROXY": DEAD}, None),
    ("https", {"ALL_PROXY": DEAD}, "ALL_PROXY"),
    ("https", {"all_proxy": DEAD, "ALL_PROXY": "http://127.0.0.1:10"}, "all_proxy"),
    ("https", {"HTTPS_PROXY": DEAD, "ALL_PROXY": "http://127.0.0.1:10"}, "HTTPS_PROXY"),
    ("http", {"http_proxy": DEAD}, "http_proxy"),
    ("http", {"HTTP_PROXY": DEAD}, "HTTP_PROXY"),
    ("http", {"HTTPS_PROXY": DEAD}, None),
    ("http", {"ALL_PROXY": DEAD}, "ALL_PROXY"),
    ("http", {}, None),
    ("http", {"http_proxy": ""}, None),
]


@pytest.mark.parametrize(("scheme", "environ", "variable"), VARIABLE_CASES)
def test_the_url_scheme_picks_the_variable_lowercase_first_then_all_proxy(
    scheme: str, environ: dict[str, str], variable: str | None
) -> None:
    proxy = environment_proxy(f"{scheme}://api.example.com/", environ)
    assert (proxy.source if proxy else None) == variable


def test_an_empty_lowercase_no_proxy_counts_as_unset_and_uppercase_applies() -> None:
    environ = {"http_proxy": DEAD, "no_proxy": "", "NO_PROXY": "example.com"}
    assert environment_proxy("http://api.example.com/", environ) is None


def test_lowercase_no_proxy_wins_over_uppercase() -> None:
    environ = {"http_proxy": DEAD, "no_proxy": "other.com", "NO_PROXY": "example.com"}
    assert environment_proxy("http://api.example.com/", environ) is not None


# Proxy values.


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("http://proxy.internal:3128", "http://proxy.internal:3128"),
        ("http://proxy.internal:3128/", "http://proxy.internal:3128"),
        ("proxy.internal:3128", "http://proxy.internal:3128"),
        ("http://proxy.internal", "http://proxy.internal:1080"),
        ("https://proxy.internal", "https://proxy.internal:443"),
        ("HTTP://Proxy.Internal:8080", "http://proxy.internal:8080"),
        ("http://[fd00::3]:3128", "http://[fd00::3]:3128"),
    ],
)
def test_a_proxy_value_is_read_as_curl_reads_it(value: str, url: str) -> None:
    assert parse_proxy(value, "HTTPS_PROXY") == Proxy(url, "HTTPS_PROXY")


def test_proxy_credentials_in_the_environment_are_kept_out_of_the_url_and_repr() -> None:
    proxy = parse_proxy("http://al%40ce:p%3Ass%20w@proxy.internal:3128", "HTTPS_PROXY")
    assert (proxy.url, proxy.username, proxy.password) == (
        "http://proxy.internal:3128",
        "al@ce",
        "p:ss w",
    )
    assert "p:ss" not in repr(proxy)
    assert "ss%20w" not in repr(proxy)
    assert proxy.address == "http://al%40ce:p%3Ass%20w@proxy.internal:3128"
    assert proxy.secret_values() == ("al@ce", "p:ss w")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("socks5://user:hunter2@127.0.0.1:1080", "socks5:// proxies are not supported"),
        ("http://user:hunter2@:3128", "names no proxy host"),
        ("http://user:hunter2@proxy:99999", "is not a proxy URL"),
        ("http://user:hunter2@proxy:3128/path", "must be scheme://host:port"),
    ],
)
def test_an_unusable_environment_proxy_is_refused_naming_the_variable_never_the_password(
    value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^HTTPS_PROXY {message}") as raised:
        environment_proxy("https://api.example.com/", {"HTTPS_PROXY": value})
    assert "hunter2" not in str(raised.value)


def test_an_unusable_proxy_for_an_exempt_host_is_not_read() -> None:
    environ = {"HTTPS_PROXY": "socks5://127.0.0.1:1080", "NO_PROXY": "example.com"}
    assert environment_proxy("https://api.example.com/", environ) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.internal:3128", "must be 'none' or an http:// or https:// URL"),
        ("socks5://proxy.internal:1080", "must be 'none' or an http:// or https:// URL"),
        ("http://proxy.internal", "must name the proxy's port"),
        ("http://u:hunter2@proxy.internal:3128", "must not hold credentials"),
        ("http://:3128", "names no proxy host"),
        ("http://proxy.internal:3128/x", "must be scheme://host:port"),
    ],
)
def test_proxy_url_must_be_none_or_an_absolute_http_url_with_host_and_port(
    value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        check_proxy_url(value)


def test_proxy_url_none_and_a_url_are_accepted() -> None:
    assert check_proxy_url("none") == "none"
    assert check_proxy_url("https://Proxy.Internal:3128/") == "https://proxy.internal:3128"
