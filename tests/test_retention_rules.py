"""Which room retention policies the org allows: the pure rules behind the retention module."""

from __future__ import annotations

import pytest
from synapse.config._base import ConfigError

from synapse_modules.retention import RetentionPolicy
from synapse_modules.retention_rules import (
    Bounds,
    has_retention_state,
    human_duration,
    retention_refusal,
)

DAY = 86400000
BOUNDS = Bounds(default_lifetime=30 * DAY, min_lifetime=DAY, max_lifetime=365 * DAY)


@pytest.mark.parametrize("lifetime", [DAY, 30 * DAY, 365 * DAY])
def test_lifetimes_inside_the_bounds_are_allowed(lifetime: int) -> None:
    assert retention_refusal({"max_lifetime": lifetime}, BOUNDS) is None


@pytest.mark.parametrize(
    "content",
    [
        {},
        {"max_lifetime": DAY - 1},
        {"max_lifetime": 365 * DAY + 1},
        {"max_lifetime": "30d"},
        {"max_lifetime": True},
        {"max_lifetime": 2 * DAY, "min_lifetime": 3 * DAY},
        {"max_lifetime": 2 * DAY, "min_lifetime": -1},
    ],
)
def test_out_of_bounds_or_malformed_policies_are_refused(content: dict) -> None:
    assert retention_refusal(content, BOUNDS) is not None


def test_org_can_forbid_shortening_or_lengthening() -> None:
    fixed = Bounds(30 * DAY, DAY, 365 * DAY, allow_shorten=False, allow_lengthen=False)
    assert retention_refusal({"max_lifetime": 30 * DAY}, fixed) is None
    assert retention_refusal({"max_lifetime": 29 * DAY}, fixed) == "rooms may not shorten retention"
    assert retention_refusal({"max_lifetime": 31 * DAY}, fixed) == (
        "rooms may not lengthen retention"
    )


def test_initial_state_detection_and_human_durations() -> None:
    assert has_retention_state([{"type": "m.room.retention", "state_key": "", "content": {}}])
    assert not has_retention_state([{"type": "m.room.name", "content": {}}])
    assert not has_retention_state(None)
    assert human_duration(3 * 365 * DAY) == "3 years"
    assert human_duration(DAY) == "1 day"
    assert human_duration(1500) == "1500 ms"


def test_config_errors_are_one_line_naming_the_key() -> None:
    base = {"default_lifetime": 30 * DAY, "min_lifetime": DAY, "max_lifetime": 365 * DAY}
    assert RetentionPolicy.parse_config(base).bounds.default_lifetime == 30 * DAY
    for bad, key in (
        ({**base, "max_lifetime": "1y"}, "max_lifetime"),
        ({**base, "default_lifetime": 400 * DAY}, "default_lifetime"),
        ({**base, "color": 1}, "color"),
        ({k: v for k, v in base.items() if k != "min_lifetime"}, "min_lifetime"),
    ):
        with pytest.raises(ConfigError) as err:
            RetentionPolicy.parse_config(bad)
        assert key in str(err.value) and "\n" not in str(err.value)
