"""Which ``m.room.retention`` policies the org allows, decided without Synapse.

Lifetimes are milliseconds, as in the event content. A policy with no ``max_lifetime`` means
"keep forever", which no bounded org allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bounds:
    default_lifetime: int
    min_lifetime: int
    max_lifetime: int
    allow_shorten: bool = True
    allow_lengthen: bool = True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def retention_refusal(content: Mapping[str, Any], bounds: Bounds) -> str | None:
    """None when a room may adopt this policy, else the reason (for logs and tests)."""
    lifetime = content.get("max_lifetime")
    if lifetime is None:
        return "max_lifetime missing: messages would be kept forever"
    if not _is_int(lifetime):
        return "max_lifetime must be an integer of milliseconds"
    if lifetime < bounds.min_lifetime:
        return "max_lifetime below the org's minimum"
    if lifetime > bounds.max_lifetime:
        return "max_lifetime above the org's maximum"
    if lifetime < bounds.default_lifetime and not bounds.allow_shorten:
        return "rooms may not shorten retention"
    if lifetime > bounds.default_lifetime and not bounds.allow_lengthen:
        return "rooms may not lengthen retention"
    floor = content.get("min_lifetime")
    if floor is not None and (not _is_int(floor) or floor < 0 or floor > lifetime):
        return "min_lifetime must be an integer between 0 and max_lifetime"
    return None


def default_content(bounds: Bounds) -> dict[str, int]:
    return {"max_lifetime": bounds.default_lifetime}


def has_retention_state(initial_state: Any) -> bool:
    return any(
        isinstance(ev, Mapping)
        and ev.get("type") == "m.room.retention"
        and ev.get("state_key", "") == ""
        for ev in initial_state or ()
    )


_UNITS = (
    ("year", 365 * 86400000),
    ("day", 86400000),
    ("hour", 3600000),
    ("minute", 60000),
    ("second", 1000),
)


def human_duration(ms: int) -> str:
    """``94608000000`` → ``3 years``: for refusal messages people read."""
    for name, size in _UNITS:
        if ms >= size and ms % size == 0:
            count = ms // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{ms} ms"
