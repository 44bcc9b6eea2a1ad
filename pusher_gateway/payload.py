"""The FCM ``data`` payload for one device (pure).

Push carries only what a phone needs to fetch the message itself (privacy policy 6c): ids and
counts. The gateway never invents text; it forwards fields the homeserver chose to send (with
``include_content: false`` no message text ever arrives) and, for ``event_id_only`` pushers,
only ``event_id``, ``room_id`` and the counts. FCM takes string values only and at most 4096
bytes of keys plus values, so the largest free-text fields shrink first, on UTF-8 boundaries;
the ids the app needs are never cut.
"""

from __future__ import annotations

import json
from math import ceil
from typing import Any

from pusher_gateway.validation import Device, Notification

DATA_LIMIT = 4096
# Never shrunk: without them the app cannot fetch the event.
FIXED_KEYS = frozenset({"event_id", "room_id", "unread", "missed_calls", "prio"})


def build_data(n: Notification, device: Device, limit: int = DATA_LIMIT,
               event_id_only: bool = False) -> dict[str, str]:
    """``event_id_only``: the deployment's policy, applied whatever format the pusher asked."""
    data: dict[str, str] = {}
    if n.event_id:
        data["event_id"] = n.event_id
    if n.room_id:
        data["room_id"] = n.room_id
    if n.unread is not None:
        data["unread"] = str(n.unread)
    if n.missed_calls is not None:
        data["missed_calls"] = str(n.missed_calls)
    if event_id_only or device.event_id_only:
        return shrink(data, limit)
    data["prio"] = n.prio
    for key in ("type", "sender", "sender_display_name", "room_name", "room_alias",
                "membership"):
        value = getattr(n, key)
        if value:
            data[key] = value
    if n.user_is_target is not None:
        data["user_is_target"] = "true" if n.user_is_target else "false"
    if n.content:
        for key, value in n.content.items():
            data[f"content_{key}"] = _as_string(value)
    return shrink(data, limit)


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = ""
    elif isinstance(value, int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Lone surrogates (legal in JSON escapes, not in UTF-8) would make FCM refuse the message.
    return text.encode("utf-8", "replace").decode("utf-8")


def data_size(data: dict[str, str]) -> int:
    """FCM's measure: the UTF-8 bytes of every key and value."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits ``max_bytes`` without splitting a character."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[:max(0, max_bytes)].decode("utf-8", "ignore")


def shrink(data: dict[str, str], limit: int = DATA_LIMIT) -> dict[str, str]:
    """``data`` cut to ``limit`` bytes: the largest shrinkable value first, down to the size of
    the next largest, so one long room name does not wipe out the sender too."""
    excess = data_size(data) - limit
    if excess <= 0:
        return data
    out = dict(data)
    while excess > 0:
        sizes = sorted(((len(v.encode()), k) for k, v in out.items() if k not in FIXED_KEYS),
                       reverse=True)
        if not sizes:
            break  # only fixed fields left; validation bounds them far below the limit
        top, key = sizes[0]
        second = sizes[1][0] if len(sizes) > 1 else 0
        if top > second:
            target = max(second, top - excess)
        else:  # a tie: share the cut between the tied fields
            tied = sum(1 for s, _ in sizes if s == top)
            target = max(0, top - ceil(excess / tied))
        if target <= 0:
            del out[key]
            excess -= top + len(key.encode())
            continue
        cut = truncate_utf8(out[key], target)
        excess -= top - len(cut.encode())
        out[key] = cut
    return out
