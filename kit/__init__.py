"""The kit's core: domain model, recording workflow, vault, store, configuration, command line.

Free of UI and hardware code: ``ui/`` and ``sensors/`` build on it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jaranijo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
