"""Serving a rendered bundle: Synapse and the push gateway as child processes.

``chat500 run`` and the test harness both start servers through here, so there is one way a
bundle is booted and one notion of "ready" (``/_matrix/client/versions`` answers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from provisioner.errors import Chat500Error
from provisioner.render import HOMESERVER, synapse_config_files
from pusher_gateway.config import ConfigError as GatewayConfigError
from pusher_gateway.config import load_config as load_gateway_config

READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class BundleInfo:
    """What a running bundle is reached by, read from its rendered files."""

    bundle_dir: Path
    server_name: str
    client_port: int
    bind_address: str
    pushgw_config: Path | None
    pushgw_health_url: str | None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.bind_address in ("0.0.0.0", "::", "") else self.bind_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.client_port}"


def read_bundle(bundle_dir: Path) -> BundleInfo:
    bundle_dir = bundle_dir.resolve()
    path = bundle_dir / HOMESERVER
    if not path.exists():
        raise Chat500Error(f"{bundle_dir}: not a rendered bundle (no {HOMESERVER})")
    config = yaml.safe_load(path.read_text())
    client = next(
        listener
        for listener in config["listeners"]
        if any("client" in res.get("names", []) for res in listener.get("resources", []))
    )
    pushgw: Path | None = bundle_dir / "pushgw" / "pushgw.yaml"
    health = None
    if pushgw is not None and pushgw.exists() and config.get("push", {}).get("enabled", True):
        try:
            gateway = load_gateway_config(pushgw)
        except GatewayConfigError as err:
            raise Chat500Error(f"{pushgw}: {err}") from err
        health = f"http://{gateway.listen_host}:{gateway.listen_port}/health"
    else:
        pushgw = None
    return BundleInfo(
        bundle_dir=bundle_dir,
        server_name=config["server_name"],
        client_port=int(client["port"]),
        bind_address=(client.get("bind_addresses") or ["127.0.0.1"])[0],
        pushgw_config=pushgw,
        pushgw_health_url=health,
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_ready(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            detail = next((line for line in reversed(tail) if line.strip()), "no output")
            raise Chat500Error(f"{what} exited with code {process.returncode}: {detail} ({log})")
        if _answers(url):
            return
        time.sleep(0.2)
    raise Chat500Error(f"{what} did not answer {url} within {READY_TIMEOUT_S:.0f}s ({log})")


@dataclass
class Servers:
    """The processes serving one bundle; ``stop()`` ends them all, gateway first."""

    info: BundleInfo
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def stop(self, timeout: float = 30.0) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def poll(self) -> str | None:
        """The name of a process that has exited, if any."""
        for name, process in self.processes:
            if process.poll() is not None:
                return name
        return None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed ``chat500 run`` leaks nothing."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_die_with_parent,
        )


def start_synapse(info: BundleInfo, extra_configs: Sequence[Path] = ()) -> subprocess.Popen[bytes]:
    """Start Synapse; ``extra_configs`` are layered over homeserver.yaml (later files win)."""
    log = info.bundle_dir / "data" / "synapse.stdout.log"
    args = [sys.executable, "-m", "synapse.app.homeserver"]
    for config in (*synapse_config_files(info.bundle_dir), *extra_configs):
        args += ["--config-path", str(config)]
    process = _spawn(args, info.bundle_dir, log)
    try:
        wait_until_ready(f"{info.base_url}/_matrix/client/versions", process, "Synapse", log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def start_pushgw(info: BundleInfo) -> subprocess.Popen[bytes] | None:
    if info.pushgw_config is None or info.pushgw_health_url is None:
        return None
    log = info.bundle_dir / "data" / "pushgw.log"
    exe = Path(sys.executable).parent / "chat500-pushgw"
    process = _spawn([str(exe), "-c", str(info.pushgw_config)], info.bundle_dir, log)
    try:
        wait_until_ready(info.pushgw_health_url, process, "Push gateway", log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def start_bundle(
    bundle_dir: Path, *, with_pushgw: bool = True, extra_configs: Sequence[Path] = ()
) -> Servers:
    """Start everything a bundle serves and wait until each part answers."""
    info = read_bundle(bundle_dir)
    (info.bundle_dir / "data").mkdir(mode=0o700, exist_ok=True)
    servers = Servers(info)
    try:
        if with_pushgw:
            gateway = start_pushgw(info)
            if gateway is not None:
                servers.processes.append(("push gateway", gateway))
        servers.processes.append(("Synapse", start_synapse(info, extra_configs)))
    except BaseException:
        servers.stop()
        raise
    return servers


def client_versions(base_url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base_url}/_matrix/client/versions", timeout=5) as response:
        return dict(json.load(response))
