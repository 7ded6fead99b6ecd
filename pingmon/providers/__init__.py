"""The provider types, found by name: pingmon's own and those of installed packages that
register in the ``pingmon.providers`` entry-point group (``registry``, docs/providers.md).

A broken plugin or a name clash ends the process with exit status 2 and one line naming the
package when the registry is first used (at the configuration's import): never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points

from pingmon.providers.base import Provider
from pingmon.providers.registry import (
    ENTRY_POINT_GROUP,
    PluginError,
    ProviderClass,
    load_provider_types,
)
from pingmon.webhooks.kind import AnyWebhookKind

EXIT_CONFIG = 2  # as the command line's: the installation, like a file, was refused


class _ProviderTypes(Mapping[str, ProviderClass]):
    """The registry, loaded at its first use rather than at import: a plugin's module imports
    ``pingmon.providers.base``, which must not load that very plugin while it is half made."""

    def __init__(self) -> None:
        self._types: dict[str, ProviderClass] | None = None

    def _loaded(self) -> dict[str, ProviderClass]:
        if self._types is None:
            try:
                self._types = load_provider_types(entry_points(group=ENTRY_POINT_GROUP))
            except PluginError as error:
                print(f"pingmon: {error}", file=sys.stderr)
                raise SystemExit(EXIT_CONFIG) from None
        return self._types

    def __getitem__(self, name: str) -> ProviderClass:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


PROVIDER_TYPES: Mapping[str, ProviderClass] = _ProviderTypes()


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
