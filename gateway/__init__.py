"""The HTTP layer of feedgate: settings, app assembly, authentication, routing and error mapping."""

from __future__ import annotations

from gateway.app import create_app

__all__ = ["create_app"]
