"""The signed license document: what the vendor promises an organization, and its proof.

A license is a JSON object signed the Matrix way (``signedjson`` over canonical JSON, Ed25519),
so any edit to any field, or a signature by any other key, is detected. The document carries no
user data; it names the org, the server it is bound to, the seats, the dates and the features.

Every failure is a ``LicenseError`` whose message is one line naming what is wrong, because it
ends up in a CLI error, a render refusal or a Synapse ``ConfigError``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signedjson.key import (
    decode_signing_key_base64,
    decode_verify_key_base64,
    encode_signing_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json
from signedjson.types import SigningKey, VerifyKey

FORMAT = "chat500mg-license/1"
SIGNATURE_NAME = "chat500mg"  # the name under "signatures" in the document
ALGORITHM = "ed25519"

# The Chat500MG vendor's public key, trusted when a spec names no other key. Only the public
# half ships; the private half never enters the repository.
VENDOR_PUBLIC_KEY = "ed25519:vendor2026 6QG6mfOPQFqF/oBLZL7v5sz1jkaI8q8knqQBflH1qIg"

# Features a license can grant, and what each one unlocks in a spec.
FEATURES: dict[str, str] = {
    "minors": "accounts for minors with guardian consent (minors.enabled)",
    "s3_storage": "media in S3 (storage.backend: s3)",
    "workers": "Synapse workers (scale.workers > 0)",
    "white_label": "custom brand name and logo (branding.brand / branding.logo)",
}
ALL_FEATURES: tuple[str, ...] = tuple(sorted(FEATURES))

_KEY_VERSION = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_FIELDS = (
    "format",
    "license_id",
    "org_slug",
    "org_display_name",
    "server_name",
    "seats",
    "issued_at",
    "valid_from",
    "expires_at",
    "grace_days",
    "features",
    "evaluation",
)


class LicenseError(ValueError):
    """A license or key that cannot be trusted or read; ``str()`` is one line."""


@dataclass(frozen=True)
class License:
    """The verified contents of a license file. Times are timezone-aware UTC datetimes."""

    license_id: str
    org_slug: str
    org_display_name: str
    server_name: str
    seats: int
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    grace_days: int
    features: frozenset[str] = field(default_factory=frozenset)
    evaluation: bool = False

    def to_json(self) -> dict[str, Any]:
        """The unsigned document, in the exact shape that gets signed."""
        return {
            "format": FORMAT,
            "license_id": self.license_id,
            "org_slug": self.org_slug,
            "org_display_name": self.org_display_name,
            "server_name": self.server_name,
            "seats": self.seats,
            "issued_at": format_time(self.issued_at),
            "valid_from": format_time(self.valid_from),
            "expires_at": format_time(self.expires_at),
            "grace_days": self.grace_days,
            "features": sorted(self.features),
            "evaluation": self.evaluation,
        }


# --- times ----------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise LicenseError(f"license field {name}: expected a UTC time like 2027-12-31T23:59:59Z")
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise LicenseError(
            f"license field {name}: {value!r} is not a UTC time like 2027-12-31T23:59:59Z"
        ) from None


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """A vendor verify key and its id (``ed25519:<version>``), as written in a .pub file."""

    key: VerifyKey

    @property
    def key_id(self) -> str:
        return f"{ALGORITHM}:{self.key.version}"

    def encode(self) -> str:
        return f"{self.key_id} {encode_verify_key_base64(self.key)}"


def new_signing_key(version: str) -> SigningKey:
    if not _KEY_VERSION.match(version):
        raise LicenseError(f"key version {version!r}: use 1-64 letters, digits or _")
    return generate_signing_key(version)


def public_key_of(signing_key: SigningKey) -> PublicKey:
    return PublicKey(get_verify_key(signing_key))


def encode_signing_key(signing_key: SigningKey) -> str:
    """Synapse's signing-key file format: ``ed25519 <version> <base64>``."""
    return f"{ALGORITHM} {signing_key.version} {encode_signing_key_base64(signing_key)}\n"


def parse_signing_key(text: str, source: str) -> SigningKey:
    parts = text.split()
    if len(parts) != 3 or parts[0] != ALGORITHM:
        raise LicenseError(f"{source}: not an Ed25519 signing key ('ed25519 <version> <key>')")
    try:
        return decode_signing_key_base64(parts[0], parts[1], parts[2])
    except Exception:
        raise LicenseError(f"{source}: the signing key is not valid base64 Ed25519") from None


def parse_public_key(text: str, source: str) -> PublicKey:
    """A public key written as ``ed25519:<version> <base64>`` (a .pub file or an inline value)."""
    parts = text.split()
    if len(parts) != 2 or ":" not in parts[0]:
        raise LicenseError(f"{source}: not a public key ('ed25519:<version> <key>')")
    algorithm, version = parts[0].split(":", 1)
    if algorithm != ALGORITHM or not _KEY_VERSION.match(version):
        raise LicenseError(f"{source}: not an Ed25519 public key id ({parts[0]!r})")
    try:
        return PublicKey(decode_verify_key_base64(algorithm, version, parts[1]))
    except Exception:
        raise LicenseError(f"{source}: the public key is not valid base64 Ed25519") from None


