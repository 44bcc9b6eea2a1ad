"""Restricted registration: Synapse refuses self-registration the org's spec does not allow.

``enable_registration`` / ``registration_requires_token`` / ``allowed_local_3pids`` (rendered by
``provisioner.render_policy``) are the first gate; this module is the second, for what Synapse
cannot express: reserved and look-alike names, and a domain check on the verified email at the
moment the account is created. It raises a 403 ``M_FORBIDDEN`` with the org's message itself,
because a DENY from ``check_registration_for_spam`` reaches the client as a 429.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import ModuleApi
from synapse.spam_checker_api import RegistrationBehaviour

from synapse_modules import policy_config as cp
from synapse_modules.registration_rules import (
    MODES,
    Mode,
    check_self_registration,
    domain_allowed,
    is_self_registration,
)

logger = logging.getLogger(__name__)
NAME = "RegistrationPolicy"


@dataclass(frozen=True)
class RegistrationConfig:
    mode: Mode
    reserved_names: tuple[str, ...]
    allowed_email_domains: tuple[str, ...]
    refused_message: str


class RegistrationPolicy:
    def __init__(self, config: RegistrationConfig, api: ModuleApi) -> None:
        self._config = config
        api.register_spam_checker_callbacks(
            check_registration_for_spam=self.check_registration_for_spam
        )
        api.register_password_auth_provider_callbacks(is_3pid_allowed=self.is_3pid_allowed)

    @staticmethod
    def parse_config(config: Any) -> RegistrationConfig:
        raw = cp.require_mapping(config, NAME)
        cp.reject_unknown(
            raw, {"mode", "reserved_names", "allowed_email_domains", "refused_message"}, NAME
        )
        mode = cp.get_choice(raw, "mode", NAME, "admin_only", MODES)
        domains = tuple(d.lower() for d in cp.get_str_list(raw, "allowed_email_domains", NAME))
        if mode == "email_domain" and not domains:
            raise cp.ConfigError(
                f"{NAME}: config key 'allowed_email_domains' must list at least one domain "
                "in email_domain mode"
            )
        return RegistrationConfig(
            mode=mode,  # type: ignore[arg-type]
            reserved_names=cp.get_str_list(raw, "reserved_names", NAME),
            allowed_email_domains=domains,
            refused_message=cp.get_str(
                raw,
                "refused_message",
                NAME,
                "Accounts on this server are created by your organization.",
            ),
        )

    async def check_registration_for_spam(
        self,
        email_threepid: dict | None,
        username: str | None,
        request_info: Collection[tuple[str, str]],
        auth_provider_id: str | None = None,
    ) -> RegistrationBehaviour:
        if not is_self_registration(request_info, auth_provider_id):
            return RegistrationBehaviour.ALLOW
        email = (email_threepid or {}).get("address") if email_threepid else None
        refusal = check_self_registration(
            self._config.mode,
            username,
            email if isinstance(email, str) else None,
            self._config.reserved_names,
            self._config.allowed_email_domains,
        )
        if refusal is not None:
            logger.info("Refused self-registration: %s", refusal.reason)
            raise SynapseError(403, self._config.refused_message, Codes.FORBIDDEN)
        return RegistrationBehaviour.ALLOW

    async def is_3pid_allowed(self, medium: str, address: str, registration: bool) -> bool:
        if not registration or medium != "email" or self._config.mode != "email_domain":
            return True
        return domain_allowed(address, self._config.allowed_email_domains)
