"""Running the real ``chat500 users`` command line, as an operator would, and the minors steps
most tests share (create a minor, record consent). Not a test module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.harness.homeserver import Homeserver

CHAT500 = str(Path(sys.executable).with_name("chat500"))


def chat500_users(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``chat500 users ARGS`` with ``CHAT500_ADMIN_TOKEN`` set to ``token`` (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k != "CHAT500_ADMIN_TOKEN"}
    if token is not None:
        env["CHAT500_ADMIN_TOKEN"] = token
    return subprocess.run(
        [CHAT500, "users", *args], env=env, capture_output=True, text=True, timeout=120
    )


def chat500(
    hs: Homeserver, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    return chat500_users(*args, "--homeserver", hs.base_url, token=token or hs.admin_token)


def create_minor(hs: Homeserver, name: str) -> tuple[str, str]:
    done = chat500(hs, "create", name, "--minor", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return created["user_id"], created["password"]


def give_consent(hs: Homeserver, user_id: str) -> None:
    done = chat500(
        hs,
        "consent",
        user_id,
        "--guardian",
        "Ann Example",
        "--relation",
        "parent",
        "--contact",
        "ann@example.org",
        "--evidence",
        "form-2026-17",
    )
    assert done.returncode == 0, done.stderr