def vendor_public_key() -> PublicKey:
    return parse_public_key(VENDOR_PUBLIC_KEY, "the shipped vendor key")


def resolve_public_key(value: str, base_dir: Path) -> PublicKey:
    """What a spec's ``license.vendor_public_key`` means.

    Empty: the vendor key shipped with the product. ``ed25519:<id> <base64>``: that key,
    inline. Anything else: the path of a ``.pub`` file, relative to ``base_dir`` (the spec's
    directory), such as the evaluation key ``chat500 init`` writes.
    """
    value = value.strip()
    if not value:
        return vendor_public_key()
    if value.startswith(f"{ALGORITHM}:"):
        return parse_public_key(value, "license.vendor_public_key")
    path = Path(value).expanduser()
    return read_public_key(path if path.is_absolute() else base_dir / path)


def _read_key_file(path: Path, what: str) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise LicenseError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def read_signing_key(path: Path) -> SigningKey:
    return parse_signing_key(_read_key_file(path, "signing key"), str(path))


def read_public_key(path: Path) -> PublicKey:
    return parse_public_key(_read_key_file(path, "public key"), str(path))


def write_private_file(path: Path, content: str) -> None:
    """Create ``path`` with mode 0600 from the first byte; refuse to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LicenseError(f"{path}: already exists; not overwriting a key") from None
    except OSError as exc:
        raise LicenseError(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)


# --- sign / verify --------------------------------------------------------------------------


def sign_license(document: License, signing_key: SigningKey) -> str:
    """The license file's text: the document plus its signature, pretty-printed for humans."""
    signed = sign_json(document.to_json(), SIGNATURE_NAME, signing_key)
    return json.dumps(signed, indent=2, sort_keys=True) + "\n"


def load_license(text: str | bytes, public_key: PublicKey, source: str = "license") -> License:
    """Check the signature, then the fields; return the license or raise ``LicenseError``.

    The signature is checked before the fields are trusted, so a forged file gets the
    signature reason rather than whatever field an attacker broke.
    """
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise LicenseError(f"{source}: not a JSON license file") from None
    if not isinstance(raw, dict):
        raise LicenseError(f"{source}: not a JSON license file")
    signatures = raw.get("signatures")
    if not isinstance(signatures, dict) or not isinstance(signatures.get(SIGNATURE_NAME), dict):
        raise LicenseError(f"{source}: the license is not signed")
    signed_by = sorted(signatures[SIGNATURE_NAME])
    if public_key.key_id not in signed_by:
        raise LicenseError(
            f"{source}: signed by {', '.join(signed_by) or 'no key'}, not by the trusted "
            f"vendor key {public_key.key_id}"
        )
    try:
        verify_signed_json(raw, SIGNATURE_NAME, public_key.key)
    except SignatureVerifyException:
        raise LicenseError(
            f"{source}: the signature does not match (the file was edited or signed by another "
            f"key than {public_key.key_id})"
        ) from None
    return _parse_fields(raw, source)


def read_license(path: Path, public_key: PublicKey) -> License:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise LicenseError(f"{path}: license file not found") from None
    except OSError as exc:
        raise LicenseError(f"{path}: cannot read the license ({exc.strerror})") from None
    return load_license(text, public_key, str(path))


def _parse_fields(raw: dict[str, Any], source: str) -> License:
    unknown = sorted(set(raw) - set(_FIELDS) - {"signatures"})
    if unknown:
        raise LicenseError(f"{source}: unknown license field {unknown[0]}")
    for name in _FIELDS:
        if name not in raw:
            raise LicenseError(f"{source}: missing license field {name}")
    if raw["format"] != FORMAT:
        raise LicenseError(f"{source}: license format {raw['format']!r}, expected {FORMAT!r}")

    def text(name: str) -> str:
        value = raw[name]
        if not isinstance(value, str) or not value:
            raise LicenseError(f"{source}: license field {name}: expected a non-empty string")
        return value

    def count(name: str, minimum: int) -> int:
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise LicenseError(f"{source}: license field {name}: expected an integer >= {minimum}")
        return value

    features = raw["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise LicenseError(f"{source}: license field features: expected a list of strings")
    if not isinstance(raw["evaluation"], bool):
        raise LicenseError(f"{source}: license field evaluation: expected true or false")
    document = License(
        license_id=text("license_id"),
        org_slug=text("org_slug"),
        org_display_name=text("org_display_name"),
        server_name=text("server_name"),
        seats=count("seats", 1),
        issued_at=parse_time(raw["issued_at"], "issued_at"),
        valid_from=parse_time(raw["valid_from"], "valid_from"),
        expires_at=parse_time(raw["expires_at"], "expires_at"),
        grace_days=count("grace_days", 0),
        features=frozenset(features),
        evaluation=raw["evaluation"],
    )
    if document.expires_at <= document.valid_from:
        raise LicenseError(f"{source}: license field expires_at: must be after valid_from")
    return document


def check_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise LicenseError(f"org slug {slug!r}: use lowercase letters, digits and -")
    return slug
