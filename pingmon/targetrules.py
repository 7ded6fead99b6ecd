"""What a target's values must satisfy together once defaults apply: its schedule, its webhook,
and the request its provider builds from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pingmon.errors import Problem
from pingmon.fields import format_duration
from pingmon.outbound import check_header_name, check_header_value, has_userinfo
from pingmon.providers import Provider
from pingmon.providers.base import TargetParams

# The check id of the request built at load; a check builds its own with a fresh id.
_LOAD_CHECK_ID = "pingmon-config-validate"


def schedule_problems(schedule: Mapping[str, Any], where: str) -> list[Problem]:
    interval, timeout = schedule["interval"], schedule["timeout"]
    failure_interval = schedule["failure_interval"]
    problems = []
    if timeout >= interval:
        problems.append(Problem(f"{where}.timeout", _not_below(timeout, "the interval", interval)))
    if failure_interval is not None:
        if failure_interval > interval:
            message = (
                f"must not exceed the interval ({format_duration(failure_interval)} > "
                f"{format_duration(interval)})"
            )
            problems.append(Problem(f"{where}.failure_interval", message))
        if timeout >= failure_interval:
            message = _not_below(timeout, "failure_interval", failure_interval)
            problems.append(Problem(f"{where}.timeout", message))
    return problems


def webhook_problems(params: TargetParams, interval: float, where: str) -> list[Problem]:
    """A webhook may take at most one interval: past it, the next ping's webhook could be
    taken for this one's."""
    webhook = params.webhook_settings
    if webhook is None or webhook.timeout <= interval:
        return []
    message = (
        f"must not exceed the target's interval ({format_duration(webhook.timeout)} > "
        f"{format_duration(interval)})"
    )
    return [Problem(f"{where}.webhook.timeout", message)]


def _not_below(value: float, what: str, limit: float) -> str:
    return f"must be below {what} ({format_duration(value)} >= {format_duration(limit)})"


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
