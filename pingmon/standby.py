"""Start on a refused configuration file: no targets, the failure visible, until it is fixed.

``pingmon run --config.allow-invalid-at-start`` (the Helm chart's sidecar mode) must never
crash-loop in the application's pod over a bad file or a missing secret. Instead of exiting 2
it serves ``/metrics`` with ``pingmon_config_last_reload_successful 0`` (so
PingmonConfigReloadFailed fires), ``/-/ready`` answers 503, every problem is logged, and the
watcher reloads as soon as the file, or a secret file it names, changes.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pingmon.config import Config, Settings, WatchSettings, split_listen
from pingmon.environment import OverrideRefused
from pingmon.errors import ConfigError
from pingmon.loading import load_yaml

log = logging.getLogger("pingmon")


@dataclass(frozen=True, slots=True)
class StandbyConfig(Config):
    """An empty configuration standing in for a refused file.

    ``problems``: the refusal's lines; ``secret_files``: the ``{file: PATH}`` references found
    in the refused file, watched beside it (a Secret created after the pod started appears
    there, and the file then loads).
    """

    problems: tuple[str, ...] = ()
    secret_files: tuple[str, ...] = ()

    def watched_files(self) -> tuple[str, ...]:
        return (self.source, *self.secret_files)


def standby_config(error: ConfigError) -> StandbyConfig:
    """The configuration to start with instead of the file ``error`` refused: no provider, no
    target, the file's ``listen`` and ``watch`` when they are valid, otherwise the defaults;
    ``PINGMON_*`` overrides still apply."""
    raw = _raw_mapping(error.source)
    settings = _settings(_usable(raw))
    return StandbyConfig(
        settings=settings,
        targets=(),
        source=error.source,
        problems=tuple(error.lines()),
        secret_files=_watchable(raw),
    )


def start_refused(error: ConfigError) -> StandbyConfig:
    """Log why the file was refused, and return the configuration to start with instead."""
    for line in error.lines():
        log.error("configuration refused; running with no targets until it is fixed",
                  extra={"problem": line})  # fmt: skip
    return standby_config(error)


def _usable(raw: dict[str, Any]) -> dict[str, Any]:
    """The refused file's ``listen`` and ``watch`` where they are valid on their own: the port
    the container exposes, and how often the fix is looked for."""
    usable: dict[str, Any] = {}
    if _valid_listen(raw.get("listen")):
        usable["listen"] = raw["listen"]
    with contextlib.suppress(ValidationError):
        usable["watch"] = WatchSettings.model_validate(raw.get("watch") or {})
    return usable


def _settings(overrides: dict[str, Any]) -> Settings:
    try:
        return Settings(**overrides)
    except (ValidationError, OverrideRefused):  # a bad PINGMON_* variable: among the problems
        return Settings.model_construct(**overrides)


def _raw_mapping(source: str) -> dict[str, Any]:
    """The file as plain YAML, within the loading bounds, or {} when it cannot be read as a
    mapping."""
    try:
        return load_yaml(source)
    except ConfigError:
        return {}


def _valid_listen(listen: object) -> bool:
    if not isinstance(listen, str):
        return False
    try:
        split_listen(listen)
    except ValueError:
        return False
    return True


def _watchable(raw: dict[str, Any]) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(_secret_files(raw)))
    except RecursionError:  # nested deeper than any configuration: watch the file alone
        return ()


def _secret_files(node: object) -> list[str]:
    """Every path of a ``{file: PATH}`` reference in raw YAML, in the order written."""
    if isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get("file"), str) and node["file"]:
            return [node["file"]]
        return [path for value in node.values() for path in _secret_files(value)]
    if isinstance(node, list):
        return [path for value in node for path in _secret_files(value)]
    return []
