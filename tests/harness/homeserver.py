"""Real homeservers for tests: a spec rendered by the real renderer, booted by the real runner.

A test asks for a homeserver with the spec it needs (overrides merged into a small test org) and
gets a running Synapse with our modules loaded, an admin account, and helpers for HTTP calls and
logged-in matrix-nio clients. Teardown stops the processes; PostgreSQL databases are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import socket
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from provisioner.render import render
from provisioner.run import Servers, start_bundle
from provisioner.shared_secret import Registered, read_shared_secret, register_with_shared_secret
from provisioner.spec import Spec
from provisioner.spec_loader import load_spec
from synapse_modules.licensing.evaluation import write_evaluation_license

T = TypeVar("T")

# Settings only tests need (design.md): push to a local gateway, no rate limits in the way.
TEST_HOMESERVER_OVERRIDES: dict[str, Any] = {
    "ip_range_whitelist": ["127.0.0.1"],
    "trusted_key_servers": [],
    "rc_message": {"per_second": 1000, "burst_count": 1000},
    "rc_registration": {"per_second": 1000, "burst_count": 1000},
    "rc_login": {
        "address": {"per_second": 1000, "burst_count": 1000},
        "account": {"per_second": 1000, "burst_count": 1000},
        "failed_attempts": {"per_second": 1000, "burst_count": 1000},
    },
    "rc_joins": {
        "local": {"per_second": 1000, "burst_count": 1000},
        "remote": {"per_second": 1000, "burst_count": 1000},
    },
    "rc_invites": {
        "per_room": {"per_second": 1000, "burst_count": 1000},
        "per_user": {"per_second": 1000, "burst_count": 1000},
        "per_issuer": {"per_second": 1000, "burst_count": 1000},
    },
    "rc_admin_redaction": {"per_second": 1000, "burst_count": 1000},
    "rc_joins_per_room": {"per_second": 1000, "burst_count": 1000},
    "rc_3pid_validation": {"per_second": 1000, "burst_count": 1000},
    "rc_presence": {"per_user": {"per_second": 1000, "burst_count": 1000}},
    "rc_delayed_event_mgmt": {"per_second": 1000, "burst_count": 1000},
    "rc_room_creation": {"per_second": 1000, "burst_count": 1000},
    "rc_reports": {"per_second": 1000, "burst_count": 1000},
    "rc_key_requests": {"per_second": 1000, "burst_count": 1000},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one nio scenario to completion (tests are plain functions)."""
    return asyncio.run(coro)


def org_spec_document(spec_dir: Path, port: int, server_name: str) -> dict[str, Any]:
    """The small test organization every homeserver test starts from."""
    evaluation = write_evaluation_license(spec_dir, "testorg", "Test Org", server_name)
    return {
        "org": {"slug": "testorg", "display_name": "Test Org"},
        "server": {
            "server_name": server_name,
            "public_baseurl": f"http://127.0.0.1:{port}/",
            "bind_address": "127.0.0.1",
            "port": port,
        },
        "license": {
            "path": str(evaluation.license_path),
            "vendor_public_key": str(evaluation.public_key_path),
        },
    }


