"""Reading a module's ``config:`` mapping strictly: a wrong key or type stops Synapse at start-up.

Every error is one line naming the offending key, so an operator sees exactly what to fix.
"""

from __future__ import annotations

from typing import Any

from synapse.config._base import ConfigError


def require_mapping(config: object, module: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{module}: config must be a mapping")
    return config


def reject_unknown(config: dict[str, Any], known: set[str], module: str) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(f"{module}: unknown config key '{unknown[0]}'")


def get_str(config: dict[str, Any], key: str, module: str, default: str) -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{module}: config key '{key}' must be a string")
    return value


def get_bool(config: dict[str, Any], key: str, module: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{module}: config key '{key}' must be true or false")
    return value


def get_int(
    config: dict[str, Any], key: str, module: str, default: int | None, minimum: int = 0
) -> int:
    value = config.get(key, default)
    if value is None:
        raise ConfigError(f"{module}: config key '{key}' is required")
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{module}: config key '{key}' must be an integer >= {minimum}")
    return value


def get_str_list(
    config: dict[str, Any], key: str, module: str, default: tuple[str, ...] = ()
) -> tuple[str, ...]:
    value = config.get(key, list(default))
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{module}: config key '{key}' must be a list of strings")
    return tuple(value)


def get_choice(
    config: dict[str, Any], key: str, module: str, default: str, choices: tuple[str, ...]
) -> str:
    value = get_str(config, key, module, default)
    if value not in choices:
        raise ConfigError(f"{module}: config key '{key}' must be one of {', '.join(choices)}")
    return value
