"""Per-app ``fcm_options``: FCM v1 ``Message`` fields merged into every message.

Validated at start-up against the v1 field names so a typo (``android.prioirty``) is a config
error instead of a 400 from FCM on every push. The fields the gateway owns (the target token,
``data``, and ``notification``, which would put text on the wire) may not be set here.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

# A schema node: a type for leaves, a dict for nested messages, or "map"/"any" markers.
_STR, _BOOL, _INT, _MAP, _ANY = "string", "boolean", "integer", "map of strings", "object"

_ANDROID_NOTIFICATION = {
    k: _ANY for k in (
        "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
        "body_loc_args", "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky",
        "event_time", "local_only", "notification_priority", "default_sound",
        "default_vibrate_timings", "default_light_settings", "vibrate_timings", "visibility",
        "notification_count", "light_settings", "image", "bypass_proxy_notification", "proxy",
    )
}
SCHEMA: dict[str, Any] = {
    "android": {
        "collapse_key": _STR,
        "priority": ("normal", "high", "NORMAL", "HIGH"),
        "ttl": "duration",
        "restricted_package_name": _STR,
        "data": _MAP,
        "notification": _ANDROID_NOTIFICATION,
        "fcm_options": {"analytics_label": _STR},
        "direct_boot_ok": _BOOL,
        "bandwidth_constrained_ok": _BOOL,
        "restricted_satellite_ok": _BOOL,
    },
    "apns": {
        "headers": _MAP,
        "payload": _ANY,
        "fcm_options": {"analytics_label": _STR, "image": _STR},
        "live_activity_token": _STR,
    },
    "webpush": {
        "headers": _MAP,
        "data": _MAP,
        "notification": _ANY,
        "fcm_options": {"link": _STR, "analytics_label": _STR},
    },
    "fcm_options": {"analytics_label": _STR},
}
_OWNED = {
    "token": "the gateway sets the target from the pusher's pushkey",
    "topic": "the gateway sends to one device token",
    "condition": "the gateway sends to one device token",
    "fid": "the gateway sends to one device token",
    "name": "output-only",
    "data": "the gateway builds the data payload from the notification",
    "notification": "messages are data-only: the app fetches the message itself",
}
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")


def validate_fcm_options(options: object) -> str:
    """'' when valid, else ``<dotted.path>: <problem>`` for the first problem found."""
    if not isinstance(options, dict):
        return ": expected a mapping"
    for key in options:
        if key in _OWNED:
            return f"{key}: not allowed ({_OWNED[key]})"
    return _check(options, SCHEMA, "")


def _check(value: Any, schema: Any, path: str) -> str:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{path}: expected a mapping"
        for key, sub in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key not in schema:
                close = difflib.get_close_matches(str(key), list(schema), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                return f"{here}: unknown FCM v1 field{hint}"
            problem = _check(sub, schema[key], here)
            if problem:
                return problem
        return ""
    if isinstance(schema, tuple):
        return "" if value in schema else f"{path}: must be one of {', '.join(schema)}"
    if schema == _STR:
        return "" if isinstance(value, str) else f"{path}: expected a string"
    if schema == _BOOL:
        return "" if isinstance(value, bool) else f"{path}: expected true/false"
    if schema == _MAP:
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return "" if ok else f"{path}: expected a map of strings to strings"
    if schema == "duration":
        ok = isinstance(value, str) and bool(_DURATION.match(value))
        return "" if ok else f"{path}: expected a duration like '3600s'"
    return ""  # _ANY


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, recursively; neither input is modified."""
    out = dict(base)
    for key, value in override.items():
        prior = out.get(key)
        if isinstance(prior, dict) and isinstance(value, dict):
            out[key] = deep_merge(prior, value)
        else:
            out[key] = value
    return out
