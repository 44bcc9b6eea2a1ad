"""``chat500 license``: make vendor keys, issue and verify licenses, read a deployment's status.

``keygen`` and ``issue`` are the vendor's tools (the private key never leaves the vendor);
``verify`` and ``status`` are for anyone holding a license or running a deployment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import click

from provisioner.errors import Chat500Error, CheckFailed
from provisioner.files import write_atomically
from provisioner.homeserver_client import MODULE_API, HomeserverClient
from synapse_modules.licensing import rules
from synapse_modules.licensing.document import (
    ALL_FEATURES,
    FEATURES,
    LicenseError,
    encode_signing_key,
    format_time,
    new_signing_key,
    public_key_of,
    read_license,
    read_signing_key,
    resolve_public_key,
    write_private_file,
)
from synapse_modules.licensing.evaluation import DEFAULT_GRACE_DAYS, issue_license


@click.group("license")
def license_group() -> None:
    """Vendor keys and signed licenses: keygen, issue, verify, status."""


@license_group.command("keygen")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Path prefix: writes OUT.key (private, 0600) and OUT.pub (shareable).",
)
@click.option("--key-id", default=None, help="Key version, e.g. vendor2027 (default: vYYYYMMDD).")
def keygen(out: Path, key_id: str | None) -> None:
    """Create a vendor Ed25519 key pair for signing licenses."""
    key_path, pub_path = Path(f"{out}.key"), Path(f"{out}.pub")
    for path in (key_path, pub_path):
        if path.exists():
            raise Chat500Error(f"{path}: already exists; not overwriting a key")
    try:
        signing_key = new_signing_key(key_id or datetime.now(UTC).strftime("v%Y%m%d"))
        key_path.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(key_path, encode_signing_key(signing_key))
    except LicenseError as exc:
        raise Chat500Error(str(exc)) from None
    public = public_key_of(signing_key)
    pub_path.write_text(public.encode() + "\n", encoding="utf-8")
    click.echo(f"wrote {key_path} (private, 0600: keep it safe) and {pub_path} ({public.key_id})")


def _parse_moment(value: str, option: str, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` (the whole day counts) or ``YYYY-MM-DDTHH:MM:SSZ``, in UTC."""
    try:
        if "T" in value:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise Chat500Error(
            f"{option}: {value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    return datetime.combine(day, time(23, 59, 59) if end_of_day else time(0, 0), tzinfo=UTC)


def _parse_features(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        return ALL_FEATURES
    chosen: list[str] = []
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            if name == "none":
                continue
            if name not in FEATURES:
                raise Chat500Error(
                    f"--features: unknown feature {name!r} (known: {', '.join(ALL_FEATURES)})"
                )
            chosen.append(name)
    return tuple(sorted(set(chosen)))


@license_group.command("issue")
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path),
              help="The vendor's private key (from keygen).")
@click.option("--org", "org_slug", required=True, help="The org's slug, as in its spec.")
@click.option("--name", "display_name", default=None, help="The org's display name.")
@click.option("--server-name", required=True, help="The Matrix server_name it is bound to.")
@click.option("--seats", required=True, type=click.IntRange(min=1), help="Active accounts.")
@click.option("--expires", required=True, help="Last valid day, YYYY-MM-DD (UTC).")
@click.option("--valid-from", default=None, help="First valid day (default: now).")
@click.option("--grace-days", default=DEFAULT_GRACE_DAYS, show_default=True,
              type=click.IntRange(min=0), help="Days after expiry before growth stops.")
@click.option("--features", multiple=True,
              help=f"Comma-separated, or 'none' (default: all of {', '.join(ALL_FEATURES)}).")
