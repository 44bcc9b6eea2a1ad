"""Dedup in Redis: shared between gateway instances, fail-open when Redis is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from pusher_gateway.dedup import RedisDedup, dedup_key
from tests.fakes.fake_fcm import FakeFCM
from tests.test_pushgw_http import Gateway, dev, note

pytestmark = pytest.mark.redis


def test_two_instances_share_claims(redis_url: str) -> None:
    key = dedup_key("pk-redis", "$e1")

    async def scenario() -> list[str]:
        a = RedisDedup(redis_url, ttl=60, pending_ttl=10)
        b = RedisDedup(redis_url, ttl=60, pending_ttl=10)
        seen: list[str] = [await a.claim(key), await b.claim(key)]
        await a.release(key)
        seen.append(await b.claim(key))
        await b.complete(key)
        seen.append(await a.claim(key))
        await a.close()
        await b.close()
        return seen

    assert asyncio.run(scenario()) == ["new", "busy", "new", "done"]
    stored = redis.Redis.from_url(redis_url).keys("chat500:pushgw:dedup:*")
    assert stored and all(b"pk-redis" not in k for k in stored)  # tokens are not stored
    assert 0 < redis.Redis.from_url(redis_url).pttl(key) <= 60_000


def test_release_does_not_drop_a_completed_entry(redis_url: str) -> None:
    key = dedup_key("pk", "$e2")

    async def scenario() -> str:
        d = RedisDedup(redis_url, ttl=60, pending_ttl=10)
        await d.claim(key)
        await d.complete(key)
        await d.release(key)
        state = await d.claim(key)
        await d.close()
        return state

    assert asyncio.run(scenario()) == "done"


def test_unreachable_redis_sends_anyway() -> None:
    async def scenario() -> str:
        d = RedisDedup("redis://127.0.0.1:9/0", ttl=60, pending_ttl=10)
        state = await d.claim(dedup_key("pk", "$e"))
        await d.complete(dedup_key("pk", "$e"))
        await d.close()
        return state

    assert asyncio.run(scenario()) == "new"


@pytest.mark.slow
def test_a_retry_to_another_instance_is_not_sent_twice(redis_url: str, tmp_path: Path) -> None:
    with FakeFCM() as fcm:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first = Gateway(tmp_path / "a", fcm, redis_url=redis_url)
        second = Gateway(tmp_path / "b", fcm, redis_url=redis_url)
        try:
            body = note(dev("shared-token"))
            assert first.notify(body).json() == {"rejected": []}
            assert second.notify(body).json() == {"rejected": []}
            assert len(fcm.messages) == 1
        finally:
            assert first.stop() == 0
            assert second.stop() == 0
