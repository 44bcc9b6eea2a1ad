"""License state over time, seats, features and notices: pure rules, the clock as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from synapse_modules.licensing import rules
from synapse_modules.licensing.rules import State
from tests.test_license_document import make_license

START = datetime(2027, 1, 1, tzinfo=UTC)
EXPIRES = START + timedelta(days=365)
LIC = make_license(valid_from=START, issued_at=START, expires_at=EXPIRES, grace_days=14)


@pytest.mark.parametrize(
    "now,state,growth",
    [
        (START - timedelta(seconds=1), State.NOT_YET_VALID, False),
        (START, State.VALID, True),
        (EXPIRES - timedelta(days=30, seconds=1), State.VALID, True),
        (EXPIRES - timedelta(days=30), State.EXPIRING, True),
        (EXPIRES - timedelta(seconds=1), State.EXPIRING, True),
        (EXPIRES, State.GRACE, True),
        (EXPIRES + timedelta(days=14, seconds=-1), State.GRACE, True),
        (EXPIRES + timedelta(days=14), State.EXPIRED, False),
    ],
)
def test_states(now: datetime, state: State, growth: bool) -> None:
    status = rules.status_at(LIC, now)
    assert status.state is state
    assert status.allows_growth is growth
    assert (rules.growth_refusal(LIC, status) is None) is growth


def test_days_left() -> None:
    assert rules.status_at(LIC, EXPIRES - timedelta(days=6, hours=12)).days_left == 7
    assert rules.status_at(LIC, EXPIRES - timedelta(days=7)).days_left == 7
    assert rules.status_at(LIC, EXPIRES + timedelta(hours=1)).days_left == -1


def test_expired_refusal_says_nothing_is_lost() -> None:
    reason = rules.growth_refusal(LIC, rules.status_at(LIC, EXPIRES + timedelta(days=20)))
    assert reason is not None and "expired on" in reason and "keep working" in reason


def test_seats() -> None:
    assert rules.seat_refusal(0, 10) is None
    assert rules.seat_refusal(9, 10) is None
    reason = rules.seat_refusal(10, 10)
    assert reason is not None and "allows 10 active accounts" in reason
    assert rules.seat_refusal(12, 10) is not None


def test_features() -> None:
    needed = rules.required_features(
        minors_enabled=True, storage_backend="s3", workers=2, custom_branding=False
    )
    assert needed == {"minors", "s3_storage", "workers"}
    assert rules.required_features(
        minors_enabled=False, storage_backend="local", workers=0, custom_branding=True
    ) == {"white_label"}
    assert rules.missing_features(make_license(features=frozenset({"minors"})), needed) == [
        "s3_storage",
        "workers",
    ]


def test_notice_schedule() -> None:
    sent: set[str] = set()
    seen = []
    moment = EXPIRES - timedelta(days=40)
    while moment < EXPIRES + timedelta(days=20):
        notice = rules.notice_due(LIC, moment, sent)
        if notice is not None:
            sent.add(notice.key)
            seen.append((notice.key, notice.body))
        moment += timedelta(hours=6)
    assert [key for key, _ in seen] == ["30d", "7d", "1d", "grace", "expired"]
    bodies = dict(seen)
    assert "in 30 days" in bodies["30d"] and "in 1 day)" in bodies["1d"]
    assert "grace period" in bodies["grace"]
    assert "nothing is deleted" in bodies["expired"]


def test_late_start_sends_only_the_latest_notice() -> None:
    notice = rules.notice_due(LIC, EXPIRES - timedelta(days=3), set())
    assert notice is not None and notice.key == "7d"
    assert rules.notice_due(LIC, EXPIRES - timedelta(days=3), {"7d"}) is None
    assert rules.notice_due(LIC, EXPIRES - timedelta(days=100), set()) is None


def test_zero_grace_goes_straight_to_expired() -> None:
    lic = make_license(valid_from=START, expires_at=EXPIRES, grace_days=0)
    notice = rules.notice_due(lic, EXPIRES + timedelta(hours=1), set())
    assert notice is not None and notice.key == "expired"


def test_describe_marks_evaluation() -> None:
    lic = make_license(evaluation=True, valid_from=START, expires_at=EXPIRES)
    assert rules.describe(lic, rules.status_at(lic, START)).startswith("evaluation license")
