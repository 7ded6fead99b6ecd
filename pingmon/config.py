"""The configuration file: models, environment overrides, and refusal with one line per problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pingmon.environment import ENV_PREFIX, EnvironmentSource, OverrideRefused
from pingmon.errors import ConfigError, Problem
from pingmon.fields import Duration, NumbersNotBooleans, Secret, Slack, format_duration
from pingmon.heap import pausing_collection
from pingmon.loading import load_yaml
from pingmon.problems import UNKNOWN_KEY, validation_problems
from pingmon.providers import PROVIDER_TYPES
from pingmon.schedule import Schedule
from pingmon.sharding import ShardingSettings
from pingmon.targets import Target, resolve_targets, schema_target_model

DEFAULT_CONFIG_PATH = "config/pingmon.yaml"


class Defaults(NumbersNotBooleans):
    """Schedule and limits every target inherits unless it sets its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration = 60.0
    timeout: Duration = 10.0
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="+-fraction of the interval")
    failure_interval: Duration | None = None
    retries: NonNegativeInt = Field(default=0, le=5)
    max_body_bytes: PositiveInt = 1_048_576

    def schedule(self) -> Schedule:
        """The schedule of a target that sets none of these itself."""
        return Schedule(
            interval=self.interval,
            timeout=self.timeout,
            jitter=self.jitter,
            failure_interval=self.failure_interval,
            retries=self.retries,
            max_body_bytes=self.max_body_bytes,
        )


class BackoffSettings(NumbersNotBooleans):
    """How long every target sharing a credential waits after a 429."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: Duration = 30.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    max: Duration = 900.0

    @model_validator(mode="after")
    def _initial_not_above_max(self) -> BackoffSettings:
        if self.initial > self.max:
            initial, maximum = format_duration(self.initial), format_duration(self.max)
            raise ValueError(f"initial ({initial}) must not exceed max ({maximum})")
        return self


class WatchSettings(NumbersNotBooleans):
    """Whether and how often pingmon looks for a changed configuration (or secret) file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval: Duration = Field(default=5.0, description="how often the files are looked at")


class ServerSettings(NumbersNotBooleans):
    """Bounds on pingmon's own HTTP server, so that no client can hold it or starve the checks
    (Go's ``http.Server`` ReadHeaderTimeout, IdleTimeout and WriteTimeout; nginx's
    ``client_header_timeout`` and ``keepalive_timeout``). They take effect at the next start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header_timeout: Duration = Field(
        default=10.0,
        description="a request's line and headers must arrive within this of its first byte "
        "(of the connection, for its first request); a webhook's body within this again",
    )
    idle_timeout: Duration = Field(
        default=75.0, description="a keep-alive connection with no request is closed after this"
    )
    write_timeout: Duration = Field(
        default=10.0,
        description="a client that takes none of an answer for this long is disconnected",
    )
    max_connections: PositiveInt = Field(
        default=256,
        description="open connections to every listen address together; more are answered "
        "503 and closed at once",
    )


class MetricsSettings(NumbersNotBooleans):
    """Which per-target series /metrics exports (README.md, "Metrics profiles")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Literal["default", "lean"] = Field(
        default="default",
        description="default: every per-target family (about 34 series a target); lean: only "
        "what the shipped alert rules read, the active error_class series and no latency "
        "histogram (9 series for a target that never failed), for very large target sets",
    )


