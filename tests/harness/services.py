"""Reaching the machine's PostgreSQL and Redis, or skipping cleanly when they are absent.

On a user's laptop the services may be missing: those tests skip. CI sets
``CHAT500_REQUIRE_SERVICES=1``, and then a missing service fails the test instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST = os.environ.get("CHAT500_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CHAT500_PG_PORT", "5432"))
PG_USER = os.environ.get("CHAT500_PG_USER", "postgres")
REDIS_HOST = os.environ.get("CHAT500_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("CHAT500_REDIS_PORT", "6379"))


def services_required() -> bool:
    return os.environ.get("CHAT500_REQUIRE_SERVICES", "") not in ("", "0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, when services are required, fail) unless ``host:port`` answers."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if services_required():
        pytest.fail(f"{message}, and CHAT500_REQUIRE_SERVICES=1")
    pytest.skip(message)


def _pg_connect(dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname)
    conn.autocommit = True
    return conn


@contextmanager
def fresh_postgres_database(prefix: str = "chat500_test") -> Iterator[str]:
    """Create a database the way Synapse requires it (UTF8, C locale), drop it afterwards."""
    need_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = _pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f'CREATE DATABASE "{name}" ENCODING \'UTF8\' LC_COLLATE \'C\' LC_CTYPE \'C\' '
                "TEMPLATE template0"
            )
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
