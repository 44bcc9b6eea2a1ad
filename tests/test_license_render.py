"""Render refuses licenses the homeserver would refuse, and warns about the ones it would run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from signedjson.types import SigningKey

from provisioner.errors import Chat500Error
from provisioner.render_license import MODULE, license_part
from provisioner.spec import Branding, License, Minors, Org, Scale, Server, Spec, Storage
from synapse_modules.licensing.document import new_signing_key, public_key_of
from synapse_modules.licensing.evaluation import issue_license, write_evaluation_license

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def vendor(tmp_path: Path) -> SigningKey:
    key = new_signing_key("rendertest")
    (tmp_path / "vendor.pub").write_text(public_key_of(key).encode() + "\n")
    return key


def write_license(
    tmp_path: Path,
    key: SigningKey,
    *,
    days: float = 200,
    server_name: str = "chat.acme.test",
    features: tuple[str, ...] = ("minors", "s3_storage", "white_label", "workers"),
    grace_days: int = 14,
) -> None:
    _, text = issue_license(
        key,
        org_slug="acme",
        org_display_name="Acme",
        server_name=server_name,
        seats=50,
        expires_at=NOW + timedelta(days=days),
        valid_from=NOW - timedelta(days=400),
        grace_days=grace_days,
        features=features,
    )
    (tmp_path / "acme.license").write_text(text)


def make_spec(tmp_path: Path, **changes: object) -> Spec:
    spec = Spec(
        org=Org(slug="acme", display_name="Acme"),
        server=Server(server_name="chat.acme.test"),
        license=License(vendor_public_key="vendor.pub"),
        base_dir=tmp_path,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_valid_license_renders_module_and_copy(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor)
    part = license_part(make_spec(tmp_path), tmp_path / "bundle")
    assert part.warnings == [
        "license: verified with ed25519:rendertest, not the Chat500MG vendor key"
    ]
    assert part.files["license/acme.license"] == (tmp_path / "acme.license").read_bytes()
    [entry] = part.homeserver["modules"]
    assert entry["module"] == MODULE
    config = entry["config"]
    assert config["license_path"] == str((tmp_path / "bundle/license/acme.license").resolve())
    assert config["server_name"] == "chat.acme.test"
    assert config["vendor_public_key"] == public_key_of(vendor).encode()
    assert part.homeserver["server_notices"]["system_mxid_localpart"] == "notices"
    # The module's own parse_config accepts what render produced, once the file is in place.
    from synapse_modules.licensing.module import LicenseModule

    bundle_file = tmp_path / "bundle/license/acme.license"
    bundle_file.parent.mkdir(parents=True)
    bundle_file.write_bytes(part.files["license/acme.license"])  # type: ignore[arg-type]
    assert LicenseModule.parse_config(config).license.seats == 50


def test_missing_license(tmp_path: Path, vendor: SigningKey) -> None:
    with pytest.raises(Chat500Error, match=r"^license: .*acme.license: license file not found$"):
        license_part(make_spec(tmp_path), tmp_path / "bundle")


def test_forged_license(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor)
    path = tmp_path / "acme.license"
    path.write_text(path.read_text().replace('"seats": 50', '"seats": 5000'))
    with pytest.raises(Chat500Error, match="signature does not match"):
        license_part(make_spec(tmp_path), tmp_path / "bundle")


def test_license_of_another_vendor_key(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, new_signing_key("intruder"))
    with pytest.raises(Chat500Error, match="signed by ed25519:intruder, not by the trusted"):
        license_part(make_spec(tmp_path), tmp_path / "bundle")


def test_default_key_is_the_shipped_vendor_key(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor)
    spec = make_spec(tmp_path, license=License())
    with pytest.raises(Chat500Error, match="not by the trusted vendor key ed25519:vendor2026"):
        license_part(spec, tmp_path / "bundle")


def test_foreign_server_name(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor, server_name="chat.other.test")
    with pytest.raises(Chat500Error, match="for server 'chat.other.test', not 'chat.acme.test'"):
        license_part(make_spec(tmp_path), tmp_path / "bundle")


@pytest.mark.parametrize(
    "changes,feature",
    [
        ({"minors": Minors(enabled=True)}, "minors"),
        ({"storage": Storage(backend="s3", s3_bucket="b")}, "s3_storage"),
        ({"scale": Scale(workers=2)}, "workers"),
        ({"branding": Branding(brand="AcmeChat")}, "white_label"),
    ],
)
def test_missing_feature(
    tmp_path: Path, vendor: SigningKey, changes: dict[str, object], feature: str
) -> None:
    write_license(tmp_path, vendor, features=())
    with pytest.raises(Chat500Error, match=f"does not include the feature.*: {feature}$"):
        license_part(make_spec(tmp_path, **changes), tmp_path / "bundle")
    license_part(make_spec(tmp_path), tmp_path / "bundle")  # nothing turned on: fine


def test_expiring_license_warns(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor, days=10)
    part = license_part(make_spec(tmp_path), tmp_path / "bundle")
    assert any("expires on" in w and "in 10 days" in w for w in part.warnings), part.warnings


def test_expired_license_warns_but_renders(tmp_path: Path, vendor: SigningKey) -> None:
    write_license(tmp_path, vendor, days=-30, grace_days=7)
    part = license_part(make_spec(tmp_path), tmp_path / "bundle")
    assert any("no new accounts or rooms" in w for w in part.warnings), part.warnings


def test_evaluation_license_says_so(tmp_path: Path) -> None:
    files = write_evaluation_license(tmp_path, "acme", "Acme", "chat.acme.test")
    spec = make_spec(tmp_path, license=License(vendor_public_key=files.public_key_path.name))
    part = license_part(spec, tmp_path / "bundle")
    assert any("EVALUATION license (10 seats" in w for w in part.warnings), part.warnings
