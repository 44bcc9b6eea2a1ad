"""Module configs are checked once, at start-up: a mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from synapse.config._base import ConfigError

from provisioner.errors import Chat500Error
from synapse_modules.minors import MinorsPolicy
from synapse_modules.registration import RegistrationPolicy
from tests.harness.homeserver import homeserver_factory


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"mode": "open"}, "mode"),
        ({"reserved_names": "admin"}, "reserved_names"),
        ({"mode": "email_domain"}, "allowed_email_domains"),
        ({"refused_message": 3}, "refused_message"),
        ({"mdoe": "token"}, "mdoe"),
    ],
)
def test_registration_config_errors_name_the_key(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        RegistrationPolicy.parse_config(config)
    assert f"'{key}'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"require_guardian_consent": "yes"}, "require_guardian_consent"),
        ({"consent_required_message": None}, "consent_required_message"),
        ({"extra": 1}, "extra"),
    ],
)
def test_minors_config_errors_name_the_key(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        MinorsPolicy.parse_config(config)
    assert f"'{key}'" in str(err.value) and "\n" not in str(err.value)


def test_defaults_parse() -> None:
    assert RegistrationPolicy.parse_config(None).mode == "admin_only"
    assert MinorsPolicy.parse_config({}).require_guardian_consent is True


@pytest.mark.slow
def test_a_bad_module_config_stops_synapse_at_start_up(tmp_path: Path) -> None:
    bad = {
        "modules": [
            {
                "module": "synapse_modules.minors.MinorsPolicy",
                "config": {"require_guardian_consent": "maybe"},
            }
        ]
    }
    with homeserver_factory(tmp_path) as make, pytest.raises(Chat500Error) as err:
        make({"minors": {"enabled": True}}, bad)
    expected = "MinorsPolicy: config key 'require_guardian_consent' must be true or false"
    assert expected in str(err.value)
    log = (tmp_path / "hs1" / "bundle" / "data" / "synapse.stdout.log").read_text()
    assert "Traceback" not in log
    assert "Error in configuration at 'modules.<item 0>.config'" in log
