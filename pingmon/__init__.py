"""pingmon: provider-aware health checks for SaaS APIs, exported as Prometheus metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pingmon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
