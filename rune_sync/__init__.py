"""rune-sync: a declarative GitOps reconciler for the storage of a Rune cluster."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rune-sync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
