"""The installed distribution's version, sent in every `User-Agent`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("phonewagon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
