"""What an FCM response means for the pushkey (pure).

Decided from the Google error body (``error.details[].errorCode`` of the ``FcmError`` detail,
and ``BadRequest.fieldViolations``), not only the HTTP status: a 400 is a dead token only when
FCM says the *token* is invalid, and a 404 without ``UNREGISTERED`` (a wrong project URL, say)
must never make the homeserver delete every pusher.
"""

from __future__ import annotations

import email.utils
import json
import random
from dataclasses import dataclass
from typing import Literal

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

Kind = Literal["delivered", "rejected", "retry", "reauth", "failed"]
_RETRY_CODES = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED"}
_REJECT_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    code: str  # FCM errorCode, Google status, or OK / NETWORK / HTTP_<n>
    retry_after: float | None = None  # seconds, from Retry-After


DELIVERED = Outcome("delivered", "OK")


def _error_fields(body: bytes) -> tuple[str, str, bool]:
    """(FcmError.errorCode, error.status, token field violated) from a Google error body."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", "", False
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(err, dict):
        return "", "", False
    status = err.get("status") if isinstance(err.get("status"), str) else ""
    code, token_bad = "", False
    details = err.get("details")
    for d in details if isinstance(details, list) else []:
        if not isinstance(d, dict):
            continue
        if d.get("@type") == FCM_ERROR_TYPE and isinstance(d.get("errorCode"), str):
            code = code or d["errorCode"]
        if d.get("@type") == BAD_REQUEST_TYPE:
            for fv in d.get("fieldViolations") or []:
                if isinstance(fv, dict) and fv.get("field") == "message.token":
                    token_bad = True
    return code, str(status), token_bad


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify(status: int, body: bytes, retry_after: str | None, now: float) -> Outcome:
    """Map one FCM ``messages:send`` response to an outcome."""
    if 200 <= status < 300:
        return DELIVERED
    code, gstatus, token_bad = _error_fields(body)
    wait = parse_retry_after(retry_after, now)
    if code in _REJECT_CODES:
        return Outcome("rejected", code)
    if status == 400 and token_bad:
        return Outcome("rejected", code or "INVALID_ARGUMENT")
    if status == 401 or gstatus == "UNAUTHENTICATED":
        return Outcome("reauth", "UNAUTHENTICATED")
    if code in _RETRY_CODES or status in (429, 500, 502, 503, 504) or \
            gstatus in ("UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED"):
        return Outcome("retry", code or gstatus or f"HTTP_{status}", wait)
    return Outcome("failed", code or gstatus or f"HTTP_{status}")


def backoff_delay(attempt: int, retry_after: float | None, base: float, cap: float,
                  rng: random.Random) -> float:
    """Full-jitter exponential backoff for retry ``attempt`` (1-based), never shorter than
    what the server asked for in ``Retry-After``."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    delay = rng.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)
