"""A rendered bundle boots a real Synapse, and real clients chat on it (SQLite and PostgreSQL);
``chat500 demo`` and ``chat500 run`` serve and stop like a user expects."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from nio import JoinResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse

from provisioner.render import render
from provisioner.spec_loader import load_spec
from tests.harness.homeserver import Homeserver, free_port, run
from tests.test_render import write_spec

pytestmark = pytest.mark.slow

CHAT500 = str(Path(sys.executable).parent / "chat500")


async def exchange_a_message(homeserver: Homeserver) -> None:
    alice_id, alice_pw = homeserver.create_user("alice")
    bob_id, bob_pw = homeserver.create_user("bob")
    alice = await homeserver.client(alice_id, alice_pw)
    bob = await homeserver.client(bob_id, bob_pw)
    try:
        created = await alice.room_create(name="General", invite=[bob_id])
        assert isinstance(created, RoomCreateResponse), created
        joined = await bob.join(created.room_id)
        assert isinstance(joined, JoinResponse), joined
        sent = await alice.room_send(
            created.room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        history = await bob.room_messages(created.room_id, start="", limit=20)
        assert isinstance(history, RoomMessagesResponse), history
        bodies = [getattr(event, "body", None) for event in history.chunk]
        assert "hello bob" in bodies
    finally:
        await alice.close()
        await bob.close()


def test_bundle_boots_and_clients_chat(homeservers, database: str) -> None:  # type: ignore[no-untyped-def]
    homeserver = homeservers(database=database)
    versions = httpx.get(f"{homeserver.base_url}/_matrix/client/versions").json()
    assert "v1.1" in versions["versions"]
    run(exchange_a_message(homeserver))


def _read_until(process: subprocess.Popen[str], pattern: str, limit: int = 400) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    for _ in range(limit):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"never saw {pattern!r}; output: {''.join(lines)}")


def test_demo_serves_and_its_printed_admin_logs_in(tmp_path: Path) -> None:
    port = free_port()
    demo_dir = tmp_path / "demo"
    command = [CHAT500, "demo", "--dir", str(demo_dir), "--port", str(port)]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ},
        )

    process = start()
    try:
        lines = _read_until(process, r"Ctrl-C stops")
        output = "".join(lines)
        user_id = re.search(r"admin login: (\S+)", output).group(1)  # type: ignore[union-attr]
        password = re.search(r"password:\s+(\S+)\s+\(shown once", output).group(1)  # type: ignore[union-attr]
        assert (demo_dir / "admin-password").stat().st_mode & 0o777 == 0o600
        login = httpx.post(
            f"http://127.0.0.1:{port}/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user_id},
                "password": password,
            },
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        whoami = httpx.get(
            f"http://127.0.0.1:{port}/_synapse/admin/v2/users/{user_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert whoami.status_code == 200 and whoami.json()["admin"] is True
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0

    # A second run is idempotent: same spec, same secrets, no new password printed.
    process = start()
    try:
        output = "".join(_read_until(process, r"Ctrl-C stops"))
        assert "shown once" not in output and "admin-password" in output
        assert (demo_dir / "admin-password").read_text().strip() == password
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def _start_runner(tmp_path: Path) -> tuple[subprocess.Popen[str], int, str]:
    """``chat500 run`` on a freshly rendered bundle: the process, its port, what it printed."""
    port = free_port()
    spec = load_spec(
        write_spec(tmp_path / "spec", {"push": {"listen_port": free_port()}}, port=port)
    )
    bundle = tmp_path / "bundle"
    render(spec, bundle)
    process = subprocess.Popen(
        [CHAT500, "run", str(bundle)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return process, port, "".join(_read_until(process, r"serving chat.test"))


def test_run_serves_a_bundle_and_stops_on_sigterm(tmp_path: Path) -> None:
    process, port, output = _start_runner(tmp_path)
    try:
        assert f"http://127.0.0.1:{port}/" in output
        assert httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions")


def test_a_killed_runner_leaves_no_servers_behind(tmp_path: Path) -> None:
    process, port, _output = _start_runner(tmp_path)
    process.kill()  # no chance to clean up: the children must go by themselves
    process.wait()
    import time

    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions", timeout=1)
        except httpx.ConnectError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("Synapse outlived a killed `chat500 run`")
