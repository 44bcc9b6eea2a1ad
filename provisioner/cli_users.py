"""``chat500 users``: accounts, minors and guardian consent, through a running homeserver.

Creating a minor flags the user id in the minors module *before* the account exists, so there
is no moment in which the account could log in un-flagged.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import click

from provisioner.errors import Chat500Error
from provisioner.homeserver_client import MODULE_API, HomeserverClient, HomeserverError, user_path
from provisioner.spec_checks import localpart_problem
from provisioner.units import parse_duration

RELATIONS = ("parent", "guardian", "other")


def _target(func: Any) -> Any:
    func = click.option(
        "--homeserver", "homeserver", metavar="URL", help="The homeserver's client URL."
    )(func)
    return click.option(
        "--deploy",
        "deploy",
        metavar="DIR",
        type=click.Path(path_type=Path),
        help="A rendered bundle; its listener gives the homeserver URL.",
    )(func)


def _client(deploy: Path | None, homeserver: str | None) -> HomeserverClient:
    return HomeserverClient.from_options(deploy, homeserver)


def _user_id(client: HomeserverClient, user: str) -> str:
    if user.startswith("@"):
        if ":" not in user:
            raise Chat500Error(f"user: {user!r} is not a Matrix user id (@name:server)")
        return user
    problem = localpart_problem(user)
    if problem:
        raise Chat500Error(f"user: {problem}")
    return f"@{user}:{client.server_name}"


def _minors_call(
    client: HomeserverClient, method: str, user_id: str, rest: str = "", body: Any = None
) -> dict[str, Any]:
    path = f"{MODULE_API}/minors/{user_path(user_id)}" + (f"/{rest}" if rest else "")
    try:
        return client.request(method, path, body)
    except HomeserverError as err:
        if err.status == 404 and err.errcode in ("M_UNRECOGNIZED", "HTTP 404"):
            raise Chat500Error(
                "minors are not enabled on this homeserver (spec: minors.enabled)"
            ) from err
        raise


def _user_exists(client: HomeserverClient, user_id: str) -> bool:
    try:
        client.request("GET", f"/_synapse/admin/v2/users/{user_path(user_id)}")
    except HomeserverError as err:
        if err.status == 404:
            return False
        raise
    return True


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


@click.group("users")
def users() -> None:
    """Create accounts, mark minors and record guardian consent."""


@users.command("create")
@click.argument("name")
@click.option("--minor", is_flag=True, help="The account belongs to a minor (needs consent).")
@click.option("--admin", is_flag=True, help="Make the account a server admin.")
@click.option("--displayname", default=None, help="Display name (default: NAME).")
@click.option("--json", "as_json", is_flag=True, help='Print {"user_id", "password"} as JSON.')
@_target
def create(
    name: str,
    minor: bool,
    admin: bool,
    displayname: str | None,
    as_json: bool,
    deploy: Path | None,
    homeserver: str | None,
) -> None:
    """Create account NAME with a one-time password, printed once."""
    if minor and admin:
        raise Chat500Error("--minor and --admin cannot be combined: a minor is never an admin")
    client = _client(deploy, homeserver)
    user_id = _user_id(client, name)
    if _user_exists(client, user_id):
        raise Chat500Error(f"{user_id} already exists")
    if minor:
        _minors_call(client, "PUT", user_id, body={})
    password = secrets.token_urlsafe(18)
    body: dict[str, Any] = {"password": password, "admin": admin, "logout_devices": False}
    if displayname:
        body["displayname"] = displayname
    try:
        client.request("PUT", f"/_synapse/admin/v2/users/{user_path(user_id)}", body)
    except Chat500Error:
        if minor:  # leave no stray flag behind for an account that was never made
            _minors_call(client, "DELETE", user_id)
        raise
    if as_json:
        click.echo(json.dumps({"user_id": user_id, "password": password}))
    else:
        kind = "minor (waiting for guardian consent)" if minor else "admin" if admin else "user"
        click.echo(f"created {kind} {user_id}")
        click.echo(f"one-time password: {password}")


@users.command("set-minor")
@click.argument("user")
@_target
def set_minor(user: str, deploy: Path | None, homeserver: str | None) -> None:
    """Mark an existing account as a minor's: blocked until guardian consent is recorded."""
    client = _client(deploy, homeserver)
    user_id = _user_id(client, user)
    if not _user_exists(client, user_id):
        raise Chat500Error(f"{user_id} does not exist")
    state = _minors_call(client, "PUT", user_id, body={})
    click.echo(
        f"{user_id} is marked as a minor"
        + (" (blocked until guardian consent is recorded)" if state.get("blocked") else "")
    )


