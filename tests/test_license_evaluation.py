"""The evaluation license ``chat500 init`` writes: usable at once, honest, never clobbering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from synapse_modules.licensing.document import (
    ALL_FEATURES,
    LicenseError,
    new_signing_key,
    read_license,
    read_public_key,
)
from synapse_modules.licensing.evaluation import issue_license, write_evaluation_license


def test_writes_a_30_day_10_seat_evaluation(tmp_path: Path) -> None:
    files = write_evaluation_license(tmp_path / "spec", "acme", "Acme Corp", "chat.acme.test")
    assert files.license_path == tmp_path / "spec" / "acme.license"
    assert files.private_key_path.stat().st_mode & 0o777 == 0o600
    lic = read_license(files.license_path, read_public_key(files.public_key_path))
    assert lic.evaluation and lic.seats == 10 and lic.features == frozenset(ALL_FEATURES)
    assert lic.server_name == "chat.acme.test" and lic.org_display_name == "Acme Corp"
    term = lic.expires_at - lic.valid_from
    assert term == timedelta(days=30)
    assert abs(datetime.now(UTC) - lic.valid_from) < timedelta(minutes=5)


def test_key_created_once_and_evaluation_not_restarted(tmp_path: Path) -> None:
    first = write_evaluation_license(tmp_path, "acme", "Acme", "chat.acme.test")
    key_text = first.private_key_path.read_text()
    license_text = first.license_path.read_text()
    again = write_evaluation_license(tmp_path, "acme", "Acme", "chat.acme.test")
    assert again == first
    assert first.private_key_path.read_text() == key_text
    assert first.license_path.read_text() == license_text
    # another server name: a new evaluation license, same key
    other = write_evaluation_license(tmp_path, "acme", "Acme", "chat2.acme.test")
    assert other.private_key_path.read_text() == key_text
    lic = read_license(other.license_path, read_public_key(other.public_key_path))
    assert lic.server_name == "chat2.acme.test"


def test_never_overwrites_a_real_license(tmp_path: Path) -> None:
    _, text = issue_license(
        new_signing_key("vendor"),
        org_slug="acme",
        org_display_name="Acme",
        server_name="chat.acme.test",
        seats=500,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    (tmp_path / "acme.license").write_text(text)
    with pytest.raises(LicenseError, match="not overwriting it"):
        write_evaluation_license(tmp_path, "acme", "Acme", "chat.acme.test")
    assert (tmp_path / "acme.license").read_text() == text


def test_bad_slug_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LicenseError, match="org slug 'Not Valid'"):
        write_evaluation_license(tmp_path, "Not Valid", "X", "chat.x.test")
