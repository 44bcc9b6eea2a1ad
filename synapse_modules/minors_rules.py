"""What a minor's account may do, decided without Synapse.

A minor without recorded guardian consent can do nothing. With consent a minor may chat inside
the org only: never in a room with users of another server, never in public rooms or the
room directory, and invisible to people who share no room with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RELATIONS: tuple[str, ...] = ("parent", "guardian", "other")
ACTIVE_MEMBERSHIPS = frozenset({"join", "invite", "knock"})


@dataclass(frozen=True)
class MinorStatus:
    is_minor: bool = False
    has_consent: bool = False


NOT_A_MINOR = MinorStatus()


def is_blocked(status: MinorStatus, require_consent: bool, is_admin: bool) -> bool:
    """A minor waiting for consent is locked out entirely; server admins never are."""
    return status.is_minor and require_consent and not status.has_consent and not is_admin


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def is_remote(user_id: str, local_server: str) -> bool:
    return server_of(user_id) != local_server


def active_members(members: Mapping[str, str]) -> list[str]:
    """Users joined, invited or knocking, from ``user_id -> membership``."""
    return [user for user, membership in members.items() if membership in ACTIVE_MEMBERSHIPS]


def membership_refusal(
    target: str,
    membership: str,
    target_is_minor: bool,
    members: Mapping[str, str],
    minor_members: Iterable[str],
    local_server: str,
) -> str | None:
    """Why a membership change would put a minor in a room with another server's users."""
    if membership not in ACTIVE_MEMBERSHIPS:
        return None
    others = [u for u in active_members(members) if u != target]
    if target_is_minor and any(is_remote(u, local_server) for u in others):
        return "minor into a room with users of other servers"
    if is_remote(target, local_server) and any(m != target for m in minor_members):
        return "remote user into a room with a minor"
    return None


def create_room_refusal(request: Mapping[str, Any]) -> str | None:
    """Why a minor may not create this room: it would be public or listed in the directory."""
    if request.get("visibility") == "public":
        return "room directory"
    if request.get("preset") == "public_chat":
        return "public room"
    for event in request.get("initial_state") or ():
        if (
            isinstance(event, Mapping)
            and event.get("type") == "m.room.join_rules"
            and isinstance(event.get("content"), Mapping)
            and event["content"].get("join_rule") == "public"
        ):
            return "public room"
    return None


def join_rules_refusal(content: Mapping[str, Any]) -> str | None:
    return "public room" if content.get("join_rule") == "public" else None


def hidden_from(
    target_is_minor: bool, requester: str, target: str, requester_is_admin: bool, share_a_room: bool
) -> bool:
    """A minor is found in the user directory only by people who already share a room."""
    if not target_is_minor or requester == target or requester_is_admin:
        return False
    return not share_a_room


@dataclass(frozen=True)
class ConsentRecord:
    guardian: str
    relation: str
    contact: str
    evidence: str


def validate_consent(body: Mapping[str, Any]) -> tuple[ConsentRecord | None, str | None]:
    """A consent record from an admin's request, or the name of the first bad field."""
    values: dict[str, str] = {}
    for key in ("guardian", "relation", "contact", "evidence"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            return None, key
        values[key] = value.strip()
    if values["relation"] not in RELATIONS:
        return None, "relation"
    return ConsentRecord(**values), None
