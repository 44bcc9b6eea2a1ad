"""The gateway's configuration (``pushgw.yaml``), parsed and validated once at start-up.

Everything that can be wrong with a deployment (a typo'd key, a missing service-account file,
an ``fcm_options`` field FCM does not know) is found here and reported as one line naming the
key, so the process never starts half-configured.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pusher_gateway.fcm_options import validate_fcm_options

FcmHttp = Literal["auto", "h2c", "http1"]
DEFAULT_FCM_BASE_URL = "https://fcm.googleapis.com"


class ConfigError(ValueError):
    """A one-line, user-facing configuration problem."""


@dataclass(frozen=True)
class AppConfig:
    """One mobile app the gateway pushes for: pushers whose ``app_id`` matches go to FCM."""

    app_id: str  # exact, or a glob (``com.acme.*``)
    fcm_project: str
    service_account: Path
    platform: Literal["android", "ios", "web"] = "android"
    fcm_options: dict[str, Any] = field(default_factory=dict)
    max_in_flight: int = 512

    @property
    def is_glob(self) -> bool:
        return any(c in self.app_id for c in "*?[")


@dataclass(frozen=True)
class GatewayConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 5000
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no metrics listener
    fcm_base_url: str = DEFAULT_FCM_BASE_URL
    fcm_http: FcmHttp = "auto"  # auto: HTTP/2 over TLS (ALPN), HTTP/1.1 over plain http
    fcm_max_connections: int = 100
    fcm_ca_file: str = ""  # PEM bundle to trust for fcm_base_url (a relay's private CA)
    request_timeout_seconds: float = 10.0  # one FCM call
    retry_budget_seconds: float = 20.0  # all attempts for one notification; < Synapse's 60 s
    retry_base_seconds: float = 0.25
    retry_max_delay_seconds: float = 5.0
    redis_url: str = ""  # dedup in Redis when set (several gateway instances)
    dedup_ttl_seconds: float = 3600.0
    dedup_max_entries: int = 1_000_000
    max_body_bytes: int = 65536
    max_devices: int = 100
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Every push carries only event_id, room_id and counts, whatever format a pusher asked for.
    event_id_only: bool = False
    apps: tuple[AppConfig, ...] = ()


_NESTED = {"listen_host", "listen_port", "metrics_host", "metrics_port"}
_TOP_KEYS = (set(GatewayConfig.__dataclass_fields__) - _NESTED) | {"listen", "metrics"}
_APP_KEYS = set(AppConfig.__dataclass_fields__)
_ADDRESS_KEYS = {"host", "port"}


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    for key in sorted(keys - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{where}{key}: unknown key{hint}")


def _typed(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
           where: str) -> Any:
    value = raw.get(key, default)
    # bool is an int in Python; never accept it where a number is meant.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(f"{where}{key}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}{key}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
             dict: "a mapping", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _address(raw: dict[str, Any], key: str, host: str, port: int) -> tuple[str, int]:
    """``listen:``/``metrics:`` as ``{host, port}``; port 0 means a free port (metrics: off)."""
    section = _typed(raw, key, dict, {}, "") or {}
    _unknown(set(section), _ADDRESS_KEYS, f"{key}.")
    host = _typed(section, "host", str, host, f"{key}.")
    value = _typed(section, "port", int, port, f"{key}.")
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key}.port: must be a port number, got {value}")
    return host, int(value)


def _positive(raw: dict[str, Any], key: str, default: float, where: str = "") -> float:
    value = _typed(raw, key, (int, float), default, where)
    if value <= 0:
        raise ConfigError(f"{where}{key}: must be greater than 0, got {value}")
    return float(value)


def _positive_int(raw: dict[str, Any], key: str, default: int, where: str = "") -> int:
    value = _typed(raw, key, int, default, where)
    if value <= 0:
        raise ConfigError(f"{where}{key}: must be a positive integer, got {value}")
    return int(value)


def _choice(raw: dict[str, Any], key: str, default: str, choices: tuple[str, ...],
            where: str = "") -> Any:
    value = _typed(raw, key, str, default, where)
    if value not in choices:
        raise ConfigError(f"{where}{key}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def _service_account_project(path: Path, where: str) -> str:
    """Check the file is a loadable service account (through firebase-admin) and get its project."""
    from firebase_admin import credentials

    if not path.is_file():
        raise ConfigError(f"{where}service_account: file not found: {path}")
    try:
        cert = credentials.Certificate(str(path))
    except (ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}service_account: not a usable service-account file "
                          f"({path}): {first}") from None
    return str(cert.project_id or "")


def parse_app(raw: object, index: int, base_dir: Path) -> AppConfig:
    where = f"apps[{index}]."
    if not isinstance(raw, dict):
        raise ConfigError(f"apps[{index}]: expected a mapping, got {raw!r}")
    _unknown(set(raw), _APP_KEYS, where)
    app_id = _typed(raw, "app_id", str, "", where)
    if not app_id.strip() or len(app_id) > 64:
        raise ConfigError(f"{where}app_id: required, 1..64 characters")
    sa_raw = _typed(raw, "service_account", str, "", where)
    if not sa_raw:
        raise ConfigError(f"{where}service_account: required (path to the FCM "
                          "service-account JSON)")
    sa = Path(sa_raw).expanduser()
    sa = sa if sa.is_absolute() else (base_dir / sa).resolve()
    sa_project = _service_account_project(sa, where)
    project = _typed(raw, "fcm_project", str, "", where) or sa_project
    if not project:
        raise ConfigError(f"{where}fcm_project: required (the service account names none)")
    options = _typed(raw, "fcm_options", dict, {}, where) or {}
    problem = validate_fcm_options(options)
    if problem:
        raise ConfigError(f"{where}fcm_options.{problem}")
    return AppConfig(
        app_id=app_id,
        fcm_project=project,
        service_account=sa,
        platform=_choice(raw, "platform", "android", ("android", "ios", "web"), where),
        fcm_options=json.loads(json.dumps(options)),  # plain JSON types, detached from YAML
        max_in_flight=_positive_int(raw, "max_in_flight", 512, where),
    )


def parse_config(raw: object, base_dir: Path = Path(".")) -> GatewayConfig:
    """Validate a parsed YAML document into a ``GatewayConfig``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("pushgw.yaml: the top level must be a mapping")
    _unknown(set(raw), _TOP_KEYS, "")
    d = GatewayConfig()
    base_url = _typed(raw, "fcm_base_url", str, d.fcm_base_url, "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"fcm_base_url: must be an http(s) URL, got {base_url!r}")
    ca_file = _typed(raw, "fcm_ca_file", str, "", "")
    if ca_file:
        ca_path = Path(ca_file).expanduser()
        ca_path = ca_path if ca_path.is_absolute() else (base_dir / ca_path).resolve()
        if not ca_path.is_file():
            raise ConfigError(f"fcm_ca_file: file not found: {ca_path}")
        ca_file = str(ca_path)
    redis_url = _typed(raw, "redis_url", str, "", "")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis_url: must be a redis:// URL, got {redis_url!r}")
    apps_raw = raw.get("apps")
    apps_raw = [] if apps_raw is None else apps_raw
    if not isinstance(apps_raw, list):
        raise ConfigError("apps: expected a list")
    apps = tuple(parse_app(a, i, base_dir) for i, a in enumerate(apps_raw))
    seen: set[str] = set()
    for i, app in enumerate(apps):
        if app.app_id in seen:
            raise ConfigError(f"apps[{i}].app_id: duplicate app id {app.app_id!r}")
        seen.add(app.app_id)
    budget = _positive(raw, "retry_budget_seconds", d.retry_budget_seconds)
    request_timeout = _positive(raw, "request_timeout_seconds", d.request_timeout_seconds)
    if budget + request_timeout >= 55:
        raise ConfigError("retry_budget_seconds: with request_timeout_seconds it must stay well "
                          f"under the homeserver's 60 s push timeout (sum below 55), got "
                          f"{budget} + {request_timeout}")
    listen_host, listen_port = _address(raw, "listen", d.listen_host, d.listen_port)
    metrics_host, metrics_port = _address(raw, "metrics", d.metrics_host, d.metrics_port)
    return GatewayConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        fcm_base_url=base_url,
        fcm_http=_choice(raw, "fcm_http", d.fcm_http, ("auto", "h2c", "http1")),
        fcm_max_connections=_positive_int(raw, "fcm_max_connections", d.fcm_max_connections),
        fcm_ca_file=ca_file,
        request_timeout_seconds=request_timeout,
        retry_budget_seconds=budget,
        retry_base_seconds=_positive(raw, "retry_base_seconds", d.retry_base_seconds),
        retry_max_delay_seconds=_positive(raw, "retry_max_delay_seconds",
                                          d.retry_max_delay_seconds),
        redis_url=redis_url,
        dedup_ttl_seconds=_positive(raw, "dedup_ttl_seconds", d.dedup_ttl_seconds),
        dedup_max_entries=_positive_int(raw, "dedup_max_entries", d.dedup_max_entries),
        max_body_bytes=_positive_int(raw, "max_body_bytes", d.max_body_bytes),
        max_devices=_positive_int(raw, "max_devices", d.max_devices),
        log_level=_choice(raw, "log_level", d.log_level, ("debug", "info", "warning", "error")),
        event_id_only=_typed(raw, "event_id_only", bool, d.event_id_only, ""),
        apps=apps,
    )


def load_config(path: Path) -> GatewayConfig:
    """Read and validate ``pushgw.yaml``; relative paths resolve against its directory."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(raw, Path(path).resolve().parent)
