"""Duplicate suppression on (pushkey, event_id), so a homeserver's retry never double-notifies.

A device is *claimed* before its send and marked *done* only once FCM accepted (or rejected)
it; a failed send *releases* the claim so the homeserver's retry goes out again. In memory by
default; in Redis (``SET NX PX``) when several gateway instances share the load. Keys are hashed
so Redis never holds push tokens. If Redis is unreachable the gateway sends anyway: a rare
duplicate beats a lost notification.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, Protocol

Claim = Literal["new", "done", "busy"]
log = logging.getLogger("pusher_gateway.dedup")


def dedup_key(pushkey: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{pushkey}\0{event_id}".encode()).hexdigest()[:32]
    return f"chat500:pushgw:dedup:{digest}"


class Dedup(Protocol):
    async def claim(self, key: str) -> Claim: ...
    async def complete(self, key: str) -> None: ...
    async def release(self, key: str) -> None: ...
    async def close(self) -> None: ...


class MemoryDedup:
    """Bounded in-process cache; oldest entries go first when full."""

    def __init__(self, ttl: float, pending_ttl: float, max_entries: int = 1_000_000,
                 clock: Callable[[], float] | None = None) -> None:
        self.ttl = ttl
        self.pending_ttl = pending_ttl
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        self._entries: OrderedDict[str, tuple[bool, float]] = OrderedDict()  # done, expiry

    def _now(self) -> float:
        return self._clock()

    async def claim(self, key: str) -> Claim:
        now = self._now()
        entry = self._entries.get(key)
        if entry is not None and entry[1] > now:
            return "done" if entry[0] else "busy"
        self._put(key, False, now + self.pending_ttl)
        return "new"

    async def complete(self, key: str) -> None:
        self._put(key, True, self._now() + self.ttl)

    async def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None and not entry[0]:
            del self._entries[key]

    def _put(self, key: str, done: bool, expiry: float) -> None:
        self._entries[key] = (done, expiry)
        self._entries.move_to_end(key)
        self._prune()

    def _prune(self) -> None:
        now = self._now()
        entries = self._entries
        while entries:
            key, (_, expiry) = next(iter(entries.items()))
            if expiry > now and len(entries) <= self.max_entries:
                break
            del entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()


class RedisDedup:
    """Shared between gateway instances through Redis."""

    _RELEASE = "if redis.call('get', KEYS[1]) == 'p' then return redis.call('del', KEYS[1]) end"

    def __init__(self, url: str, ttl: float, pending_ttl: float) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=2.0,
                                                   socket_connect_timeout=2.0)
        self.ttl_ms = int(ttl * 1000)
        self.pending_ms = int(pending_ttl * 1000)

    async def claim(self, key: str) -> Claim:
        try:
            if await self._redis.set(key, "p", nx=True, px=self.pending_ms):
                return "new"
            state = await self._redis.get(key)
        except Exception as exc:  # Redis down: send rather than lose the notification
            log.warning("dedup: Redis unavailable (%s); sending without dedup",
                        type(exc).__name__)
            return "new"
        if state is None:  # expired between the two calls
            return await self.claim(key)
        return "done" if state == b"d" else "busy"

    async def complete(self, key: str) -> None:
        try:
            await self._redis.set(key, "d", px=self.ttl_ms)
        except Exception as exc:
            log.warning("dedup: Redis unavailable (%s); not recorded", type(exc).__name__)

    async def release(self, key: str) -> None:
        try:
            await self._redis.eval(self._RELEASE, 1, key)
        except Exception as exc:
            log.warning("dedup: Redis unavailable (%s); claim left to expire",
                        type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()
