"""Running the real ``chat500 users`` command line, as an operator would; not a test module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHAT500 = str(Path(sys.executable).with_name("chat500"))


def chat500_users(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``chat500 users ARGS`` with ``CHAT500_ADMIN_TOKEN`` set to ``token`` (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k != "CHAT500_ADMIN_TOKEN"}
    if token is not None:
        env["CHAT500_ADMIN_TOKEN"] = token
    return subprocess.run(
        [CHAT500, "users", *args], env=env, capture_output=True, text=True, timeout=120
    )
