"""Provider types from installed packages: the ``pingmon.providers`` entry-point group.

Entry-point name = the ``type`` name, value = the ``Provider`` subclass, e.g.
``statuspage = "pingmon_statuspage.provider:StatuspageProvider"`` (docs/providers.md). A
broken plugin or a name clash is a ``PluginError`` naming the package, raised at load.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from importlib.metadata import EntryPoint
from typing import Any, get_args

from pydantic import AliasChoices, AliasPath, BaseModel

from pingmon.providers.base import (
    COMMON_TARGET_KEYS,
    Provider,
    ProviderSettings,
    TargetParams,
    WebhookParams,
)

ENTRY_POINT_GROUP = "pingmon.providers"
ProviderClass = type[Provider[Any, Any]]


class PluginError(Exception):
    """A provider type that cannot be registered; the message names its package."""


def builtin_types() -> dict[str, ProviderClass]:
    """pingmon's own types: every module of ``pingmon.providers`` that defines ``PROVIDER``.

    They are registered as entry points too; read here as well, so an editable install whose
    metadata predates a new built-in still has it, and a clash with one is told apart."""
    package = importlib.import_module("pingmon.providers")
    found: dict[str, ProviderClass] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name in ("base", "registry"):
            continue
        module = importlib.import_module(f"pingmon.providers.{module_info.name}")
        provider: ProviderClass | None = getattr(module, "PROVIDER", None)
        if provider is not None:
            found[provider.type_name] = provider
    return found


def load_provider_types(entry_points: Iterable[EntryPoint]) -> dict[str, ProviderClass]:
    """Built-in types plus every entry point's, sorted by name; PluginError on the first
    broken plugin (import error, not a Provider subclass, bad models) or name clash."""
    found = builtin_types()
    origin = dict.fromkeys(found, "pingmon")
    for entry in entry_points:
        package = _package(entry)
        where = f"provider type {entry.name!r} from package {package!r} ({entry.value})"
        loaded = _load(entry, where)
        known = found.get(entry.name)
        if known is loaded:
            continue  # a built-in's own entry point
        if known is not None:
            raise PluginError(
                f"{where} clashes with the type of that name from package "
                f"{origin[entry.name]!r}; rename one"
            )
        problem = _class_problem(entry.name, loaded)
        if problem is not None:
            raise PluginError(f"{where}: {problem}")
        provider: ProviderClass = loaded
        found[entry.name] = provider
        origin[entry.name] = package
    return dict(sorted(found.items()))


def _package(entry: EntryPoint) -> str:
    dist = entry.dist
    return dist.name if dist is not None else f"(unknown package of {entry.value})"


def _load(entry: EntryPoint, where: str) -> Any:
    try:
        return entry.load()
    # Any import failure of a plugin is reported; SystemExit too (a module that runs a CLI
    # when imported): passed on, it would end pingmon with the plugin's status, 0 included.
    except (Exception, SystemExit) as error:  # noqa: BLE001
        problem = f"{type(error).__name__}: {error}"
        raise PluginError(f"{where} could not be loaded: {problem}") from None


def _class_problem(name: str, loaded: object) -> str | None:
    """Why ``loaded`` cannot be the provider type ``name``, or None."""
    if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
        return "is not a subclass of pingmon.providers.base.Provider"
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(getattr(loaded, "__abstractmethods__", ())))
        return f"does not implement {missing}"
    if getattr(loaded, "type_name", None) != name:
        return f"its type_name is {getattr(loaded, 'type_name', None)!r}, not {name!r}"
    return _models_problem(name, loaded)


def input_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys of an entry that reach ``model``'s fields: their names, aliases and
    validation aliases (each choice of an ``AliasChoices``, an ``AliasPath``'s first key)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for alias in (field.alias, field.validation_alias):
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            for choice in choices:
                first = choice.path[0] if isinstance(choice, AliasPath) else choice
                if isinstance(first, str):
                    keys.add(first)
    return frozenset(keys)


def _models_problem(name: str, provider: ProviderClass) -> str | None:
    settings = getattr(provider, "settings_model", None)
    params = getattr(provider, "params_model", None)
    if not (isinstance(settings, type) and issubclass(settings, ProviderSettings)):
        return "settings_model is not a subclass of ProviderSettings"
    if not (isinstance(params, type) and issubclass(params, TargetParams)):
        return "params_model is not a subclass of TargetParams"
    for model in (settings, params):
        if model.model_config.get("extra") != "forbid":
            return f'{model.__name__} must refuse unknown keys (extra="forbid", as its base)'
    common = sorted(COMMON_TARGET_KEYS.intersection(input_keys(params)))
    if common:
        return f"params_model declares {', '.join(common)}, which every target has already"
    if provider.webhook is None and "webhook" in input_keys(params):
        return "params_model declares webhook, which only a type with a webhook kind takes"
    type_field = settings.model_fields["type"]
    if get_args(type_field.annotation) != (name,):
        return f'settings_model must declare type: Literal["{name}"] = "{name}"'
    if provider.webhook is not None and not issubclass(params, WebhookParams):
        return "declares a webhook kind, so params_model must be a WebhookParams"
    for model in (settings, params):
        try:
            model.model_json_schema()
        except Exception as error:  # noqa: BLE001  # pydantic raises several kinds here
            return f"{model.__name__} has no JSON Schema: {type(error).__name__}: {error}"
    return None
