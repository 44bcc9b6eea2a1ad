"""The Synapse module that holds a homeserver to its license.

- Start-up: the license is verified in ``parse_config``; forged, foreign (another server_name),
  unreadable or lacking a feature the deployment uses → one-line ``ConfigError``, no start.
- A timer re-reads the file, so a renewed license takes effect without a restart (a bad
  replacement is refused, logged and reported by the admin API; the last good one stays).
- Growth, not data: past the grace period (or before valid_from) new accounts and new rooms
  are refused; seats cap active accounts on every creation path and on reactivation. Existing
  users keep reading, sending and exporting; nothing is deleted or hidden.
- Server admins get server notices at 30, 7 and 1 days before expiry, when grace starts and
  when it ends.

Which Synapse hooks refuse which path, and why those:
- New accounts (client /register, SSO, admin API v2 PUT, shared-secret /_synapse/admin/v1/
  register, ModuleApi.register_user) all go through ``RegistrationHandler.register_user``,
  whose first module call is ``check_registration_for_spam``. Returning DENY there becomes a
  misleading 429, so the callback raises ``ResourceLimitError`` instead (403
  ``M_RESOURCE_LIMIT_EXCEEDED``), which Synapse lets through unchanged. Application-service
  registration does not call it, which is what keeps appservice users outside the seats.
- Reactivation (admin API ``deactivated: false``) has no module hook before the database
  write (``on_user_deactivation_status_changed`` runs after it, once the account is already
  un-erased and active), so the module guards the handler's ``activate_account`` method.
- Racing creations: a creation that passes holds its seat until its account exists
  (``on_user_registration``), so two requests for the last seat cannot both get it
  (``reservations``).
- Rooms: ``on_create_room`` (third-party rules) is called for admins too, unlike the
  ``user_may_create_room`` spam check, which also covers room upgrades.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synapse.api.errors import Codes, ResourceLimitError, SynapseError
from synapse.config._base import ConfigError
from synapse.http.site import SynapseRequest
from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.spam_checker_api import RegistrationBehaviour
from synapse.types import Requester, UserID

from synapse_modules.admin_api import AdminResource, register
from synapse_modules.licensing import rules
from synapse_modules.licensing.document import (
    License,
    LicenseError,
    PublicKey,
    format_time,
    load_license,
    parse_public_key,
    read_license,
    vendor_public_key,
)
from synapse_modules.licensing.reservations import SeatReservations
from synapse_modules.licensing.seats import (
    count_active_accounts,
    create_notice_table,
    list_admins,
    record_notice,
    sent_notices,
)

logger = logging.getLogger(__name__)

_CONFIG_KEYS = {
    "license_path",
    "vendor_public_key",
    "server_name",
    "required_features",
    "check_interval",
}
DEFAULT_CHECK_INTERVAL_S = 5  # a stat and a read of a small file; verification only on change
LIMIT_SEATS = "chat500_license_seats"
LIMIT_EXPIRED = "chat500_license_expired"


@dataclass(frozen=True)
class LicenseModuleConfig:
    license_path: Path
    public_key: PublicKey
    server_name: str
    required_features: frozenset[str]
    check_interval_s: float
    license: License  # verified while the config was parsed


def verify_for_deployment(
    path: Path,
    public_key: PublicKey,
    server_name: str,
    required: frozenset[str],
    content: bytes | None = None,
) -> License:
    """The license at ``path`` (or its ``content``, already read) if it may run this
    deployment; else ``LicenseError`` (one line)."""
    lic = (
        read_license(path, public_key)
        if content is None
        else load_license(content, public_key, str(path))
    )
    if lic.server_name != server_name:
        raise LicenseError(
            f"{path}: the license is for server {lic.server_name!r}, not {server_name!r}"
        )
    missing = rules.missing_features(lic, required)
    if missing:
        raise LicenseError(
            f"{path}: the license does not include the feature(s) this deployment uses: "
            f"{', '.join(missing)}"
        )
    return lic


class LicenseModule:
    def __init__(self, config: LicenseModuleConfig, api: ModuleApi) -> None:
        if api.server_name != config.server_name:
            raise ConfigError(
                f"license module: server_name {config.server_name!r} is not this homeserver's "
                f"({api.server_name!r})"
            )
        self._config = config
        self._api = api
        self._hs = api._hs  # server notices and reactivation have no public module API
        self._license = config.license
        self._license_bytes = _read_bytes(config.license_path)
        self._reload_error: str | None = None
        self._checked_at = datetime.now(UTC)
        self._table_ready = False
        self._reservations = SeatReservations()
        self._notices_mxid: str | None = self._hs.config.servernotices.server_notices_mxid
        self._admin_contact: str | None = self._hs.config.server.admin_contact

        api.register_spam_checker_callbacks(
            check_registration_for_spam=self.check_registration_for_spam,
            user_may_create_room=self.user_may_create_room,
        )
        api.register_third_party_rules_callbacks(on_create_room=self.on_create_room)
        api.register_account_validity_callbacks(on_user_registration=self.on_user_registration)
        self._guard_reactivation()

        resource = AdminResource(api)
        resource.on("GET", self._get_status)
        register(api, "license", resource)

        api.looping_background_call(
            self._check_file,
            config.check_interval_s * 1000,
            desc="chat500_license_reload",
            run_on_all_instances=True,
        )
        if api.should_run_background_tasks():
            api.delayed_background_call(
                1000, self._startup_notices, desc="chat500_license_notices_startup"
            )
        logger.info("Chat500MG %s", self._describe())

    @staticmethod
    def parse_config(config: dict[str, Any]) -> LicenseModuleConfig:
        if not isinstance(config, dict):
            raise ConfigError("license module config must be a mapping")
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"license module: unknown config key {unknown[0]}")
        path = config.get("license_path")
        if not isinstance(path, str) or not path:
            raise ConfigError("license module: license_path must be the license file's path")
        server_name = config.get("server_name")
        if not isinstance(server_name, str) or not server_name:
            raise ConfigError("license module: server_name must be this homeserver's name")
        key_text = config.get("vendor_public_key") or ""
        if not isinstance(key_text, str):
            raise ConfigError("license module: vendor_public_key must be 'ed25519:<id> <key>'")
        features = config.get("required_features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ConfigError("license module: required_features must be a list of strings")
        interval = config.get("check_interval", DEFAULT_CHECK_INTERVAL_S)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ConfigError("license module: check_interval must be a positive number of seconds")
        try:
            public_key = (
                parse_public_key(key_text, "license module: vendor_public_key")
                if key_text
                else vendor_public_key()
            )
            lic = verify_for_deployment(
                Path(path), public_key, server_name, frozenset(features)
            )
        except LicenseError as exc:
            raise ConfigError(f"license refused: {exc}") from None
        return LicenseModuleConfig(
            license_path=Path(path),
            public_key=public_key,
            server_name=server_name,
            required_features=frozenset(features),
            check_interval_s=float(interval),
            license=lic,
        )

    # --- state ------------------------------------------------------------------------------

    def _status(self) -> rules.Status:
        return rules.status_at(self._license, datetime.now(UTC))

    def _describe(self) -> str:
        lic = self._license
        text = (
            f"{rules.describe(lic, self._status())}; {lic.seats} seats; "
            f"features: {', '.join(sorted(lic.features)) or 'none'}"
        )
        if lic.evaluation:
            text += "; THIS DEPLOYMENT RUNS ON AN EVALUATION LICENSE"
        return text

    async def _check_file(self) -> None:
        """Pick up a replaced license file; refuse (and report) one that does not verify."""
        self._checked_at = datetime.now(UTC)
        current = _read_bytes(self._config.license_path)
        if current == self._license_bytes:
            self._reload_error = None  # e.g. a bad replacement was put back
            if self._api.should_run_background_tasks():
                await self._send_due_notice()
            return
        try:
            lic = verify_for_deployment(
                self._config.license_path,
                self._config.public_key,
                self._config.server_name,
                self._config.required_features,
                content=current,
            )
        except LicenseError as exc:
            if self._reload_error != str(exc):
                logger.error("New license file refused, keeping %s: %s",
                             self._license.license_id, exc)
            self._reload_error = str(exc)
            return
        self._license, self._license_bytes, self._reload_error = lic, current, None
        logger.info("License file reloaded: %s", self._describe())
        if self._api.should_run_background_tasks():
            await self._send_due_notice()

    # --- growth -----------------------------------------------------------------------------

    async def _refuse_new_account(self) -> None:
        """Refuse one more account, or return with its seat free; the caller holds it before
        its next await, so no other creation can take the same seat."""
        status = self._status()
        reason = rules.growth_refusal(self._license, status)
        if reason is not None:
            raise ResourceLimitError(
                403, reason, admin_contact=self._admin_contact, limit_type=LIMIT_EXPIRED
            )
        active = await count_active_accounts(self._api, self._notices_mxid)
        reason = rules.seat_refusal(active + self._reservations.held(), self._license.seats)
        if reason is not None:
            raise ResourceLimitError(
                403, reason, admin_contact=self._admin_contact, limit_type=LIMIT_SEATS
            )

    async def check_registration_for_spam(
        self,
        email_threepid: dict | None,
        username: str | None,
        request_info: Any,
        auth_provider_id: str | None = None,
    ) -> RegistrationBehaviour:
        if username and await self._api.check_user_exists(
            UserID(username, self._api.server_name).to_string()
        ):
            return RegistrationBehaviour.ALLOW  # Synapse refuses a taken name; no seat to hold
        await self._refuse_new_account()
        self._reservations.hold(username)
        return RegistrationBehaviour.ALLOW

    async def on_user_registration(self, user_id: str) -> None:
        self._reservations.account_created(UserID.from_string(user_id).localpart)

    def _guard_reactivation(self) -> None:
        handler = self._hs.get_deactivate_account_handler()
        activate = getattr(handler, "activate_account", None)
        if activate is None:
            raise ConfigError(
                "license module: this Synapse has no DeactivateAccountHandler.activate_account "
                "to guard; reactivation could bypass the seats"
            )

        async def activate_account(user_id: str) -> None:
            await self._refuse_new_account()
            key = f"\0reactivate {user_id}"  # never a localpart
            self._reservations.hold(key)
            try:
                await activate(user_id)
            finally:
                self._reservations.release(key)

        handler.activate_account = activate_account  # type: ignore[method-assign]

    def _room_refusal(self, user_id: str) -> str | None:
        if self._notices_mxid is not None and user_id == self._notices_mxid:
            return None  # the notices room is how admins hear about the expiry
        return rules.growth_refusal(self._license, self._status())

    async def on_create_room(
        self, requester: Requester, config: dict, is_requester_admin: bool
    ) -> None:
        reason = self._room_refusal(requester.user.to_string())
        if reason is not None:
            raise ResourceLimitError(
                403, reason, admin_contact=self._admin_contact, limit_type=LIMIT_EXPIRED
            )

    async def user_may_create_room(self, user_id: str, room_config: Any = None) -> Any:
        if self._room_refusal(user_id) is not None:
            return (Codes.RESOURCE_LIMIT_EXCEEDED, {})
        return NOT_SPAM

    # --- notices ----------------------------------------------------------------------------

    async def _startup_notices(self) -> None:
        await self._send_due_notice()
        if not self._hs.get_server_notices_manager().is_enabled():
            logger.warning("server_notices is not configured: admins get no license notices")

    async def _send_due_notice(self) -> None:
        """Each active admin gets the latest due notice once, including admins made later."""
        manager = self._hs.get_server_notices_manager()
        if not manager.is_enabled():
            return
        lic = self._license
        now = datetime.now(UTC)
        if rules.notice_due(lic, now, frozenset()) is None:
            return  # nothing due for anyone: skip the database
        if not self._table_ready:
            await create_notice_table(self._api)
            self._table_ready = True
        sent = await sent_notices(self._api, lic.license_id)
        for admin in await list_admins(self._api, self._notices_mxid):
            notice = rules.notice_due(lic, now, sent.get(admin, set()))
            if notice is None:
                continue
            # Recorded first: a send that fails is logged, never retried into a flood.
            await record_notice(self._api, lic.license_id, notice.key, admin)
            try:
                await manager.send_notice(admin, {"msgtype": "m.text", "body": notice.body})
            except Exception:
                logger.exception("Could not send license notice %s to %s", notice.key, admin)
                continue
            logger.info("License notice %s for %s sent to %s", notice.key, lic.license_id, admin)

    # --- admin API --------------------------------------------------------------------------

    async def _get_status(self, request: SynapseRequest, subpath: str) -> tuple[int, dict]:
        if subpath:
            raise SynapseError(404, "Unknown license endpoint", Codes.UNRECOGNIZED)
        lic = self._license
        status = self._status()
        return 200, {
            "license_id": lic.license_id,
            "org_slug": lic.org_slug,
            "org_display_name": lic.org_display_name,
            "server_name": lic.server_name,
            "seats": lic.seats,
            "seats_used": await count_active_accounts(self._api, self._notices_mxid),
            "state": status.state.value,
            "allows_growth": status.allows_growth,
            "days_left": status.days_left,
            "issued_at": format_time(lic.issued_at),
            "valid_from": format_time(lic.valid_from),
            "expires_at": format_time(lic.expires_at),
            "grace_days": lic.grace_days,
            "grace_ends_at": format_time(status.grace_ends_at),
            "features": sorted(lic.features),
            "evaluation": lic.evaluation,
            "trusted_key": self._config.public_key.key_id,
            "summary": rules.describe(lic, status),
            "reload_error": self._reload_error,
            "checked_at": format_time(self._checked_at),
        }


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