def _provider_union() -> Any:
    models = tuple(provider.settings_model for provider in PROVIDER_TYPES.values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


class EnvironmentFirst(BaseSettings):
    """Settings read from the file's values with the ``PINGMON_*`` environment over them
    (pingmon.environment), and from nothing else pydantic-settings knows."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, so a deployment can override one value.
        return (EnvironmentSource(settings_cls), init_settings)


class Settings(EnvironmentFirst, NumbersNotBooleans):
    """The whole file; top-level values can be overridden by ``PINGMON_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: str = Field(default="0.0.0.0:9108", description="host:port of the HTTP server")
    defaults: Defaults = Defaults()
    concurrency: PositiveInt = Field(default=100, description="checks in flight at once")
    timer_slack: Slack = Field(
        default=0.01,
        description="runs due within one multiple of this (on the clock's grid) start "
        "together in one wake-up of the scheduler, at its end: each at most this late, never "
        "early, for less CPU a check; at most a tenth of the shortest interval, and the time in "
        "which the targets are due 50 times, is used; 0: every run at its own time",
    )
    backoff: BackoffSettings = BackoffSettings()
    watch: WatchSettings = WatchSettings()
    server: ServerSettings = ServerSettings()
    sharding: ShardingSettings = ShardingSettings()
    latency_histogram: bool = Field(
        default=True,
        description="export pingmon_check_latency_seconds (11 series a target) in the default "
        "metrics profile; the lean profile never does",
    )
    metrics: MetricsSettings = MetricsSettings()
    webhook_listen: str | None = Field(
        default=None,
        description="host:port of a separate server for webhooks only (POST /webhooks/TARGET), "
        "so that only it is exposed through an ingress; by default they are received on listen",
    )
    webhook_path_prefix: str = Field(
        default="",
        description="A path before /webhooks/TARGET, e.g. /pingmon, to match an ingress route",
    )
    providers: dict[str, _provider_union()] = {}  # type: ignore[valid-type]
    # Raw, as written: validated per provider type in load_config. Out of repr and dumps,
    # since a literal webhook secret may sit in it.
    targets: list[dict[Any, Any]] = Field(default=[], repr=False, exclude=True)

    @field_validator("listen", "webhook_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _webhook_listen_is_its_own(self) -> Settings:
        if self.webhook_listen is not None and self.webhook_listen == self.listen:
            raise ValueError(
                "webhook_listen must differ from listen; leave it unset to receive webhooks "
                "on listen"
            )
        return self

    @field_validator("webhook_path_prefix")
    @classmethod
    def _path_prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError("must be empty or a path such as /pingmon (no trailing slash)")
        return value


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9108`` for IPv6) as a pair; ValueError names the fault."""
    host, sep, port = listen.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r} is not host:port, e.g. 0.0.0.0:9108")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded, fully validated configuration."""

    settings: Settings
    targets: tuple[Target, ...]
    source: str
    warnings: tuple[str, ...] = ()

    def target(self, name: str) -> Target:
        return next(target for target in self.targets if target.name == name)

    def secrets(self) -> tuple[Secret, ...]:
        """Every secret the file names: providers' credentials and targets' webhook secrets."""
        providers = (s for p in self.settings.providers.values() for s in p.secrets())
        targets = (s for t in self.targets for s in t.params.secrets())
        return (*providers, *targets)

    def watched_files(self) -> tuple[str, ...]:
        """The configuration file and every secret file it names: a change to any of them
        (an edit, a ConfigMap or Secret update in Kubernetes) calls for a reload."""
        secret_files = (path for secret in self.secrets() if (path := secret.file) is not None)
        return (self.source, *dict.fromkeys(secret_files))


@pausing_collection
def load_config(path: str | Path) -> Config:
    """Read, validate and resolve a configuration file; ConfigError lists every problem.

    Bounded in time and memory whatever the file holds (pingmon.loading), and raises nothing
    but ConfigError for a bad file, a bad secret or a bad ``PINGMON_*`` variable.
    """
    source = str(path)
    raw = load_yaml(source)
    problems: list[Problem] = []
    settings = _settings(raw, problems)
    provider_types = _provider_types(raw, settings)
    defaults = settings.defaults if settings is not None else _file_defaults(raw)
    schedule = None if defaults is None else defaults.schedule()
    providers = None if settings is None else settings.providers
    targets = resolve_targets(raw.get("targets"), providers, schedule, provider_types, problems)
    if problems or settings is None:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    warnings = (*_literal_secret_warnings(settings), *_literal_webhook_secret_warnings(targets))
    return Config(settings, tuple(targets), source, warnings)


def _settings(raw: Mapping[Any, Any], problems: list[Problem]) -> Settings | None:
    """The validated settings, or None with their problems added. A key that is not a string,
    or starts with ``_``, is an unknown key: passed on, it would become an argument of
    pydantic-settings itself (``_cli_parse_args``, ``_secrets_dir``, ...)."""
    fields = {key: value for key, value in raw.items() if isinstance(key, str) and key[:1] != "_"}
    problems.extend(Problem(str(key), UNKNOWN_KEY) for key in raw if key not in fields)
    try:
        return Settings(**fields)
    except ValidationError as error:
        problems.extend(validation_problems(error))
    except OverrideRefused as refused:
        problems.append(refused.problem)
    return None


def _provider_types(raw: Mapping[str, Any], settings: Settings | None) -> dict[str, str]:
    """Each provider name's type, from the validated settings or, failing that, the raw file."""
    if settings is not None:
        return {name: provider.type for name, provider in settings.providers.items()}
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return {}
    return {
        str(name): body["type"]
        for name, body in providers.items()
        if isinstance(body, dict)
        and isinstance(body.get("type"), str)
        and body["type"] in PROVIDER_TYPES
    }


class _DefaultsOnly(EnvironmentFirst):
    """The ``defaults`` of Settings alone, with their ``PINGMON_DEFAULTS*`` overrides."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True
    )

    defaults: Defaults = Defaults()


def _file_defaults(raw: Mapping[str, Any]) -> Defaults | None:
    """The defaults as Settings would have them (the file's, overridden by the environment)
    when they are valid on their own (other settings were refused); None when they are not,
    so targets' schedules are not judged against the wrong ones."""
    given = {"defaults": raw["defaults"]} if "defaults" in raw else {}
    try:
        return _DefaultsOnly(**given).defaults
    except (ValidationError, OverrideRefused):
        return None


def _literal_secret_warnings(settings: Settings) -> list[str]:
    warnings = []
    for name, provider in settings.providers.items():
        for field_name in type(provider).model_fields:
            value = getattr(provider, field_name)
            values = value.values() if isinstance(value, Mapping) else [value]
            if any(isinstance(item, Secret) and item.is_literal for item in values):
                warnings.append(
                    f"providers.{name}.{field_name}: a literal secret in the file; "
                    "prefer {env: NAME} or {file: PATH}"
                )
    return warnings


def _literal_webhook_secret_warnings(targets: list[Target]) -> list[str]:
    return [
        f"targets[{index}].webhook: a literal secret in the file; prefer {{env: NAME}} or "
        "{file: PATH}"
        for index, target in enumerate(targets)
        if any(secret.is_literal for secret in target.params.secrets())
    ]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the file, with every provider type's target parameters."""
    targets = tuple(schema_target_model(name) for name in PROVIDER_TYPES)
    schema_model = create_model(
        "PingmonConfiguration",
        __base__=Settings,
        targets=(list[Union[targets]], []),  # type: ignore[valid-type]  # noqa: UP007
    )
    schema = schema_model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
