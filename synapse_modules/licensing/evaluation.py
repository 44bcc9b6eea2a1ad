"""Making licenses: the vendor's ``issue``, and the evaluation license ``chat500 init`` writes.

An evaluation license is signed by a key generated on the user's own machine, which the spec
names explicitly (``license.vendor_public_key``), so a new user runs the product at once while
render and the module say plainly that it is an evaluation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from signedjson.types import SigningKey

from synapse_modules.licensing.document import (
    ALL_FEATURES,
    FEATURES,
    License,
    LicenseError,
    check_slug,
    encode_signing_key,
    load_license,
    new_signing_key,
    public_key_of,
    read_public_key,
    read_signing_key,
    sign_license,
    write_private_file,
)

DEFAULT_GRACE_DAYS = 14
EVALUATION_DAYS = 30
EVALUATION_SEATS = 10
EVALUATION_KEY_FILE = "evaluation-vendor.key"
EVALUATION_PUBLIC_KEY_FILE = "evaluation-vendor.pub"


def new_license_id(org_slug: str, now: datetime) -> str:
    return f"{org_slug}-{now:%Y%m%d}-{secrets.token_hex(4)}"


def issue_license(
    signing_key: SigningKey,
    *,
    org_slug: str,
    org_display_name: str,
    server_name: str,
    seats: int,
    expires_at: datetime,
    valid_from: datetime | None = None,
    grace_days: int = DEFAULT_GRACE_DAYS,
    features: tuple[str, ...] | frozenset[str] = ALL_FEATURES,
    evaluation: bool = False,
    now: datetime | None = None,
) -> tuple[License, str]:
    """A new license and its signed file text. Inputs are checked here, once, for every caller."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise LicenseError(
            f"features: unknown feature {unknown[0]!r} (known: {', '.join(sorted(FEATURES))})"
        )
    if seats < 1:
        raise LicenseError("seats: must be at least 1")
    if grace_days < 0:
        raise LicenseError("grace_days: must be >= 0")
    if not org_display_name.strip():
        raise LicenseError("org display name: must not be empty")
    if not server_name or any(c.isspace() for c in server_name):
        raise LicenseError(f"server name {server_name!r}: not a server name")
    start = (valid_from or issued).replace(microsecond=0)
    end = expires_at.replace(microsecond=0)
    if end <= start:
        raise LicenseError("expires: must be after the start of the license")
    document = License(
        license_id=new_license_id(check_slug(org_slug), issued),
        org_slug=org_slug,
        org_display_name=org_display_name,
        server_name=server_name,
        seats=seats,
        issued_at=issued,
        valid_from=start,
        expires_at=end,
        grace_days=grace_days,
        features=frozenset(features),
        evaluation=evaluation,
    )
    return document, sign_license(document, signing_key)


@dataclass(frozen=True)
class EvaluationFiles:
    license_path: Path
    public_key_path: Path  # what the spec names in license.vendor_public_key
    private_key_path: Path  # 0600; stays on this machine


def write_evaluation_license(
    directory: Path, org_slug: str, display_name: str, server_name: str
) -> EvaluationFiles:
    """Write ``<directory>/<org_slug>.license`` (30 days, 10 seats, every feature, evaluation).

    The evaluation key pair in ``directory`` is created once and reused, never overwritten.
    An existing evaluation license for the same org and server is kept (running init again
    does not restart the 30 days); any other evaluation license by that key is replaced; a
    license that is not one of these is never clobbered.
    Raises ``LicenseError`` (one line) on bad input or unusable files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / EVALUATION_KEY_FILE
    pub_path = directory / EVALUATION_PUBLIC_KEY_FILE
    license_path = directory / f"{check_slug(org_slug)}.license"

    if key_path.exists():
        signing_key = read_signing_key(key_path)
    else:
        signing_key = new_signing_key(f"eval_{secrets.token_hex(4)}")
        write_private_file(key_path, encode_signing_key(signing_key))
    public_key = public_key_of(signing_key)
    if not pub_path.exists() or read_public_key(pub_path).encode() != public_key.encode():
        pub_path.write_text(public_key.encode() + "\n", encoding="utf-8")

    if license_path.exists():
        try:
            existing = load_license(license_path.read_bytes(), public_key, str(license_path))
        except LicenseError:
            existing = None
        if existing is None or not existing.evaluation:
            raise LicenseError(
                f"{license_path}: a license that is not this evaluation license is already "
                "there; not overwriting it"
            )
        if existing.org_slug == org_slug and existing.server_name == server_name:
            # Running init again does not restart the evaluation period.
            return EvaluationFiles(license_path, pub_path, key_path)

    now = datetime.now(UTC).replace(microsecond=0)
    _, text = issue_license(
        signing_key,
        org_slug=org_slug,
        org_display_name=display_name,
        server_name=server_name,
        seats=EVALUATION_SEATS,
        expires_at=now + timedelta(days=EVALUATION_DAYS),
        grace_days=0,
        features=ALL_FEATURES,
        evaluation=True,
        now=now,
    )
    license_path.write_text(text, encoding="utf-8")
    return EvaluationFiles(
        license_path=license_path, public_key_path=pub_path, private_key_path=key_path
    )
