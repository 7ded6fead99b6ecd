"""Which loop `run`, `check` and `demo` choose: uvloop where it imports (auto, the default),
asyncio's where it does not or when asked; the flag wins over the environment."""

from __future__ import annotations

import sys

import pytest

from pingmon.eventloop import ENV_VAR, EventLoopError, choose


@pytest.fixture
def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import uvloop`` fails, as where it is not installed (Windows)."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


def test_the_default_is_uvloop_where_it_imports() -> None:
    pytest.importorskip("uvloop")
    assert choose(None, {}) == "uvloop"
    assert choose(None, {ENV_VAR: " "}) == "uvloop"


@pytest.mark.parametrize(("flag", "env"), [(None, {}), ("auto", {}), (None, {ENV_VAR: "AUTO"})])
@pytest.mark.usefixtures("without_uvloop")
def test_auto_is_asyncio_where_uvloop_does_not_import(
    flag: str | None, env: dict[str, str]
) -> None:
    assert choose(flag, env) == "asyncio"


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {ENV_VAR: "asyncio"}, "asyncio"),
        ("asyncio", {ENV_VAR: "uvloop"}, "asyncio"),
        ("uvloop", {ENV_VAR: "asyncio"}, "uvloop"),
        ("auto", {ENV_VAR: "asyncio"}, "uvloop"),
    ],
)
def test_the_flag_else_the_environment_turns_uvloop_on_or_off(
    flag: str | None, env: dict[str, str], expected: str
) -> None:
    pytest.importorskip("uvloop")
    assert choose(flag, env) == expected


@pytest.mark.usefixtures("without_uvloop")
def test_uvloop_asked_for_and_missing_is_refused_naming_where_it_was_asked() -> None:
    with pytest.raises(EventLoopError, match="--event-loop: uvloop was asked for"):
        choose("uvloop", {})
    with pytest.raises(EventLoopError, match=f"{ENV_VAR}: uvloop was asked for"):
        choose(None, {ENV_VAR: "uvloop"})


def test_an_unknown_loop_is_refused_naming_the_choices() -> None:
    with pytest.raises(EventLoopError, match="must be one of auto, uvloop, asyncio, not 'tokio'"):
        choose(None, {ENV_VAR: "tokio"})
