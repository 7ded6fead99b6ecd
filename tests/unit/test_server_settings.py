"""The ``server`` section: bounds on pingmon's own HTTP server, with defaults."""

from __future__ import annotations

import errno
from pathlib import Path

import aiohttp
import pytest

from pingmon.client import exhausted_errno
from pingmon.config import ServerSettings, load_config
from pingmon.errors import ConfigError


def write(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "pingmon.yaml"
    path.write_text(f"server: {server}\n", encoding="utf-8")
    return path


def test_the_defaults_bound_every_connection() -> None:
    settings = ServerSettings()
    assert settings.header_timeout == 10.0
    assert settings.idle_timeout == 75.0
    assert settings.write_timeout == 10.0
    assert settings.max_connections == 256


def test_durations_are_read_as_everywhere_else(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "{header_timeout: 500ms, idle_timeout: 2m, write_timeout: 5}")
    )
    assert config.settings.server.header_timeout == 0.5
    assert config.settings.server.idle_timeout == 120.0
    assert config.settings.server.write_timeout == 5.0


@pytest.mark.parametrize(
    ("server", "path"),
    [
        ("{header_timeout: 0s}", "server.header_timeout"),
        ("{idle_timeout: -1s}", "server.idle_timeout"),
        ("{write_timeout: soon}", "server.write_timeout"),
        ("{max_connections: 0}", "server.max_connections"),
        ("{read_timeout: 5s}", "server.read_timeout"),
    ],
)
def test_a_bound_that_bounds_nothing_is_refused_with_its_path(
    tmp_path: Path, server: str, path: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, server))
    assert any(f": {path}:" in line for line in refused.value.lines())


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
def test_running_out_of_a_local_resource_is_told_apart_from_a_target_failure(code: int) -> None:
    wrapped = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        OSError(code, "out"),
    )
    assert exhausted_errno(wrapped) == code
    assert exhausted_errno(OSError(code, "out")) == code


@pytest.mark.parametrize("code", [errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH])
def test_a_target_that_refuses_is_not_pingmon_running_out(code: int) -> None:
    assert exhausted_errno(OSError(code, "no")) is None
    assert exhausted_errno(TimeoutError()) is None
