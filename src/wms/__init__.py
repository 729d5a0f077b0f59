"""WMS Enterprise: warehouse management API server and event worker."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wms")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
