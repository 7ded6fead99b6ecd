"""The file's targets resolved: common keys and the type's own, validated apart; a Schedule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import ErrorDetails

from pingmon.errors import Problem
from pingmon.fields import Duration, NumbersNotBooleans
from pingmon.problems import UNKNOWN_KEY, detail_problems
from pingmon.providers import PROVIDER_TYPES, Provider, ProviderClass, webhook_types
from pingmon.providers.base import ProviderSettings, TargetParams
from pingmon.schedule import Schedule, schedule_problems
from pingmon.targetrules import request_problems

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class TargetSettings(NumbersNotBooleans):
    """The keys every target has (``COMMON_TARGET_KEYS``): its name, its provider, and the
    schedule values it sets itself, None where the default applies. The entry's other keys
    are its provider type's ``params_model``'s, validated on their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str

    @field_validator("name")
    @classmethod
    def _label_friendly(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits and _ . : - "
                "(at most 100 characters); it becomes the `target` label"
            )
        return name

    provider: str
    interval: Duration | None = None
    timeout: Duration | None = None
    jitter: float | None = Field(default=None, ge=0, le=0.5)
    failure_interval: Duration | None = None
    retries: NonNegativeInt | None = Field(default=None, le=5)
    max_body_bytes: PositiveInt | None = None

    def schedule(self, defaults: Schedule) -> Schedule:
        """This target's schedule: each value its own where it sets one, else the default's."""
        return Schedule(
            interval=_own_or(self.interval, defaults.interval),
            timeout=_own_or(self.timeout, defaults.timeout),
            jitter=_own_or(self.jitter, defaults.jitter),
            failure_interval=_own_or(self.failure_interval, defaults.failure_interval),
            retries=_own_or(self.retries, defaults.retries),
            max_body_bytes=_own_or(self.max_body_bytes, defaults.max_body_bytes),
        )


ValueT = TypeVar("ValueT")
ModelT = TypeVar("ModelT", bound=BaseModel)


def _own_or(own: ValueT | None, default: ValueT) -> ValueT:
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class Target:
    """A target with its provider, its type's own parameters and its resolved schedule."""

    name: str
    provider_name: str
    provider: ProviderSettings
    params: TargetParams
    schedule: Schedule

    @property
    def provider_type(self) -> str:
        return self.provider.type


def resolve_targets(
    raw_targets: object,
    providers: Mapping[str, ProviderSettings] | None,
    defaults: Schedule | None,
    provider_types: Mapping[str, str],
    problems: list[Problem],
) -> list[Target]:
    """The file's ``targets`` resolved, or their problems added, each named at ``targets[i]``.

    ``provider_types``: each provider name's type; ``providers``: their validated settings,
    None when the file's settings were refused (the targets are still judged, not resolved);
    ``defaults``: None when they were refused (schedules are then not judged).
    """
    if not isinstance(raw_targets, list):
        return []
    resolved: list[Target] = []
    first_seen: dict[str, int] = {}
    built: dict[str, Provider[ProviderSettings, TargetParams]] = {}
    for index, raw in enumerate(raw_targets):
        where = f"targets[{index}]"
        if not isinstance(raw, dict):
            continue  # already reported by the Settings model
        problems.extend(_name_problems(raw.get("name"), index, first_seen))
        halves = _validated_halves(raw, index, provider_types, problems)
        if halves is None or defaults is None:
            continue
        common, params = halves
        schedule = common.schedule(defaults)
        webhook = params.webhook_settings
        webhook_timeout = None if webhook is None else webhook.timeout
        problems.extend(schedule_problems(schedule, webhook_timeout, where))
        if providers is not None:
            if common.provider not in built:
                provider_type = PROVIDER_TYPES[provider_types[common.provider]]
                built[common.provider] = provider_type(providers[common.provider])
            provider = built[common.provider]
            problems.extend(request_problems(provider, common.provider, params, where))
            target = Target(common.name, common.provider, provider.settings, params, schedule)
            resolved.append(target)
    return resolved


def _validated_halves(
    raw: dict[Any, Any], index: int, provider_types: Mapping[str, str], problems: list[Problem]
) -> tuple[TargetSettings, TargetParams] | None:
    """The target's common keys (TargetSettings) and its type's own (the type's
    ``params_model``), each validated by its model; None with their problems added.

    The problems come in the order one model of both halves gave before: the type's fields,
    the common fields, then every key neither knows (``targets[i].key: unknown key``).
    """
    where = f"targets[{index}]"
    provider_name = raw.get("provider")
    if not isinstance(provider_name, str) or provider_name not in provider_types:
        defined = ", ".join(sorted(provider_types)) or "none"
        message = f"no provider named {provider_name!r} is defined under providers"
        problems.append(Problem(f"{where}.provider", f"{message} (defined: {defined})"))
        return None
    provider_type = provider_types[provider_name]
    provider = PROVIDER_TYPES[provider_type]
    if "webhook" in raw and provider.webhook is None:
        message = f"{provider_type} pings send no webhook; {_webhook_types_phrase()}"
        problems.append(Problem(f"{where}.webhook", message))
        raw = {key: value for key, value in raw.items() if key != "webhook"}
    # A key that is not a string (YAML's 1:, true:, null:) is no field's: refused once, as
    # the file's own are, not twice by both models at a path that reads as a list index.
    problems.extend(
        Problem(f"{where}.{key}", UNKNOWN_KEY) for key in raw if not isinstance(key, str)
    )
    raw = {key: value for key, value in raw.items() if isinstance(key, str)}
    common_keys = TargetSettings.model_fields
    own = {key: value for key, value in raw.items() if key not in common_keys}
    params, params_errors = _validated(provider.params_model, own)
    common, common_errors = _validated(
        TargetSettings, {key: value for key, value in raw.items() if key in common_keys}
    )
    unknown = [error for error in params_errors if _is_unknown_key(error)]
    known = [error for error in params_errors if not _is_unknown_key(error)]
    problems.extend(detail_problems([*known, *common_errors, *unknown], ("targets", index)))
    if params is None or common is None:
        return None
    return common, params


def _validated(
    model: type[ModelT], raw: dict[Any, Any]
) -> tuple[ModelT | None, list[ErrorDetails]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as error:
        return None, error.errors(include_url=False)


def _is_unknown_key(error: ErrorDetails) -> bool:
    """An unknown key of the target itself (not of a model nested in it)."""
    return error["type"] == "extra_forbidden" and len(error["loc"]) == 1


def _webhook_types_phrase() -> str:
    """``only b and a targets do``, from the registry's types that declare a webhook kind
    (in reverse order of name: the message read so before the registry existed)."""
    names = sorted(webhook_types(), reverse=True)
    if not names:
        return "no provider type's do"
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"only {listed} targets do"


def _name_problems(name: object, index: int, first_seen: dict[str, int]) -> list[Problem]:
    if not isinstance(name, str):
        return []
    if name in first_seen:
        message = (
            f"duplicate target name {name!r} (first at targets[{first_seen[name]}]); "
            "target names must be unique"
        )
        return [Problem(f"targets[{index}].name", message)]
    first_seen[name] = index
    return []


def schema_target_model(provider_type: str) -> type[BaseModel]:
    """A target of this provider type as the JSON Schema shows it: the common keys and the
    type's own in one object. Only for the schema: loading validates the two halves apart."""
    provider: ProviderClass = PROVIDER_TYPES[provider_type]
    bases: tuple[type[BaseModel], ...] = (TargetSettings, provider.params_model)
    return create_model(
        f"{provider_type.capitalize()}Target",
        __base__=bases,
        __doc__=f"A target checked by a provider of type {provider_type}.",
    )
