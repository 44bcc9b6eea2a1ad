"""Durations and sizes as people write them in a spec (``30d``, ``50M``), in one place.

Durations always need a unit: a bare ``30`` could mean seconds, milliseconds or days depending
on which Synapse option a reader has in mind, and guessing wrong on a retention period deletes
data. Units are ``ms``, ``s``, ``m`` (minutes), ``h``, ``d``, ``w`` (7d) and ``y`` (365d, as in
Synapse); parts may be combined largest first (``1h30m``). The result is milliseconds.

Sizes are bytes: a plain integer is a byte count; ``K``/``M``/``G``/``T`` are binary multiples
(1024, as Synapse's ``max_upload_size: 50M`` means), with an optional ``B``/``iB`` (``50MB``,
``50MiB``) and case ignored.
"""

from __future__ import annotations

import re

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

DURATION_UNITS_MS: dict[str, int] = {
    "y": 365 * DAY_MS,
    "w": 7 * DAY_MS,
    "d": DAY_MS,
    "h": HOUR_MS,
    "m": MINUTE_MS,
    "s": SECOND_MS,
    "ms": 1,
}
# Units used when writing a duration back: no weeks or years, so `28d` is echoed as `28d`.
_FORMAT_UNITS = ("d", "h", "m", "s", "ms")

SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
}

_DURATION_PART = re.compile(r"(\d+)(ms|[ywdhms])")
_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?", re.IGNORECASE)

DURATION_HINT = "use a number with a unit: ms, s, m, h, d, w or y (e.g. 30d, 12h, 90m)"
SIZE_HINT = "use bytes or a number with K, M, G or T (e.g. 512K, 50M, 2G)"


class UnitError(ValueError):
    """A duration or size that cannot be read; the message says what is accepted."""


def parse_duration(value: object) -> int:
    """``"30d"`` → 2592000000 (milliseconds). Integers are refused: a unit is required."""
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise UnitError(f"a duration needs a unit ({value!r} is ambiguous); {DURATION_HINT}")
        raise UnitError(f"expected a duration string; {DURATION_HINT}")
    text = value.strip()
    if not text:
        raise UnitError(f"empty duration; {DURATION_HINT}")
    total = 0
    position = 0
    last_unit_size: int | None = None
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        unit_ms = DURATION_UNITS_MS[match.group(2)]
        if last_unit_size is not None and unit_ms >= last_unit_size:
            raise UnitError(f"invalid duration {value!r}: combine units largest first (1h30m)")
        last_unit_size = unit_ms
        total += int(match.group(1)) * unit_ms
        position = match.end()
    if position != len(text) or last_unit_size is None:
        raise UnitError(f"invalid duration {value!r}; {DURATION_HINT}")
    return total


def format_duration(ms: int) -> str:
    """2592000000 → ``"30d"``; inexact values combine units (``"1d12h"``); 0 → ``"0s"``."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    remaining = abs(ms)
    parts = []
    for unit in _FORMAT_UNITS:
        size = DURATION_UNITS_MS[unit]
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def parse_size(value: object) -> int:
    """``"50M"`` → 52428800 bytes; a plain integer is already bytes."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size; {SIZE_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"a size cannot be negative ({value})")
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected a size; {SIZE_HINT}")
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise UnitError(f"invalid size {value!r}; {SIZE_HINT}")
    number, unit, suffix = match.groups()
    if suffix and suffix.lower() == "ib" and not unit:
        raise UnitError(f"invalid size {value!r}; {SIZE_HINT}")
    return int(number) * SIZE_UNITS[unit.lower()]


def format_size(size: int) -> str:
    """52428800 → ``"50M"``; sizes that are not whole multiples stay in bytes."""
    for unit in ("T", "G", "M", "K"):
        multiple = SIZE_UNITS[unit.lower()]
        if size and size % multiple == 0:
            return f"{size // multiple}{unit}"
    return str(size)
