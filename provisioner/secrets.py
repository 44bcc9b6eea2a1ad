"""A bundle's secrets: generated once, kept 0600, never re-generated, never printed.

Rendering again must keep every secret byte-identical, so each one is created only when its file
is absent, with ``O_EXCL`` so two renders racing can't both write one.
"""

from __future__ import annotations

import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys

SECRETS_DIR = "secrets"
SECRET_NAMES = (
    "macaroon_secret_key",
    "form_secret",
    "registration_shared_secret",
    "db_password",
    "turn_shared_secret",
)
SIGNING_KEY = "secrets/signing.key"


@dataclass(frozen=True)
class BundleSecrets:
    """Secret values as read from (or just generated for) a bundle."""

    values: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]


def write_private(path: Path, content: bytes) -> bool:
    """Create ``path`` with mode 0600 unless it exists; True when this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return True


def ensure_secrets(bundle_dir: Path) -> BundleSecrets:
    """Generate whichever secrets ``bundle_dir`` lacks; return all of them."""
    secrets_dir = bundle_dir / SECRETS_DIR
    values: dict[str, str] = {}
    for name in SECRET_NAMES:
        path = secrets_dir / name
        write_private(path, secrets.token_urlsafe(48).encode("ascii"))
        values[name] = path.read_text("ascii").strip()
    key_path = bundle_dir / SIGNING_KEY
    if not key_path.exists():
        key = generate_signing_key("a_" + secrets.token_hex(2))
        buffer = io.StringIO()
        write_signing_keys(buffer, [key])
        write_private(key_path, buffer.getvalue().encode("ascii"))
    with key_path.open() as handle:
        read_signing_keys(handle)  # a corrupt key file fails here, not inside Synapse
    return BundleSecrets(values)


def copy_secrets(source_bundle: Path, target_bundle: Path) -> None:
    """Carry a bundle's existing secrets into a staging dir, keeping bytes and modes."""
    for name in (*SECRET_NAMES, "signing.key"):
        src = source_bundle / SECRETS_DIR / name
        if src.exists():
            write_private(target_bundle / SECRETS_DIR / name, src.read_bytes())
