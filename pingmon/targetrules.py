"""What a target's request must satisfy, built at load exactly as each check builds it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pingmon.errors import Problem
from pingmon.outbound import check_header_name, check_header_value, has_userinfo
from pingmon.providers import Provider
from pingmon.providers.base import TargetParams

# The check id of the request built at load; a check builds its own with a fresh id.
_LOAD_CHECK_ID = "pingmon-config-validate"


def request_problems(
    provider: Provider[Any, Any], provider_name: str, params: TargetParams, where: str
) -> list[Problem]:
    """The target's request, built at load exactly as each check builds it (providers are
    pure), against what aiohttp refuses to send: a header name that is not a token, a value
    with a control character, an Authorization header beside ``user:password@`` in the URL.

    The settings' own validators name most of these at their path first; this catches what
    only the combination shows (an http target's Authorization header under a base_url with
    a password) and whatever a provider type from another package builds.
    """
    try:
        request = provider.request(params, _LOAD_CHECK_ID)
    except Exception as error:  # noqa: BLE001 - a provider's fault is this target's problem
        return [Problem(where, f"its request cannot be built ({type(error).__name__})")]
    problems = []
    for name, value in request.headers.items():
        try:
            check_header_name(name)
            check_header_value(value)  # the message names the character, never the value
        except ValueError as error:
            problems.append(Problem(where, f"its request header {name!r}: {error}"))
    authorization = [name for name in request.headers if name.lower() == "authorization"]
    if authorization and has_userinfo(request.url):
        problems.append(_authorization_twice(provider_name, params, where))
    return problems


def _authorization_twice(provider_name: str, params: TargetParams, where: str) -> Problem:
    """aiohttp refuses a request whose URL carries ``user:password@`` and whose headers carry
    Authorization (it would have to send both); named where the header comes from."""
    own_headers: Mapping[str, str] = getattr(params, "headers", None) or {}
    own = next((name for name in own_headers if name.lower() == "authorization"), None)
    if own is not None:
        return Problem(
            f"{where}.headers.{own}",
            f"cannot be sent with the user:password@ in providers.{provider_name}.base_url "
            "(aiohttp sends one Authorization header); remove one of them",
        )
    return Problem(
        f"providers.{provider_name}.base_url",
        "carries user:password@, and this provider sends an Authorization header of its own "
        "(aiohttp sends one); remove user:password@ from the URL",
    )
