"""The signed license document: every edit and every foreign key is caught, with one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from signedjson.types import SigningKey

from synapse_modules.licensing.document import (
    ALL_FEATURES,
    VENDOR_PUBLIC_KEY,
    License,
    LicenseError,
    encode_signing_key,
    load_license,
    new_signing_key,
    parse_public_key,
    parse_signing_key,
    public_key_of,
    read_license,
    resolve_public_key,
    sign_license,
    vendor_public_key,
    write_private_file,
)

NOW = datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)


def make_license(**changes: object) -> License:
    fields: dict[str, object] = dict(
        license_id="acme-1",
        org_slug="acme",
        org_display_name="Acme Corp",
        server_name="chat.acme.test",
        seats=500,
        issued_at=NOW,
        valid_from=NOW,
        expires_at=NOW + timedelta(days=365),
        grace_days=14,
        features=frozenset(ALL_FEATURES),
        evaluation=False,
    )
    fields.update(changes)
    return License(**fields)  # type: ignore[arg-type]


@pytest.fixture
def key() -> SigningKey:
    return new_signing_key("test1")


def test_round_trip(key: SigningKey) -> None:
    doc = make_license()
    text = sign_license(doc, key)
    assert load_license(text, public_key_of(key)) == doc


@pytest.mark.parametrize(
    "field,value",
    [
        ("seats", 5000),
        ("server_name", "chat.other.test"),
        ("expires_at", "2099-12-31T23:59:59Z"),
        ("features", ["minors"]),
        ("evaluation", True),
        ("grace_days", 365),
    ],
)
def test_any_edited_field_is_a_forgery(key: SigningKey, field: str, value: object) -> None:
    signed = json.loads(sign_license(make_license(), key))
    signed[field] = value
    with pytest.raises(LicenseError, match="signature does not match"):
        load_license(json.dumps(signed), public_key_of(key))


def test_added_field_is_a_forgery(key: SigningKey) -> None:
    signed = json.loads(sign_license(make_license(), key))
    signed["unsigned"] = {"seats": 9999}
    with pytest.raises(LicenseError, match="unknown license field unsigned"):
        load_license(json.dumps(signed), public_key_of(key))


def test_other_key_with_other_id_is_named(key: SigningKey) -> None:
    text = sign_license(make_license(), key)
    other = public_key_of(new_signing_key("other"))
    with pytest.raises(LicenseError, match="signed by ed25519:test1, not by the trusted"):
        load_license(text, other)


def test_other_key_with_same_id_fails_the_signature(key: SigningKey) -> None:
    text = sign_license(make_license(), key)
    impostor = public_key_of(new_signing_key("test1"))
    with pytest.raises(LicenseError, match="signature does not match"):
        load_license(text, impostor)


def test_signature_stripped(key: SigningKey) -> None:
    signed = json.loads(sign_license(make_license(), key))
    del signed["signatures"]
    with pytest.raises(LicenseError, match="not signed"):
        load_license(json.dumps(signed), public_key_of(key))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "\xff"])
def test_not_a_license(key: SigningKey, text: str) -> None:
    with pytest.raises(LicenseError, match="not a JSON license file"):
        load_license(text, public_key_of(key))


def test_signed_garbage_fields_are_named(key: SigningKey) -> None:
    """Even a correctly signed document must have sane fields (a vendor tooling bug)."""
    from signedjson.sign import sign_json

    doc = make_license().to_json()
    doc["seats"] = "many"
    text = json.dumps(sign_json(doc, "chat500mg", key))
    with pytest.raises(LicenseError, match="license field seats: expected an integer >= 1"):
        load_license(text, public_key_of(key))
    doc = make_license().to_json()
    del doc["expires_at"]
    with pytest.raises(LicenseError, match="missing license field expires_at"):
        load_license(json.dumps(sign_json(doc, "chat500mg", key)), public_key_of(key))


def test_errors_are_one_line(key: SigningKey, tmp_path: Path) -> None:
    with pytest.raises(LicenseError) as err:
        read_license(tmp_path / "missing.license", public_key_of(key))
    assert "\n" not in str(err.value) and "license file not found" in str(err.value)


def test_key_files(key: SigningKey, tmp_path: Path) -> None:
    path = tmp_path / "v.key"
    write_private_file(path, encode_signing_key(key))
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(LicenseError, match="already exists"):
        write_private_file(path, "x")
    again = parse_signing_key(path.read_text(), str(path))
    assert public_key_of(again).encode() == public_key_of(key).encode()
    with pytest.raises(LicenseError, match="not an Ed25519 signing key"):
        parse_signing_key("hello", "k")
    with pytest.raises(LicenseError, match="not a public key"):
        parse_public_key("hello", "p")
    with pytest.raises(LicenseError, match="not valid base64"):
        parse_public_key("ed25519:a !!!!", "p")


def test_resolve_public_key(key: SigningKey, tmp_path: Path) -> None:
    public = public_key_of(key)
    (tmp_path / "k.pub").write_text(public.encode() + "\n")
    assert resolve_public_key("", tmp_path).encode() == VENDOR_PUBLIC_KEY
    assert resolve_public_key(public.encode(), tmp_path).encode() == public.encode()
    assert resolve_public_key("k.pub", tmp_path).encode() == public.encode()
    with pytest.raises(LicenseError, match="cannot read the public key"):
        resolve_public_key("nope.pub", tmp_path)
    assert vendor_public_key().key_id == "ed25519:vendor2026"
