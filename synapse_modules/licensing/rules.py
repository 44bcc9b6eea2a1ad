"""What a verified license allows at a given moment. Pure: time and counts come in as arguments.

An expired license stops growth (new accounts, new rooms) and never takes anything away, so
every rule here answers "may this grow?" or "what should admins be told?", nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from synapse_modules.licensing.document import License

EXPIRING_WINDOW = timedelta(days=30)
NOTICE_DAYS_BEFORE = (30, 7, 1)


class State(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"
    EXPIRING = "expiring"  # within EXPIRING_WINDOW of expires_at
    GRACE = "grace"  # past expires_at, inside the grace period: everything still works
    EXPIRED = "expired"  # past the grace period: no new accounts, no new rooms


@dataclass(frozen=True)
class Status:
    state: State
    days_left: int  # whole days until expires_at (rounded up); negative once it has passed
    grace_ends_at: datetime

    @property
    def allows_growth(self) -> bool:
        return self.state in (State.VALID, State.EXPIRING, State.GRACE)


def grace_ends_at(lic: License) -> datetime:
    return lic.expires_at + timedelta(days=lic.grace_days)


def status_at(lic: License, now: datetime) -> Status:
    left = (lic.expires_at - now).total_seconds() / 86400
    days_left = math.ceil(left) if left > 0 else math.floor(left)
    ends = grace_ends_at(lic)
    if now < lic.valid_from:
        state = State.NOT_YET_VALID
    elif now < lic.expires_at - EXPIRING_WINDOW:
        state = State.VALID
    elif now < lic.expires_at:
        state = State.EXPIRING
    elif now < ends:
        state = State.GRACE
    else:
        state = State.EXPIRED
    return Status(state=state, days_left=days_left, grace_ends_at=ends)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def describe(lic: License, status: Status) -> str:
    """One line for people: CLI output, render warnings, logs."""
    kind = "evaluation license" if lic.evaluation else "license"
    if status.state is State.NOT_YET_VALID:
        return f"{kind} {lic.license_id} is not valid until {_day(lic.valid_from)}"
    if status.state is State.VALID:
        return (
            f"{kind} {lic.license_id} valid until {_day(lic.expires_at)} "
            f"({status.days_left} days)"
        )
    if status.state is State.EXPIRING:
        return (
            f"{kind} {lic.license_id} expires on {_day(lic.expires_at)} "
            f"(in {status.days_left} days)"
        )
    if status.state is State.GRACE:
        return (
            f"{kind} {lic.license_id} expired on {_day(lic.expires_at)}; grace period ends "
            f"{_day(status.grace_ends_at)}, then no new accounts or rooms"
        )
    return (
        f"{kind} {lic.license_id} expired on {_day(lic.expires_at)} and its grace period ended "
        f"{_day(status.grace_ends_at)}: no new accounts or rooms until it is renewed"
    )


# --- growth ---------------------------------------------------------------------------------


def growth_refusal(lic: License, status: Status) -> str | None:
    """Why new accounts and rooms are refused right now, or None when they are allowed."""
    if status.allows_growth:
        return None
    if status.state is State.NOT_YET_VALID:
        return (
            f"This server's license is not valid until {_day(lic.valid_from)}; "
            "new accounts and rooms are paused"
        )
    return (
        f"This server's license expired on {_day(lic.expires_at)}; new accounts and rooms are "
        "paused until it is renewed (existing accounts and rooms keep working)"
    )


def seat_refusal(active_accounts: int, seats: int) -> str | None:
    """Why one more active account is refused, or None when a seat is free."""
    if active_accounts < seats:
        return None
    return (
        f"This server's license allows {seats} active accounts and {active_accounts} are in "
        "use; deactivate an account or extend the license"
    )


# --- features -------------------------------------------------------------------------------


def required_features(
    *, minors_enabled: bool, storage_backend: str, workers: int, custom_branding: bool
) -> frozenset[str]:
    """The features a deployment uses, so a license lacking one can be refused up front."""
    needed = set()
    if minors_enabled:
        needed.add("minors")
    if storage_backend == "s3":
        needed.add("s3_storage")
    if workers > 0:
        needed.add("workers")
    if custom_branding:
        needed.add("white_label")
    return frozenset(needed)


def missing_features(lic: License, required: frozenset[str] | set[str]) -> list[str]:
    return sorted(set(required) - lic.features)


# --- server notices -------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    key: str  # stable id of the milestone ("30d", "7d", "1d", "grace", "expired")
    body: str


def _milestones(lic: License) -> list[tuple[datetime, str]]:
    points = [(lic.expires_at - timedelta(days=d), f"{d}d") for d in NOTICE_DAYS_BEFORE]
    points.append((lic.expires_at, "grace"))
    points.append((grace_ends_at(lic), "expired"))
    return sorted(points, key=lambda p: p[0])


def notice_due(
    lic: License, now: datetime, already_sent: set[str] | frozenset[str]
) -> Notice | None:
    """The one notice admins should get now for this license, if any.

    Only the latest milestone reached counts: a server that starts 5 days before expiry says
    "7 days left" once, not "30 days" then "7 days". Milestones of a license are keyed by its
    id by the caller, so a renewal starts afresh.
    """
    if now < lic.valid_from:
        return None
    reached = [key for moment, key in _milestones(lic) if moment <= now]
    if not reached or reached[-1] in already_sent:
        return None
    key = reached[-1]
    status = status_at(lic, now)
    kind = "evaluation license" if lic.evaluation else "license"
    who = f"The Chat500MG {kind} for {lic.org_display_name} ({lic.license_id})"
    if key == "expired":
        body = (
            f"{who} expired on {_day(lic.expires_at)} and its grace period has ended. New "
            "accounts and new rooms are refused until the license is renewed; existing users "
            "keep reading, sending and exporting, and nothing is deleted."
        )
    elif key == "grace":
        body = (
            f"{who} expired on {_day(lic.expires_at)}. Everything keeps working during the "
            f"grace period, which ends on {_day(status.grace_ends_at)}; after that no new "
            "accounts or rooms can be created until the license is renewed."
        )
    else:
        body = (
            f"{who} expires on {_day(lic.expires_at)} (in {status.days_left} "
            f"day{'s' if status.days_left != 1 else ''}). Renew it to keep adding accounts "
            "and rooms."
        )
    return Notice(key=key, body=body)
