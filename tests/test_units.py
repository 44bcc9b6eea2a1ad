"""Durations and sizes as written in specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.units import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    UnitError,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30d", 30 * DAY_MS),
        ("12h", 12 * HOUR_MS),
        ("90m", 90 * MINUTE_MS),
        ("45s", 45_000),
        ("500ms", 500),
        ("2w", 14 * DAY_MS),
        ("1y", 365 * DAY_MS),
        ("1h30m", 90 * MINUTE_MS),
        ("1d12h", 36 * HOUR_MS),
        ("1m500ms", 60_500),
        (" 7d ", 7 * DAY_MS),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (30, "needs a unit"),
        (1.5, "needs a unit"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ("", "empty duration"),
        ("30", "invalid duration '30'"),
        ("30 days", "invalid duration"),
        ("30D", "invalid duration"),
        ("1.5h", "invalid duration"),
        ("-1d", "invalid duration"),
        ("d", "invalid duration"),
        ("30m1h", "largest first"),
        ("1h1h", "largest first"),
    ],
)
def test_parse_duration_rejects(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment) as info:
        parse_duration(value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (30 * DAY_MS, "30d"),
        (365 * DAY_MS, "365d"),
        (28 * DAY_MS, "28d"),
        (12 * HOUR_MS, "12h"),
        (36 * HOUR_MS, "1d12h"),
        (90 * MINUTE_MS, "1h30m"),
        (500, "500ms"),
        (0, "0s"),
        (-DAY_MS, "-1d"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@given(st.integers(min_value=0, max_value=10**13))
def test_duration_round_trip(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        (0, 0),
        ("512K", 512 * 1024),
        ("50M", 50 * 1024**2),
        ("2G", 2 * 1024**3),
        ("1T", 1024**4),
        ("50m", 50 * 1024**2),
        ("50MB", 50 * 1024**2),
        ("50MiB", 50 * 1024**2),
        ("100B", 100),
        ("100", 100),
        ("10 M", 10 * 1024**2),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["50X", "1.5G", "M", "", "-5", "5iB", True, None, 1.5, [1]])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(UnitError):
        parse_size(value)


def test_negative_size_integer_is_rejected() -> None:
    with pytest.raises(UnitError, match="negative"):
        parse_size(-1)


@pytest.mark.parametrize(
    ("size", "text"),
    [(50 * 1024**2, "50M"), (2 * 1024**3, "2G"), (512 * 1024, "512K"), (1000, "1000"), (0, "0")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size
