"""qontract-gateway runtime: app factory, settings, CLI and the shared primitives."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qontract-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
