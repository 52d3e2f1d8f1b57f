"""feedgate's domain: workspaces, credentials, events, computed properties, messaging.

Nothing in this package imports web code (starlette, jinja2, authlib); the gateway calls it with
explicit workspace ids and maps its errors to HTTP once.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feedgate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
