"""The CLI's one way to talk to a running homeserver with an admin's access token.

Used by ``chat500 users`` and ``chat500 license status``: Synapse's admin API and our module
admin API under ``/_synapse/client/chat500/v1/``. Every failure is a one-line ``Chat500Error``;
the token is sent only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from provisioner.errors import Chat500Error

TOKEN_ENV = "CHAT500_ADMIN_TOKEN"
MODULE_API = "/_synapse/client/chat500/v1"


class HomeserverError(Chat500Error):
    """The homeserver answered with an error; ``status``/``errcode`` let callers react."""

    def __init__(self, message: str, status: int, errcode: str) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


def user_path(user_id: str) -> str:
    """A user id as one URL path segment."""
    return quote(user_id, safe="@:")


class HomeserverClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._server_name: str | None = None

    @classmethod
    def from_options(cls, deploy: Path | None, homeserver: str | None) -> HomeserverClient:
        """``--deploy DIR`` (its rendered listener) or ``--homeserver URL``, plus the token."""
        if (deploy is None) == (homeserver is None):
            raise Chat500Error("give exactly one of --deploy DIR or --homeserver URL")
        if homeserver is not None:
            if not homeserver.startswith(("http://", "https://")):
                raise Chat500Error(f"--homeserver must be an http(s) URL (got {homeserver!r})")
            base_url = homeserver
        else:
            from provisioner.run import read_bundle

            base_url = read_bundle(Path(deploy)).base_url  # type: ignore[arg-type]
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise Chat500Error(f"set {TOKEN_ENV} to a server admin's access token")
        return cls(base_url, token)

    def request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        """One call; the JSON object answered, or a one-line error naming the call."""
        url = self.base_url + path
        try:
            response = httpx.request(
                method,
                url,
                json=json,
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as exc:
            raise Chat500Error(f"cannot reach the homeserver at {self.base_url}: {exc}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {"value": body}
        if response.status_code >= 400:
            errcode = str(body.get("errcode", "")) or f"HTTP {response.status_code}"
            error = str(body.get("error", "")) or response.reason_phrase
            raise HomeserverError(
                f"{method} {path}: {response.status_code} {errcode}: {error}",
                response.status_code,
                errcode,
            )
        return body

    @property
    def server_name(self) -> str:
        """The homeserver's name, from the admin's own user id."""
        if self._server_name is None:
            whoami = self.request("GET", "/_matrix/client/v3/account/whoami")
            self._server_name = str(whoami["user_id"]).split(":", 1)[1]
        return self._server_name
