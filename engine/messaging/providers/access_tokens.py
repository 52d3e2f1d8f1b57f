"""Short-lived OAuth access tokens a provider obtains and reuses across sends and threads (FCM's
service-account tokens): one fetch per credential while a token is fresh, a new one shortly before
it expires or once the service refuses it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

# Renew this long before the stated expiry, so a token is never sent in its last seconds.
REFRESH_MARGIN_SECONDS = 120.0

FetchToken = Callable[[], tuple[str, float]]
"""Obtains a new token: returns (access token, seconds until it expires)."""


@dataclass(frozen=True)
class _Held:
    token: str
    renew_at: float  # time.monotonic() value


class TokenCache:
    """Tokens keyed by the credential they were issued for. Threads asking for the same key while a
    fetch is under way wait for that fetch rather than starting their own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[Hashable, _Held] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, fetch: FetchToken) -> str:
        held = self._fresh(key)
        if held is not None:
            return held
        with self._lock_for(key):
            held = self._fresh(key)  # another thread may have fetched while this one waited
            if held is not None:
                return held
            token, expires_in = fetch()
            renew_at = self._clock() + max(expires_in - REFRESH_MARGIN_SECONDS, 0.0)
            with self._lock:
                self._held[key] = _Held(token, renew_at)
            return token

    def discard(self, key: Hashable, token: str) -> None:
        """Forget `token` (the service refused it), unless another thread already replaced it."""
        with self._lock:
            held = self._held.get(key)
            if held is not None and held.token == token:
                del self._held[key]

    def _fresh(self, key: Hashable) -> str | None:
        with self._lock:
            held = self._held.get(key)
        if held is None or self._clock() >= held.renew_at:
            return None
        return held.token

    def _lock_for(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())
