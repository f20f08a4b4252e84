"""The HTTP API: `create_app(settings, database)` builds the ASGI application."""

from phonewagon_server.api.app import create_app

__all__ = ["create_app"]
