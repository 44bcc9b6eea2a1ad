"""``chat500 render``, ``chat500 run`` and ``chat500 demo``: from spec to a serving homeserver."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import yaml

from provisioner.errors import Chat500Error, CheckFailed
from provisioner.secrets import write_private
from provisioner.shared_secret import read_shared_secret, register_with_shared_secret
from provisioner.spec_loader import load_spec

if TYPE_CHECKING:
    from provisioner.run import Servers

# `render` and `run` pull in Synapse (seconds to import); the commands that need them import
# them, so `chat500 validate` and `chat500 --help` stay quick.

DEMO_ADMIN = "orgadmin"


@click.command("render")
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Bundle dir.")
@click.option("--check", is_flag=True, help="Write nothing; show what would change; exit 1 if any.")
def render_command(specs: tuple[Path, ...], out: Path, check: bool) -> None:
    """Render SPEC into the deployment bundle DIR (several specs: DIR/<slug>/ each)."""
    from provisioner.render import render

    loaded = [load_spec(path) for path in specs]  # every spec valid before anything is written
    if len(loaded) > 1:
        slugs = [spec.org.slug for spec in loaded]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise Chat500Error(f"render: two specs share the org slug {duplicates[0]!r}")
    any_change = False
    for spec in loaded:
        target = out if len(loaded) == 1 else out / spec.org.slug
        result = render(spec, target, check=check)
        for warning in result.warnings:
            click.echo(f"warning: {spec.org.slug}: {warning}", err=True)
        any_change = any_change or bool(result.changed)
        if check:
            if result.diff:
                click.echo(result.diff, nl=False)
            continue
        summary = f"{len(result.changed)} file(s) changed" if result.changed else "up to date"
        click.echo(f"rendered {spec.org.slug} into {result.out_dir} ({summary})")
    if check and any_change:
        raise CheckFailed("render --check: the bundle would change")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops us like Ctrl-C does, from the first moment, so children never outlive us."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_until_stopped(servers: Servers, announce: Callable[[], None]) -> None:
    """Announce, then serve until Ctrl-C or SIGTERM, which stop everything and exit 0.

    ``announce`` runs inside the guarded block: a stop request that arrives the moment the
    banner is out (a supervisor reading it, a quick Ctrl-C) is an orderly stop, never an abort.
    """
    try:
        announce()
        while (exited := servers.poll()) is None:
            time.sleep(0.5)
        logs = servers.info.bundle_dir / "data"
        raise Chat500Error(f"run: {exited} stopped unexpectedly (logs in {logs})")
    except KeyboardInterrupt:
        click.echo("stopping…", err=True)
    finally:
        servers.stop()


@click.command("run")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
def run_command(bundle: Path) -> None:
    """Serve a rendered BUNDLE locally (Synapse + push gateway) until Ctrl-C."""
    from provisioner.run import start_bundle

    with _sigterm_as_interrupt():
        servers = start_bundle(bundle)
        _serve_until_stopped(
            servers,
            lambda: click.echo(
                f"serving {servers.info.server_name} at {servers.info.base_url}/ (Ctrl-C stops)"
            ),
        )


def demo_spec_document(port: int) -> dict[str, object]:
    """A demo organization on SQLite, reachable on this machine only."""
    return {
        "org": {"slug": "demo", "display_name": "Demo Organization"},
        "server": {
            "server_name": "localhost",
            "public_baseurl": f"http://127.0.0.1:{port}/",
            "bind_address": "127.0.0.1",
            "port": port,
        },
        "database": {"engine": "sqlite"},
        "branding": {
            "brand": "Demo Chat",
            "privacy_policy_url": "https://example.org/privacy",
            "support_email": "support@example.org",
        },
        "push": {
            "gateway_url": f"http://127.0.0.1:{port + 1}/_matrix/push/v1/notify",
            "listen_port": port + 1,
        },
    }


def _write_demo_spec(directory: Path, port: int) -> Path:
    from synapse_modules.licensing.evaluation import write_evaluation_license

    spec_path = directory / "demo.yaml"
    if spec_path.exists():
        return spec_path
    directory.mkdir(parents=True, exist_ok=True)
    evaluation = write_evaluation_license(directory, "demo", "Demo Organization", "localhost")
    document = demo_spec_document(port)
    document["license"] = {
        "path": evaluation.license_path.name,
        "vendor_public_key": evaluation.public_key_path.name,
    }
    header = "# Demo organization written by `chat500 demo`. Edit and run `make run` again.\n"
    spec_path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return spec_path


def _ensure_demo_admin(servers: Servers, directory: Path) -> tuple[str, str | None]:
    """The demo admin's id, and its password if this run created it (shown once)."""
    password_file = directory / "admin-password"
    user_id = f"@{DEMO_ADMIN}:{servers.info.server_name}"
    if password_file.exists():
        return user_id, None
    password = secrets.token_urlsafe(15)
    register_with_shared_secret(
        servers.info.base_url,
        read_shared_secret(servers.info.bundle_dir),
        DEMO_ADMIN,
        password,
        admin=True,
        displayname="Demo admin",
    )
    write_private(password_file, (password + "\n").encode())
    return user_id, password


def _print_demo_banner(
    servers: Servers, user_id: str, password: str | None, password_file: Path
) -> None:
    info = servers.info
    click.echo(f"Demo homeserver {info.server_name} is serving at {info.base_url}/")
    click.echo(f"  admin login: {user_id}")
    if password is not None:
        click.echo(f"  password:    {password}   (shown once; kept in {password_file})")
    else:
        click.echo(f"  password:    in {password_file}")


@click.command("demo")
@click.option("--dir", "directory", default="demo", type=click.Path(path_type=Path))
@click.option("--port", default=8008, show_default=True, help="Client API port on 127.0.0.1.")
def demo_command(directory: Path, port: int) -> None:
    """Render and serve a demo organization on SQLite, with an admin login."""
    from provisioner.render import render
    from provisioner.run import start_bundle

    directory = directory.resolve()
    spec = load_spec(_write_demo_spec(directory, port))
    with _sigterm_as_interrupt():
        result = render(spec, directory / "bundle")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        servers = start_bundle(directory / "bundle")

        def announce() -> None:
            user_id, password = _ensure_demo_admin(servers, directory)
            _print_demo_banner(servers, user_id, password, directory / "admin-password")
            click.echo("  Point any Matrix client (e.g. Element) at that URL. Ctrl-C stops.")

        _serve_until_stopped(servers, announce)


COMMANDS: list[click.Command] = [render_command, run_command, demo_command]
