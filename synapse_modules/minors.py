"""Guardian consent for minors, enforced inside Synapse where no client can route around it.

Lock-out without consent uses the account-validity ``is_user_expired`` callback, which Synapse
asks on every authenticated client request (existing sessions included, the moment consent is
revoked) and before pushing; the login refusal is ``check_login_for_spam``. Restrictions after
consent sit in ``check_event_allowed`` (applies to admins and to federation joins too) with
``user_may_*`` callbacks for clean early refusals.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from synapse.api.errors import Codes, SynapseError
from synapse.events import EventBase
from synapse.http.site import SynapseRequest
from synapse.module_api import NOT_SPAM, ModuleApi, UserProfile
from synapse.spam_checker_api import RegistrationBehaviour
from synapse.types import StateMap

from synapse_modules import policy_config as cp
from synapse_modules.admin_api import AdminResource, parse_json_body, register
from synapse_modules.minors_rules import (
    create_room_refusal,
    hidden_from,
    is_blocked,
    is_remote,
    join_rules_refusal,
    membership_refusal,
    validate_consent,
)
from synapse_modules.minors_store import MinorsStore
from synapse_modules.registration_rules import is_self_registration

logger = logging.getLogger(__name__)
NAME = "MinorsPolicy"
JsonDict = dict[str, Any]

# Synapse's client authentication; only there may the lock-out raise its own clear error.
_CLIENT_AUTH_FRAME = "_wrapped_get_user_by_req"


def _called_from_client_auth() -> bool:
    """Whether Synapse asks on behalf of a client request (vs. the pusher or account status).

    Raising a SynapseError is how the client gets the org's message instead of "User account
    has expired"; elsewhere (pushers) the callback must just answer True, since an exception
    there would abort work for other users. Must run before the callback's first await.
    """
    frame = sys._getframe(2)
    for _ in range(30):
        if frame is None:
            return False
        if frame.f_code.co_name == _CLIENT_AUTH_FRAME:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@dataclass(frozen=True)
class MinorsConfig:
    require_guardian_consent: bool
    consent_required_message: str
    restricted_message: str


class MinorsPolicy:
    def __init__(self, config: MinorsConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        self._store = MinorsStore(api)
        api.register_account_validity_callbacks(is_user_expired=self.is_user_expired)
        api.register_spam_checker_callbacks(
            check_login_for_spam=self.check_login_for_spam,
            check_registration_for_spam=self.check_registration_for_spam,
            user_may_join_room=self.user_may_join_room,
            user_may_create_room=self.user_may_create_room,
            user_may_publish_room=self.user_may_publish_room,
            federated_user_may_invite=self.federated_user_may_invite,
            check_username_for_spam=self.check_username_for_spam,
        )
        api.register_third_party_rules_callbacks(check_event_allowed=self.check_event_allowed)
        resource = AdminResource(api)
        resource.on("GET", self._get)
        resource.on("PUT", self._put)
        resource.on("POST", self._put)
        resource.on("DELETE", self._delete)
        register(api, "minors", resource)
        api.delayed_background_call(0, self._store.ensure_tables, desc="chat500_minors_tables")

    @staticmethod
    def parse_config(config: Any) -> MinorsConfig:
        raw = cp.require_mapping(config, NAME)
        cp.reject_unknown(
            raw,
            {"require_guardian_consent", "consent_required_message", "restricted_message"},
            NAME,
        )
        return MinorsConfig(
            require_guardian_consent=cp.get_bool(raw, "require_guardian_consent", NAME, True),
            consent_required_message=cp.get_str(
                raw,
                "consent_required_message",
                NAME,
                "This account is waiting for a parent or guardian's consent.",
            ),
            restricted_message=cp.get_str(
                raw,
                "restricted_message",
                NAME,
                "This is not available to accounts of minors on this server.",
            ),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _restricted(self) -> SynapseError:
        return SynapseError(403, self._config.restricted_message, Codes.FORBIDDEN)

    async def _is_minor(self, user_id: str) -> bool:
        if not self._api.is_mine(user_id):
            return False
        return (await self._store.get_status(user_id)).is_minor

    async def _blocked(self, user_id: str) -> bool:
        if not self._api.is_mine(user_id):
            return False
        status = await self._store.get_status(user_id)
        if not is_blocked(status, self._config.require_guardian_consent, is_admin=False):
            return False
        return not await self._api.is_user_admin(user_id)

    async def _room_members(self, room_id: str) -> dict[str, str] | None:
        """``user_id -> membership`` from current state; None when this server has no state."""
        state = await self._api.get_room_state(room_id, [("m.room.member", None)])
        if not state:
            return None
        return {key[1]: ev.membership for key, ev in state.items()}

    async def _minors_among(self, users: Collection[str]) -> list[str]:
        return [u for u in users if await self._is_minor(u)]

    # -- lock-out until consent --------------------------------------------------------------

    async def is_user_expired(self, user_id: str) -> bool | None:
        from_client = _called_from_client_auth()
        if not await self._blocked(user_id):
            return None  # not ours to decide: let other modules / Synapse answer
        if from_client:
            raise SynapseError(403, self._config.consent_required_message, Codes.FORBIDDEN)
        return True

    async def check_login_for_spam(
        self,
        user_id: str,
        device_id: str | None,
        initial_display_name: str | None,
        request_info: Collection[tuple[str | None, str]],
        auth_provider_id: str | None = None,
    ) -> Any:
        if await self._blocked(user_id):
            raise SynapseError(403, self._config.consent_required_message, Codes.FORBIDDEN)
        return NOT_SPAM

    async def check_registration_for_spam(
        self,
        email_threepid: dict | None,
        username: str | None,
        request_info: Collection[tuple[str, str]],
        auth_provider_id: str | None = None,
    ) -> RegistrationBehaviour:
        """Self-registration never yields a minor: a name flagged ahead of its account is
        refused, and every self-registered name is remembered so it cannot be flagged later.
        """
        if is_self_registration(request_info, auth_provider_id) and username:
            user_id = self._api.get_qualified_user_id(username.lower())
            if (await self._store.get_status(user_id)).is_minor:
                raise self._restricted()
            await self._store.note_self_registration(user_id, self._api.get_current_time_msec())
        return RegistrationBehaviour.ALLOW

    # -- restrictions with consent -----------------------------------------------------------

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Any:
        if not await self._is_minor(user_id):
            return NOT_SPAM
        members = await self._room_members(room_id)
        if members is None:  # a room this server is not in lives elsewhere
            raise self._restricted()
        refusal = membership_refusal(user_id, "join", True, members, [], self._api.server_name)
        if refusal:
            logger.info("Refused a minor's join: %s", refusal)
            raise self._restricted()
        return NOT_SPAM

    async def user_may_create_room(self, user_id: str, request_content: JsonDict) -> Any:
        if await self._is_minor(user_id) and create_room_refusal(request_content):
            raise self._restricted()
        return NOT_SPAM

    async def user_may_publish_room(self, user_id: str, room_id: str) -> Any:
        if await self._is_minor(user_id):
            raise self._restricted()
        return NOT_SPAM

    async def federated_user_may_invite(self, event: EventBase) -> Any:
        if event.membership == "invite" and await self._is_minor(event.state_key):
            raise self._restricted()
        return NOT_SPAM

    async def check_username_for_spam(self, user_profile: UserProfile, requester_id: str) -> bool:
        target = user_profile["user_id"]
        if not await self._is_minor(target) or requester_id == target:
            return False
        return hidden_from(
            True,
            requester_id,
            target,
            requester_is_admin=await self._api.is_user_admin(requester_id),
            share_a_room=await self._store.share_a_room(requester_id, target),
        )

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, JsonDict | None]:
        if event.type == "m.room.join_rules":
            if await self._is_minor(event.sender) and join_rules_refusal(event.content):
                raise self._restricted()
        elif event.type == "m.room.member" and event.state_key is not None:
            members = {
                key[1]: ev.membership
                for key, ev in state_events.items()
                if key[0] == "m.room.member"
            }
            target = event.state_key
            target_is_minor = await self._is_minor(target)
            minors = (
                await self._minors_among([u for u in members if self._api.is_mine(u)])
                if is_remote(target, self._api.server_name)
                else []
            )
            refusal = membership_refusal(
                target,
                event.membership,
                target_is_minor,
                members,
                minors,
                self._api.server_name,
            )
            if refusal:
                logger.info("Refused a membership event: %s", refusal)
                raise self._restricted()
        return True, None

    # -- admin API: /_synapse/client/chat500/v1/minors/<user_id>[/consent|/audit] -------------

    def _target(self, subpath: str) -> tuple[str, str]:
        user_id, _, rest = subpath.partition("/")
        if not user_id.startswith("@") or not self._api.is_mine(user_id):
            raise SynapseError(400, "Invalid field: user_id (a local user id)", Codes.INVALID_PARAM)
        return user_id, rest

    async def _describe(self, user_id: str) -> JsonDict:
        status = await self._store.get_status(user_id)
        return {
            "user_id": user_id,
            "minor": status.is_minor,
            "consent": await self._store.get_consent(user_id) if status.is_minor else None,
            "blocked": is_blocked(status, self._config.require_guardian_consent, False),
        }

    async def _get(self, request: SynapseRequest, subpath: str) -> tuple[int, JsonDict]:
        user_id, rest = self._target(subpath)
        if rest == "":
            return 200, await self._describe(user_id)
        if rest == "audit":
            return 200, {"user_id": user_id, "events": await self._store.get_audit(user_id)}
        raise SynapseError(404, "Unknown path", Codes.NOT_FOUND)

    async def _put(self, request: SynapseRequest, subpath: str) -> tuple[int, JsonDict]:
        user_id, rest = self._target(subpath)
        actor = request.chat500_admin_id  # type: ignore[attr-defined]
        now = self._api.get_current_time_msec()
        body = parse_json_body(request)
        if rest == "":
            # Flagging may precede the account: the CLI flags first so a new minor's
            # account never exists un-flagged.
            if await self._api.is_user_admin(user_id):
                raise SynapseError(400, "A server admin cannot be a minor", Codes.INVALID_PARAM)
            if await self._store.self_registered(user_id) and await self._api.check_user_exists(
                user_id
            ):
                raise SynapseError(
                    400,
                    f"{user_id} registered itself; a minor's account must be created by "
                    "the organization",
                    Codes.INVALID_PARAM,
                )
            created = await self._store.flag(user_id, actor, now)
            return (201 if created else 200), await self._describe(user_id)
        if rest == "consent":
            if not (await self._store.get_status(user_id)).is_minor:
                raise SynapseError(404, f"{user_id} is not marked as a minor", Codes.NOT_FOUND)
            record, bad_field = validate_consent(body)
            if record is None:
                raise SynapseError(400, f"Invalid field: {bad_field}", Codes.INVALID_PARAM)
            await self._store.record_consent(user_id, record, actor, now)
            return 200, await self._describe(user_id)
        raise SynapseError(404, "Unknown path", Codes.NOT_FOUND)

    async def _delete(self, request: SynapseRequest, subpath: str) -> tuple[int, JsonDict]:
        user_id, rest = self._target(subpath)
        actor = request.chat500_admin_id  # type: ignore[attr-defined]
        now = self._api.get_current_time_msec()
        if rest == "consent":
            if not (await self._store.get_status(user_id)).is_minor:
                raise SynapseError(404, f"{user_id} is not marked as a minor", Codes.NOT_FOUND)
            await self._store.revoke_consent(user_id, actor, now)
            return 200, await self._describe(user_id)
        if rest == "":
            await self._store.unflag(user_id, actor, now)
            return 200, await self._describe(user_id)
        raise SynapseError(404, "Unknown path", Codes.NOT_FOUND)