@click.option("--evaluation", is_flag=True, help="Mark the license as an evaluation.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def issue(
    key_path: Path,
    org_slug: str,
    display_name: str | None,
    server_name: str,
    seats: int,
    expires: str,
    valid_from: str | None,
    grace_days: int,
    features: tuple[str, ...],
    evaluation: bool,
    out: Path,
) -> None:
    """Sign a license for one organization's server."""
    expires_at = _parse_moment(expires, "--expires", end_of_day=True)
    start = _parse_moment(valid_from, "--valid-from", end_of_day=False) if valid_from else None
    chosen = _parse_features(features)
    try:
        signing_key = read_signing_key(key_path)
        document, text = issue_license(
            signing_key,
            org_slug=org_slug,
            org_display_name=display_name or org_slug,
            server_name=server_name,
            seats=seats,
            expires_at=expires_at,
            valid_from=start,
            grace_days=grace_days,
            features=chosen,
            evaluation=evaluation,
        )
    except LicenseError as exc:
        raise Chat500Error(str(exc)) from None
    write_atomically(out, text)
    click.echo(
        f"wrote {out}: {document.license_id} for {server_name}, {seats} seats, until "
        f"{format_time(document.expires_at)}, features: {', '.join(chosen) or 'none'}"
    )


@license_group.command("verify")
@click.argument("license_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pubkey", default="",
              help="Vendor public key: a .pub file or 'ed25519:<id> <key>' (default: shipped).")
@click.option("--server-name", default=None, help="Also require this server_name.")
@click.option("--json", "as_json", is_flag=True, help="Print the license as JSON.")
def verify(license_file: Path, pubkey: str, server_name: str | None, as_json: bool) -> None:
    """Check a license: exit 0 when valid now, 1 (with the reason) when not."""
    try:
        public_key = resolve_public_key(pubkey, Path.cwd())
    except LicenseError as exc:
        raise Chat500Error(f"--pubkey: {exc}") from None
    try:
        lic = read_license(license_file, public_key)
    except LicenseError as exc:
        raise CheckFailed(f"invalid: {exc}") from None
    status = rules.status_at(lic, datetime.now(UTC))
    if as_json:
        click.echo(json.dumps({**lic.to_json(), "state": status.state.value,
                               "days_left": status.days_left}, indent=2, sort_keys=True))
    else:
        click.echo(f"org: {lic.org_display_name} ({lic.org_slug})")
        click.echo(f"server_name: {lic.server_name}")
        click.echo(f"seats: {lic.seats}")
        click.echo(f"features: {', '.join(sorted(lic.features)) or 'none'}")
        click.echo(f"signed by: {public_key.key_id}")
        if lic.evaluation:
            click.echo("evaluation: yes (not for production)")
    if server_name is not None and lic.server_name != server_name:
        raise CheckFailed(
            f"invalid: the license is for server {lic.server_name!r}, not {server_name!r}"
        )
    if status.state in (rules.State.GRACE, rules.State.EXPIRED, rules.State.NOT_YET_VALID):
        raise CheckFailed(f"invalid: {rules.describe(lic, status)}")
    click.echo(f"valid: {rules.describe(lic, status)}")


@license_group.command("status")
@click.argument("deploy", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--homeserver", default=None, help="Homeserver URL instead of a bundle DIR.")
@click.option("--json", "as_json", is_flag=True, help="Print the module's status JSON.")
def status(deploy: Path | None, homeserver: str | None, as_json: bool) -> None:
    """Seats used, days left and features of a running homeserver's license.

    Needs a server admin's token in CHAT500_ADMIN_TOKEN. Exit 1 when the homeserver refuses
    growth (expired, not yet valid) or refused a replaced license file.
    """
    client = HomeserverClient.from_options(deploy, homeserver)
    info = client.request("GET", f"{MODULE_API}/license")
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(f"license: {info.get('license_id')} for {info.get('org_display_name')}")
        click.echo(f"server_name: {info.get('server_name')}")
        click.echo(f"seats: {info.get('seats_used')} used / {info.get('seats')}")
        click.echo(f"state: {info.get('state')} ({info.get('days_left')} days left, expires "
                   f"{info.get('expires_at')}, grace until {info.get('grace_ends_at')})")
        click.echo(f"features: {', '.join(info.get('features') or []) or 'none'}")
        if info.get("evaluation"):
            click.echo("evaluation: yes (not for production)")
    if info.get("reload_error"):
        raise CheckFailed(f"the homeserver refused the license file: {info['reload_error']}")
    if not info.get("allows_growth", False):
        raise CheckFailed(f"{info.get('summary')}")


COMMANDS: list[click.Command] = [license_group]
