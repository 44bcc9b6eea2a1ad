"""The Push Gateway API request body, validated into typed objects (pure).

Strict on the fields the gateway uses (types, lengths, ranges), lenient on fields it does not
(the spec lets homeservers add keys; Synapse sends ``id``, ``membership``, and ``null`` types in
badge updates). Every problem names the field so the homeserver's log says what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MAX_ID_BYTES = 255  # Matrix identifiers (event, room, user ids)
MAX_PUSHKEY_BYTES = 512  # Matrix spec: pushkey max length
MAX_APP_ID = 64
MAX_TEXT_BYTES = 16384  # display names, room names: the payload shrinker trims further


class InvalidNotification(ValueError):
    """The body is not a valid notification; ``str(self)`` names the field."""


@dataclass(frozen=True)
class Device:
    app_id: str
    pushkey: str
    pushkey_ts: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    tweaks: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id_only(self) -> bool:
        return self.data.get("format") == "event_id_only"


@dataclass(frozen=True)
class Notification:
    devices: tuple[Device, ...]
    event_id: str = ""
    room_id: str = ""
    type: str = ""
    sender: str = ""
    sender_display_name: str = ""
    room_name: str = ""
    room_alias: str = ""
    membership: str = ""
    user_is_target: bool | None = None
    prio: Literal["high", "low"] = "high"
    content: dict[str, Any] | None = None
    unread: int | None = None
    missed_calls: int | None = None


def _str(obj: dict[str, Any], key: str, where: str, max_bytes: int, required: bool = False,
         allow_empty: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidNotification(f"{where}{key}: required")
        return ""
    if not isinstance(value, str):
        raise InvalidNotification(f"{where}{key}: must be a string")
    if value.isascii():  # the usual case: one byte per character, nothing to encode
        n = len(value)
    else:
        try:
            n = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidNotification(f"{where}{key}: must be valid Unicode") from None
    if n > max_bytes or (not allow_empty and n == 0):
        lo = 0 if allow_empty else 1
        raise InvalidNotification(f"{where}{key}: must be {lo}..{max_bytes} bytes, got {n}")
    return value


def _count(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise InvalidNotification(f"{where}{key}: must be a non-negative integer")
    return value


def _obj(obj: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidNotification(f"{where}{key}: must be an object")
    return value


def _device(raw: object, i: int) -> Device:
    if not isinstance(raw, dict):
        raise InvalidNotification(f"notification.devices[{i}]: must be an object")
    try:
        return _device_fields(raw)
    except InvalidNotification as exc:  # the field path is only formatted for an error
        raise InvalidNotification(f"notification.devices[{i}].{exc}") from None


def _device_fields(raw: dict[str, Any]) -> Device:
    app_id = _str(raw, "app_id", "", MAX_APP_ID, required=True, allow_empty=False)
    pushkey = _str(raw, "pushkey", "", MAX_PUSHKEY_BYTES, required=True, allow_empty=False)
    ts = raw.get("pushkey_ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int) or ts < 0):
        raise InvalidNotification("pushkey_ts: must be a non-negative integer")
    data = _obj(raw, "data", "") or {}
    fmt = data.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise InvalidNotification("data.format: must be a string")
    tweaks = _obj(raw, "tweaks", "") or {}
    return Device(app_id=app_id, pushkey=pushkey, pushkey_ts=ts, data=data, tweaks=tweaks)


def parse_notification(body: object, max_devices: int = 100) -> Notification:
    """Validate a decoded JSON body; raise ``InvalidNotification`` naming the field."""
    if not isinstance(body, dict):
        raise InvalidNotification("body: must be a JSON object")
    n = body.get("notification")
    if not isinstance(n, dict):
        raise InvalidNotification("notification: required, must be an object")
    w = "notification."
    devices_raw = n.get("devices")
    if not isinstance(devices_raw, list) or not devices_raw:
        raise InvalidNotification("notification.devices: required, a non-empty list")
    if len(devices_raw) > max_devices:
        raise InvalidNotification(
            f"notification.devices: at most {max_devices} devices, got {len(devices_raw)}")
    devices = tuple(_device(d, i) for i, d in enumerate(devices_raw))
    event_id = _str(n, "event_id", w, MAX_ID_BYTES) or _str(n, "id", w, MAX_ID_BYTES)
    prio = n.get("prio", "high")
    if prio is None:
        prio = "high"
    if prio not in ("high", "low"):
        raise InvalidNotification("notification.prio: must be 'high' or 'low'")
    counts = _obj(n, "counts", w) or {}
    target = n.get("user_is_target")
    if target is not None and not isinstance(target, bool):
        raise InvalidNotification("notification.user_is_target: must be true or false")
    return Notification(
        devices=devices,
        event_id=event_id,
        room_id=_str(n, "room_id", w, MAX_ID_BYTES),
        type=_str(n, "type", w, MAX_ID_BYTES),
        sender=_str(n, "sender", w, MAX_ID_BYTES),
        sender_display_name=_str(n, "sender_display_name", w, MAX_TEXT_BYTES),
        room_name=_str(n, "room_name", w, MAX_TEXT_BYTES),
        room_alias=_str(n, "room_alias", w, MAX_ID_BYTES),
        membership=_str(n, "membership", w, MAX_ID_BYTES),
        user_is_target=target,
        prio=prio,
        content=_obj(n, "content", w),
        unread=_count(counts, "unread", "notification.counts."),
        missed_calls=_count(counts, "missed_calls", "notification.counts."),
    )