@dataclass
class Homeserver:
    """A running homeserver and the handles a test needs to talk to it."""

    spec: Spec
    bundle_dir: Path
    servers: Servers
    admin: Registered
    admin_password: str
    extra_config: Path
    _clients: list[AsyncClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.servers.info.base_url

    @property
    def server_name(self) -> str:
        return self.spec.server.server_name

    @property
    def admin_token(self) -> str:
        return self.admin.access_token

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def create_user(
        self, localpart: str, password: str | None = None, *, admin: bool = False
    ) -> tuple[str, str]:
        """An account made with the shared secret (an admin path); returns (user_id, password)."""
        password = password or secrets.token_urlsafe(12)
        registered = register_with_shared_secret(
            self.base_url,
            read_shared_secret(self.bundle_dir),
            localpart,
            password,
            admin=admin,
        )
        return registered.user_id, password

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "admin",
    ) -> httpx.Response:
        """One HTTP call; ``token="admin"`` uses the admin's token, ``None`` sends none."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.admin_token if token == 'admin' else token}"
        return httpx.request(
            method, self.base_url + path, json=body, headers=headers, timeout=60
        )

    def login(self, localpart_or_id: str, password: str) -> httpx.Response:
        """A password login as a client makes it; the response, refused or not."""
        return self.api(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart_or_id},
                "password": password,
            },
            token=None,
        )

    def login_token(self, localpart_or_id: str, password: str) -> str:
        response = self.login(localpart_or_id, password)
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def client(self, localpart_or_id: str, password: str) -> AsyncClient:
        """A logged-in matrix-nio client; closed by the fixture's teardown."""
        user_id = (
            localpart_or_id if localpart_or_id.startswith("@") else self.user_id(localpart_or_id)
        )
        client = AsyncClient(
            self.base_url, user_id, config=AsyncClientConfig(store_sync_tokens=False)
        )
        response = await client.login(password)
        if not isinstance(response, LoginResponse):
            await client.close()
            raise AssertionError(f"login of {user_id} failed: {response}")
        return client

    def log_text(self) -> str:
        log = self.bundle_dir / "data" / "homeserver.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def restart(self) -> None:
        self.servers.stop()
        self.servers = start_bundle(
            self.bundle_dir, with_pushgw=False, extra_configs=[self.extra_config]
        )

    def stop(self) -> None:
        self.servers.stop()


@dataclass
class HomeserverFactory:
    """Starts homeservers for one test and stops them all at its end."""

    tmp_path: Path
    started: list[Homeserver] = field(default_factory=list)
    _databases: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __call__(
        self,
        spec_overrides: dict[str, Any] | None = None,
        homeserver_overrides: dict[str, Any] | None = None,
        *,
        database: str = "sqlite",
        server_name: str = "chat.test",
        port: int | None = None,
        name: str | None = None,
    ) -> Homeserver:
        from tests.harness.services import PG_HOST, PG_PORT, PG_USER, fresh_postgres_database

        port = port or free_port()
        root = self.tmp_path / (name or f"hs{len(self.started) + 1}")
        spec_dir = root / "spec"
        spec_dir.mkdir(parents=True)
        document = org_spec_document(spec_dir, port, server_name)
        if database == "postgres":
            db_name = self._databases.enter_context(fresh_postgres_database())
            document["database"] = {
                "engine": "postgres",
                "host": PG_HOST,
                "port": PG_PORT,
                "user": PG_USER,
                "name": db_name,
            }
        document = deep_merge(document, spec_overrides or {})
        spec_path = spec_dir / "testorg.yaml"
        spec_path.write_text(yaml.safe_dump(document, sort_keys=False))
        spec = load_spec(spec_path)

        bundle_dir = root / "bundle"
        render(spec, bundle_dir)
        extra = bundle_dir / "synapse" / "test-overrides.yaml"
        extra.write_text(
            yaml.safe_dump(deep_merge(TEST_HOMESERVER_OVERRIDES, homeserver_overrides or {}))
        )
        servers = start_bundle(bundle_dir, with_pushgw=False, extra_configs=[extra])
        try:
            password = secrets.token_urlsafe(12)
            admin = register_with_shared_secret(
                servers.info.base_url,
                read_shared_secret(bundle_dir),
                "testadmin",
                password,
                admin=True,
            )
        except BaseException:
            servers.stop()
            raise
        homeserver = Homeserver(spec, bundle_dir, servers, admin, password, extra)
        self.started.append(homeserver)
        return homeserver

    def close(self) -> None:
        for homeserver in reversed(self.started):
            homeserver.stop()
        self._databases.close()


@contextlib.contextmanager
def homeserver_factory(tmp_path: Path) -> Iterator[HomeserverFactory]:
    factory = HomeserverFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


def json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        return dict(response.json())
    except (ValueError, json.JSONDecodeError):
        return {"raw": response.text}