@users.command("consent")
@click.argument("user")
@click.option("--guardian", help="The parent or guardian's name.")
@click.option("--relation", type=click.Choice(RELATIONS), help="Their relation to the minor.")
@click.option("--contact", help="How to reach them (email or phone).")
@click.option("--evidence", help="Reference to the signed consent (form id, document ref).")
@click.option("--revoke", is_flag=True, help="Withdraw consent: the account is blocked at once.")
@_target
def consent(
    user: str,
    guardian: str | None,
    relation: str | None,
    contact: str | None,
    evidence: str | None,
    revoke: bool,
    deploy: Path | None,
    homeserver: str | None,
) -> None:
    """Record (or with --revoke withdraw) guardian consent for a minor's account."""
    if revoke:
        given = [
            n
            for n, v in (
                ("--guardian", guardian),
                ("--relation", relation),
                ("--contact", contact),
                ("--evidence", evidence),
            )
            if v
        ]
        if given:
            raise Chat500Error(f"--revoke takes no {given[0]}")
    else:
        for option, value in (
            ("--guardian", guardian),
            ("--relation", relation),
            ("--contact", contact),
            ("--evidence", evidence),
        ):
            if not value or not value.strip():
                raise Chat500Error(f"{option} is required to record consent")
    client = _client(deploy, homeserver)
    user_id = _user_id(client, user)
    if revoke:
        _minors_call(client, "DELETE", user_id, "consent")
        click.echo(f"consent withdrawn for {user_id}: the account is blocked")
        return
    _minors_call(
        client,
        "PUT",
        user_id,
        "consent",
        {
            "guardian": guardian,
            "relation": relation,
            "contact": contact,
            "evidence": evidence,
        },
    )
    click.echo(f"consent recorded for {user_id}")


@users.command("minor-record")
@click.argument("user")
@click.option("--audit", is_flag=True, help="Include the audit log of every change.")
@_target
def minor_record(user: str, audit: bool, deploy: Path | None, homeserver: str | None) -> None:
    """Print a minor's status and consent record (JSON), optionally with the audit log."""
    client = _client(deploy, homeserver)
    user_id = _user_id(client, user)
    record = _minors_call(client, "GET", user_id)
    if audit:
        record["audit"] = _minors_call(client, "GET", user_id, "audit")["events"]
    _echo_json(record)


@users.command("invite")
@click.option(
    "--uses",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many registrations the token allows.",
)
@click.option(
    "--expires", default="7d", show_default=True, help="Lifetime of the token (e.g. 12h, 7d)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the token record as JSON.")
@_target
def invite(
    uses: int, expires: str, as_json: bool, deploy: Path | None, homeserver: str | None
) -> None:
    """Create a registration token (registration mode: token)."""
    try:
        lifetime = parse_duration(expires)
    except ValueError as exc:
        raise Chat500Error(f"--expires: {exc}") from exc
    if lifetime <= 0:
        raise Chat500Error("--expires must be positive")
    client = _client(deploy, homeserver)
    token = client.request(
        "POST",
        "/_synapse/admin/v1/registration_tokens/new",
        {
            "uses_allowed": uses,
            "expiry_time": int(time.time() * 1000) + lifetime,
        },
    )
    if as_json:
        click.echo(json.dumps(token, sort_keys=True))
    else:
        click.echo(f"registration token: {token['token']} (uses: {uses}, expires in {expires})")


COMMANDS: list[click.Command] = [users]
