"""The module's config is checked once, at start-up, with one line naming the key or reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from synapse.config._base import ConfigError

from synapse_modules.licensing.document import new_signing_key, public_key_of
from synapse_modules.licensing.evaluation import issue_license
from synapse_modules.licensing.module import LicenseModule

KEY = new_signing_key("moduletest")


def config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    path = tmp_path / "org.license"
    if not path.exists():
        _, text = issue_license(
            KEY, org_slug="org", org_display_name="Org", server_name="chat.test", seats=5,
            expires_at=datetime.now(UTC) + timedelta(days=90), features=("minors",),
        )
        path.write_text(text)
    base: dict[str, Any] = {
        "license_path": str(path),
        "server_name": "chat.test",
        "vendor_public_key": public_key_of(KEY).encode(),
        "required_features": ["minors"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_config(tmp_path: Path) -> None:
    parsed = LicenseModule.parse_config(config(tmp_path, check_interval=2))
    assert parsed.license.seats == 5 and parsed.check_interval_s == 2.0
    assert parsed.required_features == {"minors"}


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"licence_path": "x"}, "unknown config key licence_path"),
        ({"license_path": None}, "license_path must be"),
        ({"server_name": ""}, "server_name must be"),
        ({"check_interval": 0}, "check_interval must be a positive number"),
        ({"check_interval": True}, "check_interval must be a positive number"),
        ({"required_features": "minors"}, "required_features must be a list"),
        ({"vendor_public_key": "nonsense"}, "vendor_public_key: not a public key"),
        ({"server_name": "chat.other.test"}, "is for server 'chat.test', not 'chat.other.test'"),
        ({"required_features": ["minors", "workers"]}, "feature(s) this deployment uses: workers"),
        ({"vendor_public_key": None}, "not by the trusted vendor key ed25519:vendor2026"),
        (
            {"vendor_public_key": public_key_of(new_signing_key("moduletest")).encode()},
            "the signature does not match",
        ),
    ],
)
def test_refusals_are_one_line(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        LicenseModule.parse_config(config(tmp_path, **changes))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
