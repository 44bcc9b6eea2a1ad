"""The policy modules' slice of ``homeserver.yaml``: registration, minors, retention.

Synapse's own settings are the first gate (registration switches, 3PID allow-list, purge
jobs); our module entries carry the same spec values so both layers agree by construction.
"""

from __future__ import annotations

from typing import Any

from provisioner.render_parts import RenderPart, module_entry
from provisioner.spec import Spec
from synapse_modules.registration_rules import email_domain_pattern


def _registration(spec: Spec) -> dict[str, Any]:
    reg = spec.registration
    keys: dict[str, Any] = {
        "enable_registration": reg.mode != "admin_only",
        "allow_guest_access": False,
        "registration_requires_token": reg.mode == "token",
    }
    if reg.mode == "email_domain":
        keys["registrations_require_3pid"] = ["email"]
        keys["allowed_local_3pids"] = [
            {"medium": "email", "pattern": email_domain_pattern(reg.allowed_email_domains)}
        ]
    return keys


def _retention(spec: Spec) -> dict[str, Any]:
    ret = spec.retention
    if not ret.enabled:
        return {"retention": {"enabled": False}}
    return {
        "retention": {
            "enabled": True,
            "default_policy": {"max_lifetime": int(ret.default_lifetime)},
            "allowed_lifetime_min": int(ret.min_lifetime),
            "allowed_lifetime_max": int(ret.max_lifetime),
            "purge_jobs": [{"interval": int(ret.purge_interval)}],
        }
    }


def _modules(spec: Spec) -> list[dict[str, Any]]:
    reg = spec.registration
    modules = [
        module_entry(
            "synapse_modules.registration.RegistrationPolicy",
            {
                "mode": reg.mode,
                "reserved_names": list(reg.reserved_names),
                "allowed_email_domains": list(reg.allowed_email_domains),
                "refused_message": reg.refused_message,
            },
        )
    ]
    if spec.minors.enabled:
        modules.append(
            module_entry(
                "synapse_modules.minors.MinorsPolicy",
                {
                    "require_guardian_consent": spec.minors.require_guardian_consent,
                    "consent_required_message": spec.minors.consent_required_message,
                },
            )
        )
    if spec.retention.enabled:
        ret = spec.retention
        modules.append(
            module_entry(
                "synapse_modules.retention.RetentionPolicy",
                {
                    "default_lifetime": int(ret.default_lifetime),
                    "min_lifetime": int(ret.min_lifetime),
                    "max_lifetime": int(ret.max_lifetime),
                    "allow_shorten": ret.allow_shorten,
                    "allow_lengthen": ret.allow_lengthen,
                },
            )
        )
    return modules


def policy_part(spec: Spec) -> RenderPart:
    return RenderPart(
        homeserver={**_registration(spec), **_retention(spec), "modules": _modules(spec)}
    )
