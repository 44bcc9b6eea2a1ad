"""Creating accounts with the bundle's registration shared secret (Synapse's admin register API).

This is how the very first admin is made, before any admin access token exists: ``chat500 demo``
and the test harness use it. Everything after that goes through an admin's token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import Chat500Error

REGISTER_PATH = "/_synapse/admin/v1/register"


@dataclass(frozen=True)
class Registered:
    user_id: str
    access_token: str


def read_shared_secret(bundle_dir: Path) -> str:
    return (bundle_dir / "secrets" / "registration_shared_secret").read_text("ascii").strip()


def _call(method: str, url: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as err:
        try:
            detail = json.load(err)
            message = f"{detail.get('errcode', err.code)}: {detail.get('error', '')}"
        except ValueError:
            message = str(err.code)
        raise Chat500Error(f"{method} {REGISTER_PATH}: {message}") from err


def register_with_shared_secret(
    base_url: str,
    shared_secret: str,
    localpart: str,
    password: str,
    *,
    admin: bool = False,
    displayname: str | None = None,
) -> Registered:
    nonce = str(_call("GET", base_url + REGISTER_PATH)["nonce"])
    # The MAC is over the four fields joined by NULs, without a trailing one.
    fields = (nonce, localpart, password, "admin" if admin else "notadmin")
    digest = hmac.new(
        shared_secret.encode(), b"\x00".join(f.encode("utf-8") for f in fields), hashlib.sha1
    ).hexdigest()
    body: dict[str, object] = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": digest,
    }
    if displayname:
        body["displayname"] = displayname
    result = _call("POST", base_url + REGISTER_PATH, body)
    return Registered(str(result["user_id"]), str(result["access_token"]))
