"""Phonewagon call-tracking API server."""

__version__ = "0.1.0"
