"""The access-token cache: one fetch per credential while fresh, shared by threads, renewed early."""

from __future__ import annotations

import threading

from engine.messaging.providers.access_tokens import REFRESH_MARGIN_SECONDS, TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    def __init__(self, lifetime: float = 3600.0) -> None:
        self.issued = 0
        self.lifetime = lifetime
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, float]:
        with self._lock:
            self.issued += 1
            return f"token-{self.issued}", self.lifetime


def test_a_fresh_token_is_reused() -> None:
    cache, issuer = TokenCache(), Issuer()

    assert [cache.get("account", issuer) for _ in range(3)] == ["token-1"] * 3
    assert issuer.issued == 1


def test_each_credential_has_its_own_token() -> None:
    cache, issuer = TokenCache(), Issuer()

    assert cache.get("account-a", issuer) != cache.get("account-b", issuer)


def test_a_token_is_renewed_shortly_before_it_expires() -> None:
    clock, issuer = Clock(), Issuer(lifetime=3600.0)
    cache = TokenCache(clock)
    cache.get("account", issuer)

    clock.now += 3600.0 - REFRESH_MARGIN_SECONDS - 1
    assert cache.get("account", issuer) == "token-1"
    clock.now += 1
    assert cache.get("account", issuer) == "token-2"


def test_a_discarded_token_is_fetched_again_but_a_newer_one_is_kept() -> None:
    cache, issuer = TokenCache(), Issuer()
    cache.get("account", issuer)

    cache.discard("account", "token-1")
    assert cache.get("account", issuer) == "token-2"
    cache.discard("account", "token-1")  # a late report about the old token changes nothing
    assert cache.get("account", issuer) == "token-2"


def test_threads_asking_at_once_share_one_fetch() -> None:
    cache = TokenCache()
    release = threading.Event()
    fetches = 0

    def slow_fetch() -> tuple[str, float]:
        nonlocal fetches
        fetches += 1
        release.wait(timeout=10)
        return "shared", 3600.0

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("account", slow_fetch))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert results == ["shared"] * 8
    assert fetches == 1
