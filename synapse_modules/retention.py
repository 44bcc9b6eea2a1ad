"""Enforced retention: every room carries the org's policy and none may step outside it.

Synapse's own ``retention:`` config (rendered alongside) purges expired events from the
database; it clamps out-of-bounds room policies for purging, but clients are shown the room's
raw value, so out-of-bounds ``m.room.retention`` events are refused outright here, for
everyone, server admins included (``check_event_allowed`` has no admin bypass).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synapse.api.errors import Codes, SynapseError
from synapse.events import EventBase
from synapse.module_api import ModuleApi
from synapse.types import Requester, StateMap

from synapse_modules import policy_config as cp
from synapse_modules.retention_rules import (
    Bounds,
    default_content,
    has_retention_state,
    human_duration,
    retention_refusal,
)

logger = logging.getLogger(__name__)
NAME = "RetentionPolicy"
KEYS = {
    "default_lifetime",
    "min_lifetime",
    "max_lifetime",
    "allow_shorten",
    "allow_lengthen",
    "refused_message",
}


@dataclass(frozen=True)
class RetentionConfig:
    bounds: Bounds
    refused_message: str


class RetentionPolicy:
    def __init__(self, config: RetentionConfig, api: ModuleApi) -> None:
        self._config = config
        api.register_third_party_rules_callbacks(
            on_create_room=self.on_create_room, check_event_allowed=self.check_event_allowed
        )

    @staticmethod
    def parse_config(config: Any) -> RetentionConfig:
        raw = cp.require_mapping(config, NAME)
        cp.reject_unknown(raw, KEYS, NAME)
        low = cp.get_int(raw, "min_lifetime", NAME, None, minimum=1)
        high = cp.get_int(raw, "max_lifetime", NAME, None, minimum=1)
        default = cp.get_int(raw, "default_lifetime", NAME, None, minimum=1)
        if high < low:
            raise cp.ConfigError(f"{NAME}: config key 'max_lifetime' is below 'min_lifetime'")
        if not low <= default <= high:
            raise cp.ConfigError(
                f"{NAME}: config key 'default_lifetime' is outside min_lifetime..max_lifetime"
            )
        bounds = Bounds(
            default_lifetime=default,
            min_lifetime=low,
            max_lifetime=high,
            allow_shorten=cp.get_bool(raw, "allow_shorten", NAME, True),
            allow_lengthen=cp.get_bool(raw, "allow_lengthen", NAME, True),
        )
        allowed_low = low if bounds.allow_shorten else default
        allowed_high = high if bounds.allow_lengthen else default
        message = (
            f"Messages in this room are kept for {human_duration(default)}; rooms cannot "
            "change that on this server."
            if allowed_low == allowed_high
            else f"Rooms on this server must keep messages between {human_duration(allowed_low)}"
            f" and {human_duration(allowed_high)}."
        )
        return RetentionConfig(bounds, cp.get_str(raw, "refused_message", NAME, message))

    def _refuse_if_out_of_bounds(self, content: Any) -> None:
        reason = retention_refusal(
            content if isinstance(content, Mapping) else {}, self._config.bounds
        )
        if reason:
            logger.info("Refused a retention policy: %s", reason)
            raise SynapseError(403, self._config.refused_message, Codes.FORBIDDEN)

    async def on_create_room(
        self, requester: Requester, request_content: dict, is_requester_admin: bool
    ) -> None:
        initial_state = request_content.get("initial_state")
        if not isinstance(initial_state, list):
            initial_state = []
        if has_retention_state(initial_state):
            for ev in initial_state:
                if isinstance(ev, Mapping) and ev.get("type") == "m.room.retention":
                    self._refuse_if_out_of_bounds(ev.get("content"))
            return
        initial_state.append(
            {
                "type": "m.room.retention",
                "state_key": "",
                "content": default_content(self._config.bounds),
            }
        )
        request_content["initial_state"] = initial_state

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict | None]:
        if event.type == "m.room.retention" and event.get_state_key() == "":
            self._refuse_if_out_of_bounds(event.content)
        return True, None
