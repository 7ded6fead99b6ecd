"""The provider types, found by name: every module in this package that defines ``PROVIDER``."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pingmon.providers.base import Provider
from pingmon.webhooks.kind import AnyWebhookKind

ProviderClass = type[Provider[Any, Any]]


def _discover() -> dict[str, ProviderClass]:
    found: dict[str, ProviderClass] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        provider: ProviderClass | None = getattr(module, "PROVIDER", None)
        if provider is not None:
            found[provider.type_name] = provider
    return dict(sorted(found.items()))


PROVIDER_TYPES: dict[str, ProviderClass] = _discover()


def webhook_kind(provider_type: str) -> AnyWebhookKind:
    """The webhook kind of a provider type; KeyError when the type sends no webhook."""
    kind = PROVIDER_TYPES[provider_type].webhook
    if kind is None:
        raise KeyError(provider_type)
    return kind


def webhook_types() -> tuple[str, ...]:
    """The provider types whose ping sends a webhook, by name."""
    return tuple(name for name, provider in PROVIDER_TYPES.items() if provider.webhook)


__all__ = ["PROVIDER_TYPES", "Provider", "ProviderClass", "webhook_kind", "webhook_types"]
