"""Shared fixtures: services (PostgreSQL, Redis) and real Synapse homeservers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.services import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    REDIS_HOST,
    REDIS_PORT,
    fresh_postgres_database,
    need_service,
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``postgres`` or ``redis`` checks its service before it runs."""
    if item.get_closest_marker("postgres"):
        need_service("PostgreSQL", PG_HOST, PG_PORT)
    if item.get_closest_marker("redis"):
        need_service("Redis", REDIS_HOST, REDIS_PORT)


@pytest.fixture
def _require_redis() -> None:
    need_service("Redis", REDIS_HOST, REDIS_PORT)


@pytest.fixture
def redis_url(_require_redis: None) -> str:
    """A Redis URL on a database number the tests own; flushed before the test."""
    import redis

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def postgres_database() -> Iterator[dict[str, object]]:
    """A fresh, empty PostgreSQL database: its connection settings."""
    with fresh_postgres_database() as name:
        yield {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "name": name}


@pytest.fixture
def homeservers(tmp_path):  # type: ignore[no-untyped-def]
    """A factory: ``homeservers(spec_overrides, homeserver_overrides, database=...)``."""
    from tests.harness.homeserver import homeserver_factory

    with homeserver_factory(tmp_path) as factory:
        yield factory


@pytest.fixture
def homeserver(homeservers):  # type: ignore[no-untyped-def]
    """One running test-org homeserver on SQLite."""
    return homeservers()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over SQLite and PostgreSQL (``homeservers(database=database)``)."""
    return str(request.param)
