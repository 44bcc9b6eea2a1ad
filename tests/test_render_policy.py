"""The policy slice of homeserver.yaml follows the spec (the renderer validates it with Synapse)."""

from __future__ import annotations

import re

from provisioner.render_policy import policy_part
from provisioner.spec import DAY_MS, Duration, Minors, Org, Registration, Retention, Server, Spec


def spec(**sections: object) -> Spec:
    return Spec(org=Org("acme", "Acme"), server=Server("chat.acme.test"), **sections)  # type: ignore[arg-type]


def modules(part_spec: Spec) -> dict[str, dict]:
    return {
        m["module"].rsplit(".", 1)[1]: m["config"]
        for m in policy_part(part_spec).homeserver["modules"]
    }


def test_admin_only_by_default_with_guests_off() -> None:
    keys = policy_part(spec()).homeserver
    assert keys["enable_registration"] is False
    assert keys["allow_guest_access"] is False
    assert keys["registration_requires_token"] is False
    assert "registrations_require_3pid" not in keys
    assert set(modules(spec())) == {"RegistrationPolicy", "RetentionPolicy"}


def test_token_and_email_domain_modes() -> None:
    token = policy_part(spec(registration=Registration(mode="token"))).homeserver
    assert token["enable_registration"] and token["registration_requires_token"]
    email = policy_part(
        spec(
            registration=Registration(
                mode="email_domain", allowed_email_domains=("school.example",)
            )
        )
    ).homeserver
    assert email["registrations_require_3pid"] == ["email"]
    (rule,) = email["allowed_local_3pids"]
    assert rule["medium"] == "email" and re.match(rule["pattern"], "kid@school.example")
    assert not re.match(rule["pattern"], "kid@evil.example")
    config = modules(
        spec(
            registration=Registration(
                mode="email_domain", allowed_email_domains=("school.example",)
            )
        )
    )["RegistrationPolicy"]
    assert config["mode"] == "email_domain"
    assert config["allowed_email_domains"] == ["school.example"]


def test_minors_module_only_when_enabled() -> None:
    on = modules(spec(minors=Minors(enabled=True, consent_required_message="ask")))
    assert on["MinorsPolicy"] == {
        "require_guardian_consent": True,
        "consent_required_message": "ask",
    }


def test_retention_block_matches_the_module_bounds() -> None:
    ret = Retention(
        default_lifetime=Duration(30 * DAY_MS),
        min_lifetime=Duration(DAY_MS),
        max_lifetime=Duration(90 * DAY_MS),
        purge_interval=Duration(3600000),
        allow_lengthen=False,
    )
    keys = policy_part(spec(retention=ret)).homeserver
    assert keys["retention"] == {
        "enabled": True,
        "default_policy": {"max_lifetime": 30 * DAY_MS},
        "allowed_lifetime_min": DAY_MS,
        "allowed_lifetime_max": 90 * DAY_MS,
        "purge_jobs": [{"interval": 3600000}],
    }
    config = modules(spec(retention=ret))["RetentionPolicy"]
    assert (config["min_lifetime"], config["max_lifetime"]) == (DAY_MS, 90 * DAY_MS)
    assert config["allow_lengthen"] is False
    off = policy_part(spec(retention=Retention(enabled=False))).homeserver
    assert off["retention"] == {"enabled": False}
    assert "RetentionPolicy" not in modules(spec(retention=Retention(enabled=False)))
