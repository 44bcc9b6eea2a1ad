"""Read an org spec strictly: every problem in the file is reported at once, one line each.

The YAML is walked against the ``provisioner.spec`` dataclasses (their fields and type hints are
the schema, so a field added there is accepted here without touching this module). Problems are
``yaml.path: message`` lines; an operator fixing a spec should see all of them in one run, not
one per run. After the shapes are right, per-field checks (server names, colours, URLs, ...) and
cross-field rules (retention bounds, engine-specific keys, ...) run; a rule that reads a field
already reported is skipped, so one mistake does not produce a cascade of confusing lines.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from provisioner.errors import Chat500Error
from provisioner.spec import (
    Analytics,
    Branding,
    Calls,
    Colors,
    Database,
    Duration,
    Email,
    Federation,
    Minors,
    Org,
    Push,
    PushApp,
    Registration,
    Scale,
    Server,
    Size,
    Spec,
    Storage,
)
from provisioner.spec_checks import (
    android_package_problem,
    base_url_problem,
    colour_problem,
    contact_problem,
    db_host_problem,
    db_identifier_problem,
    db_user_problem,
    display_name_problem,
    email_address_problem,
    email_domain_problem,
    fcm_project_problem,
    hostname_or_ip_problem,
    http_url_problem,
    image_path_problem,
    ios_bundle_id_problem,
    ip_address_problem,
    localpart_problem,
    mail_from_problem,
    message_problem,
    push_app_id_problem,
    redis_url_problem,
    s3_bucket_problem,
    s3_prefix_problem,
    s3_region_problem,
    server_name_problem,
    show,
    slug_problem,
)
from provisioner.units import UnitError, format_duration, parse_duration, parse_size

# Fields written with a unit in the YAML (30d, 50M), stored as a positive int of ms or bytes.
_UNIT_PARSERS: dict[Any, Callable[[object], int]] = {Duration: parse_duration, Size: parse_size}

# Spec fields that are not YAML keys.
_NOT_YAML = {(Spec, "base_dir")}


class SpecError(Chat500Error):
    """A spec that cannot be used; ``problems`` are the ``yaml.path: message`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def load_spec(path: Path) -> Spec:
    """Read and validate the spec at ``path``; relative paths in it resolve against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a spec file"]) from None
    except UnicodeDecodeError:
        raise SpecError([f"{path}: not UTF-8 text"]) from None
    except OSError as err:
        raise SpecError([f"{path}: cannot read ({err.strerror or err})"]) from None
    return load_spec_text(text, path.resolve().parent)


def load_spec_text(text: str, base_dir: Path) -> Spec:
    """Validate spec text as if it were a file in ``base_dir``."""
    base_dir = Path(base_dir).resolve()
    data = _parse_yaml(text)
    ctx = _Context(base_dir)
    if data is None:
        raise SpecError(["spec: empty file; expected a mapping with at least org and server"])
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping of sections at the top, got {_describe(data)}"])
    spec = _build_dataclass(Spec, data, "", ctx)
    assert isinstance(spec, Spec)
    _check_cross_fields(spec, ctx)
    if ctx.problems:
        raise SpecError([f"{path}: {message}" for path, message in ctx.problems])
    return _fill_derived_defaults(dataclasses.replace(spec, base_dir=base_dir))


# --- YAML ------------------------------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers keys given twice (PyYAML silently keeps the last)."""

    duplicates: list[tuple[Any, int]]


class _StrictLoader(yaml.SafeLoader):
    def construct_strict_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
        # Keys written in this mapping (not pulled in by a `<<` merge, which may be overridden).
        own_keys = {id(key_node) for key_node, _ in node.value}
        self.flatten_mapping(node)
        mapping = _Mapping()
        mapping.duplicates = []
        written: set[Any] = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            if id(key_node) in own_keys:
                if key in written:
                    mapping.duplicates.append((key, key_node.start_mark.line + 1))
                written.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)  # type: ignore[no-untyped-call]
        return mapping


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _Mapping:
    return loader.construct_strict_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = err.problem or err.context or "invalid YAML"
        raise SpecError([f"spec: YAML syntax error at {where}: {problem}"]) from None
    except yaml.YAMLError as err:
        raise SpecError([f"spec: YAML syntax error: {str(err).splitlines()[0]}"]) from None


# --- walking the dataclasses -----------------------------------------------------------------


class _Context:
    """Problems found so far and which YAML paths were given, for rules that depend on them."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[tuple[str, str]] = []
        self.present: set[str] = set()

    def add(self, path: str, message: str) -> None:
        self.problems.append((path or "spec", message))

    def ok(self, *paths: str) -> bool:
        """True when nothing was reported at or under any of ``paths``."""
        for reported, _ in self.problems:
            for path in paths:
                if reported == path or reported.startswith((path + ".", path + "[")):
                    return False
        return True


class _Invalid:
    """Marker for a value that failed to convert (already reported)."""


_INVALID = _Invalid()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _yaml_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init and (cls, f.name) not in _NOT_YAML]


def _build_dataclass(cls: type, data: Any, path: str, ctx: _Context) -> Any:
    hints = get_type_hints(cls)
    fields = _yaml_fields(cls)
    names = [f.name for f in fields]
    if data is None:
        data = {}  # a section whose keys are all commented out: every default applies
    if not isinstance(data, dict):
        ctx.add(path, f"expected a mapping, got {_describe(data)}")
        return _placeholder(cls)
    for key, line in getattr(data, "duplicates", []):
        ctx.add(_join(path, str(key)), f"given more than once (again at line {line})")
    for key in data:
        if key not in names:
            ctx.add(_join(path, str(key)), _unknown_key_message(key, names, path))
    values: dict[str, Any] = {}
    for f in fields:
        field_path = _join(path, f.name)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in data:
            if required:
                ctx.add(field_path, "required")
                values[f.name] = _zero(hints[f.name])
            continue
        ctx.present.add(field_path)
        value = _convert(hints[f.name], data[f.name], field_path, ctx)
        if isinstance(value, _Invalid):
            if required:
                values[f.name] = _zero(hints[f.name])
            continue
        validator = _FIELD_CHECKS.get((cls, f.name))
        if validator is not None:
            validator(value, field_path, ctx)
        values[f.name] = value
    return cls(**values)


def _convert(hint: Any, raw: Any, path: str, ctx: _Context) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if raw is None:
            return None
        return _convert(args[0], raw, path, ctx)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build_dataclass(hint, raw, path, ctx)
    if raw is None:
        ctx.add(path, "has no value (remove the key to use the default)")
        return _INVALID
    if hint in _UNIT_PARSERS:
        try:
            amount = _UNIT_PARSERS[hint](raw)
        except UnitError as err:
            ctx.add(path, str(err))
            return _INVALID
        if amount <= 0:
            ctx.add(path, "must be greater than 0")
            return _INVALID
        return hint(amount)
    if origin is Literal:
        choices = get_args(hint)
        if raw in choices and type(raw) is type(choices[0]):
            return raw
        message = f"must be one of {', '.join(map(str, choices))} (got {show(raw)})"
        if isinstance(raw, str):
            close = difflib.get_close_matches(raw.lower(), [str(c) for c in choices], n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        ctx.add(path, message)
        return _INVALID
    if origin is tuple:
        (item_hint, *_rest) = get_args(hint)
        if not isinstance(raw, list):
            ctx.add(path, f"expected a list, got {_describe(raw)}")
            return _INVALID
        items = [_convert(item_hint, item, f"{path}[{i}]", ctx) for i, item in enumerate(raw)]
        if any(isinstance(item, _Invalid) for item in items):
            return _INVALID
        return tuple(items)
    if origin is dict:
        if not isinstance(raw, dict):
            ctx.add(path, f"expected a mapping, got {_describe(raw)}")
            return _INVALID
        bad = [k for k in raw if not isinstance(k, str)]
        if bad:
            ctx.add(path, f"keys must be strings (got {show(bad[0])})")
            return _INVALID
        problem = _json_problem(raw)
        if problem:
            ctx.add(path, problem)
            return _INVALID
        return _plain(raw, path, ctx)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        ctx.add(path, f"expected true or false, got {_describe(raw)}")
        return _INVALID
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        ctx.add(path, f"expected an integer, got {_describe(raw)}")
        return _INVALID
    if hint is str:
        if isinstance(raw, str):
            return raw
        ctx.add(path, f"expected a string, got {_describe(raw)} (quote it if it is text)")
        return _INVALID
    raise TypeError(f"spec_loader: no converter for type {hint!r} at {path}")  # a spec.py bug


def _json_problem(value: Any) -> str | None:
    """Free-form mappings end up in JSON (FCM messages); say which value would not survive."""
    if value is None or isinstance(value, str | int | float | bool):
        return None
    if isinstance(value, list):
        for item in value:
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"keys must be strings (got {show(key)})"
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"{_describe(value)} cannot be sent as JSON (quote it)"


def _plain(value: Any, path: str, ctx: _Context) -> Any:
    """Free-form YAML as plain dicts and lists, with keys given twice reported."""
    if isinstance(value, list):
        return [_plain(item, f"{path}[{i}]", ctx) for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key, line in getattr(value, "duplicates", []):
            ctx.add(_join(path, str(key)), f"given more than once (again at line {line})")
        return {key: _plain(item, _join(path, str(key)), ctx) for key, item in value.items()}
    return value


def _zero(hint: Any) -> Any:
    """A stand-in for a required value that was missing or wrong (already reported)."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _placeholder(hint)
    if hint is str:
        return ""
    if hint in (int, Duration, Size):
        return 0
    if get_origin(hint) is tuple:
        return ()
    return None


def _placeholder(cls: type) -> Any:
    hints = get_type_hints(cls)
    values = {
        f.name: _zero(hints[f.name])
        for f in _yaml_fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return cls(**values)


@cache
def _all_field_paths(cls: type = Spec, prefix: str = "") -> dict[str, list[str]]:
    """Field name → full paths where it is a key, for 'did you mean' across sections.

    Items of a list of mappings appear as ``push.apps[].fcm_project``.
    """
    found: dict[str, list[str]] = {}
    hints = get_type_hints(cls)
    for f in _yaml_fields(cls):
        path = _join(prefix, f.name)
        found.setdefault(f.name, []).append(path)
        hint = hints[f.name]
        if get_origin(hint) is tuple:
            hint, path = get_args(hint)[0], path + "[]"
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            for name, paths in _all_field_paths(hint, path).items():
                found.setdefault(name, []).extend(paths)
    return found


def _unknown_key_message(key: Any, names: list[str], section: str) -> str:
    if not isinstance(key, str):
        return f"unknown key {show(key)} (keys are names like {names[0]!r})"
    full_path = _join(section, key)
    if "." in key and any(full_path in paths for paths in _all_field_paths().values()):
        outer, _, inner = full_path.rpartition(".")
        return f"unknown key (nest it: '{inner}' goes under '{outer}')"
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.lower().replace("-", "_"), names, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    elsewhere = [p for p in _all_field_paths().get(key, []) if p != _join(section, key)]
    if elsewhere:
        return f"unknown key here (did you mean '{elsewhere[0]}'?)"
    where = f"in {section}" if section else "at the top level"
    return f"unknown key; valid keys {where}: {', '.join(names)}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


# --- per-field checks ------------------------------------------------------------------------

_Check = Callable[[Any, str, _Context], None]


def _value_check(test: Callable[[Any], str | None]) -> _Check:
    """Adapt a ``value -> problem or None`` check."""

    def check(value: Any, path: str, ctx: _Context) -> None:
        problem = test(value)
        if problem:
            ctx.add(path, problem)

    return check


def _optional(test: Callable[[Any], str | None]) -> _Check:
    """Like ``_value_check`` but an empty string (meaning 'use the default') is fine."""
    return _value_check(lambda value: test(value) if value != "" else None)


def _each(test: Callable[[Any], str | None]) -> _Check:
    def check(values: Iterable[Any], path: str, ctx: _Context) -> None:
        for i, value in enumerate(values):
            problem = test(value)
            if problem:
                ctx.add(f"{path}[{i}]", problem)

    return check


def _unique(values: Iterable[Any], path: str, ctx: _Context) -> None:
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            ctx.add(f"{path}[{i}]", f"{show(value)} is already listed at {path}[{seen[value]}]")
        else:
            seen[value] = i


def _all(*parts: _Check) -> _Check:
    def check(value: Any, path: str, ctx: _Context) -> None:
        for part in parts:
            part(value, path, ctx)

    return check


def _check_logo(value: str, path: str, ctx: _Context) -> None:
    if value == "":
        return
    problem = image_path_problem(value)
    if problem:
        ctx.add(path, problem)
        return
    resolved = Path(value).expanduser()
    if not resolved.is_absolute():
        resolved = ctx.base_dir / resolved
    if not resolved.is_file():
        ctx.add(path, f"file not found: {resolved}")


def _range(low: int, high: int | None = None) -> _Check:
    def test(value: int) -> str | None:
        if value < low or (high is not None and value > high):
            return (
                f"must be between {low} and {high} (got {value})"
                if high is not None
                else (f"must be at least {low} (got {value})")
            )
        return None

    return _value_check(test)


_PORT = _range(1, 65535)
_URL = _optional(http_url_problem)

_FIELD_CHECKS: dict[tuple[type, str], _Check] = {
    (Org, "slug"): _value_check(slug_problem),
    (Org, "display_name"): _value_check(display_name_problem),
    (Server, "server_name"): _value_check(server_name_problem),
    (Server, "public_baseurl"): _optional(base_url_problem),
    (Server, "web_client_url"): _URL,
    (Server, "bind_address"): _value_check(ip_address_problem),
    (Server, "port"): _PORT,
    (Server, "admin_contact"): _optional(contact_problem),
    (Database, "host"): _value_check(db_host_problem),
    (Database, "port"): _PORT,
    (Database, "name"): _optional(db_identifier_problem),
    (Database, "user"): _optional(db_user_problem),
    (Database, "cp_min"): _range(1, 1000),
    (Database, "cp_max"): _range(1, 1000),
    (Colors, "primary"): _value_check(colour_problem),
    (Colors, "accent"): _value_check(colour_problem),
    (Colors, "background"): _value_check(colour_problem),
    (Branding, "brand"): _optional(display_name_problem),
    (Branding, "logo"): _check_logo,
    (Branding, "privacy_policy_url"): _URL,
    (Branding, "terms_url"): _URL,
    (Branding, "support_url"): _URL,
    (Branding, "support_email"): _optional(email_address_problem),
    (Branding, "android_app_id"): _optional(android_package_problem),
    (Branding, "ios_bundle_id"): _optional(ios_bundle_id_problem),
    (Branding, "android_store_url"): _URL,
    (Branding, "ios_store_url"): _URL,
    (Registration, "allowed_email_domains"): _all(_each(email_domain_problem), _unique),
    (Registration, "reserved_names"): _all(_each(localpart_problem), _unique),
    (Registration, "refused_message"): _value_check(message_problem),
    (Minors, "consent_required_message"): _value_check(message_problem),
    (PushApp, "app_id"): _value_check(push_app_id_problem),
    (PushApp, "fcm_project"): _optional(fcm_project_problem),
    (PushApp, "max_in_flight"): _range(1, 100_000),
    (Push, "gateway_url"): _URL,
    (Push, "listen_host"): _value_check(ip_address_problem),
    (Push, "listen_port"): _PORT,
    (Push, "metrics_port"): _range(0, 65535),
    (Push, "fcm_base_url"): _value_check(http_url_problem),
    (Push, "redis_url"): _optional(redis_url_problem),
    (Federation, "allow"): _all(_each(server_name_problem), _unique),
    (Federation, "port"): _PORT,
    (Analytics, "posthog_api_host"): _URL,
    (Analytics, "rageshake_url"): _URL,
    (Storage, "s3_bucket"): _optional(s3_bucket_problem),
    (Storage, "s3_region"): _optional(s3_region_problem),
    (Storage, "s3_endpoint_url"): _URL,
    (Storage, "s3_prefix"): _optional(s3_prefix_problem),
    (Email, "smtp_host"): _optional(hostname_or_ip_problem),
    (Email, "smtp_port"): _PORT,
    (Email, "notif_from"): _optional(mail_from_problem),
    (Calls, "turn_host"): _optional(hostname_or_ip_problem),
    (Calls, "turn_port"): _PORT,
    (Calls, "turn_tls_port"): _PORT,
    (Scale, "workers"): _range(0, 64),
    (Scale, "redis_host"): _value_check(hostname_or_ip_problem),
    (Scale, "redis_port"): _PORT,
}


# --- cross-field rules -----------------------------------------------------------------------


def _check_cross_fields(spec: Spec, ctx: _Context) -> None:
    for rule in _CROSS_RULES:
        rule(spec, ctx)


def _retention_bounds(spec: Spec, ctx: _Context) -> None:
    r = spec.retention
    low, default, high = (
        "retention.min_lifetime",
        "retention.default_lifetime",
        ("retention.max_lifetime"),
    )
    if ctx.ok(low, high) and r.max_lifetime < r.min_lifetime:
        # Blame the key the operator wrote; when both or neither were written, blame max.
        blamed, other, bound, word = (high, low, r.min_lifetime, ">=")
        if low in ctx.present and high not in ctx.present:
            blamed, other, bound, word = (low, high, r.max_lifetime, "<=")
        ctx.add(blamed, f"must be {word} {other} ({format_duration(bound)})")
        return
    if ctx.ok(low, default) and r.default_lifetime < r.min_lifetime:
        ctx.add(default, f"must be >= {low} ({format_duration(r.min_lifetime)})")
    if ctx.ok(default, high) and r.default_lifetime > r.max_lifetime:
        ctx.add(default, f"must be <= {high} ({format_duration(r.max_lifetime)})")


_POSTGRES_ONLY = ("host", "port", "name", "user", "password_file", "cp_min", "cp_max")


def _database(spec: Spec, ctx: _Context) -> None:
    db = spec.database
    if not ctx.ok("database.engine"):
        return
    if db.engine == "postgres":
        if db.user == "" and ctx.ok("database.user"):
            ctx.add("database.user", "required when database.engine is postgres")
        if db.path != "":
            ctx.add("database.path", "only used when database.engine is sqlite")
        if ctx.ok("database.cp_min", "database.cp_max") and db.cp_min > db.cp_max:
            ctx.add("database.cp_max", f"must be >= database.cp_min ({db.cp_min})")
    else:
        # A PostgreSQL setting left at its default is harmless; any other value would be
        # silently ignored, which is worth a line.
        defaults = Database()
        for key in _POSTGRES_ONLY:
            if getattr(db, key) != getattr(defaults, key):
                ctx.add(f"database.{key}", "only used when database.engine is postgres")


def _registration(spec: Spec, ctx: _Context) -> None:
    reg = spec.registration
    if not ctx.ok("registration.mode"):
        return
    domains = "registration.allowed_email_domains"
    if reg.mode == "email_domain":
        if not reg.allowed_email_domains and ctx.ok(domains):
            ctx.add(domains, "required when registration.mode is email_domain")
        if not spec.email.enabled and ctx.ok("email.enabled"):
            ctx.add(
                "email.enabled",
                "must be true when registration.mode is email_domain (addresses are verified "
                "by email)",
            )
    elif reg.allowed_email_domains:
        ctx.add(domains, "only used when registration.mode is email_domain")


def _minors(spec: Spec, ctx: _Context) -> None:
    m = spec.minors
    if m.enabled and not m.require_guardian_consent and ctx.ok("minors.require_guardian_consent"):
        ctx.add(
            "minors.require_guardian_consent",
            "must be true when minors.enabled is true (privacy policy §13: guardian consent)",
        )


_S3_ONLY = ("s3_bucket", "s3_region", "s3_endpoint_url", "s3_prefix")


def _storage(spec: Spec, ctx: _Context) -> None:
    st = spec.storage
    if not ctx.ok("storage.backend"):
        return
    if st.backend == "s3":
        if st.s3_bucket == "" and ctx.ok("storage.s3_bucket"):
            ctx.add("storage.s3_bucket", "required when storage.backend is s3")
    else:
        for key in _S3_ONLY:
            if getattr(st, key) != "":
                ctx.add(f"storage.{key}", "only used when storage.backend is s3")


_ANALYTICS_KEYS = ("posthog_project_api_key", "posthog_api_host", "rageshake_url")


def _analytics(spec: Spec, ctx: _Context) -> None:
    a = spec.analytics
    if not ctx.ok("analytics.enabled"):
        return
    if not a.enabled:
        for key in _ANALYTICS_KEYS:
            if getattr(a, key) != "":
                ctx.add(f"analytics.{key}", "only used when analytics.enabled is true")
        return
    if not any(getattr(a, key) for key in _ANALYTICS_KEYS) and ctx.ok("analytics"):
        ctx.add(
            "analytics.enabled",
            "true but no endpoint given (set posthog_project_api_key and posthog_api_host, "
            "or rageshake_url)",
        )
    if a.posthog_project_api_key and not a.posthog_api_host and ctx.ok("analytics"):
        ctx.add(
            "analytics.posthog_api_host",
            "required with posthog_project_api_key (analytics go only to the org's own host)",
        )
    if a.posthog_api_host and not a.posthog_project_api_key and ctx.ok("analytics"):
        ctx.add("analytics.posthog_project_api_key", "required with posthog_api_host")


def _scale(spec: Spec, ctx: _Context) -> None:
    if (
        spec.scale.workers > 0
        and spec.database.engine != "postgres"
        and ctx.ok("scale.workers", "database.engine")
    ):
        ctx.add(
            "scale.workers",
            "needs database.engine: postgres (Synapse workers cannot share SQLite)",
        )


def _push(spec: Spec, ctx: _Context) -> None:
    push = spec.push
    if not ctx.ok("push.apps"):
        return
    seen: dict[str, int] = {}
    for i, app in enumerate(push.apps):
        path = f"push.apps[{i}]"
        if app.app_id in seen:
            ctx.add(f"{path}.app_id", f"duplicate of push.apps[{seen[app.app_id]}].app_id")
        else:
            seen[app.app_id] = i
        if push.enabled:
            for key in ("fcm_project", "service_account"):
                if getattr(app, key) == "":
                    ctx.add(f"{path}.{key}", "required (the gateway sends through FCM HTTP v1)")
    if (
        push.enabled
        and push.metrics_port == push.listen_port
        and ctx.ok("push.metrics_port", "push.listen_port")
    ):
        ctx.add("push.metrics_port", f"must differ from push.listen_port ({push.listen_port})")
    if (
        push.enabled
        and push.listen_port == spec.server.port
        and push.listen_host == spec.server.bind_address
        and ctx.ok("push.listen_port", "server.port")
    ):
        ctx.add("push.listen_port", f"must differ from server.port ({spec.server.port})")


def _federation(spec: Spec, ctx: _Context) -> None:
    fed = spec.federation
    if not ctx.ok("federation"):
        return
    if not fed.enabled:
        if fed.allow:
            ctx.add("federation.allow", "only used when federation.enabled is true")
        return
    if not fed.allow:
        ctx.add(
            "federation.allow",
            "must name at least one server when federation.enabled is true "
            "(federation is allow-list only)",
        )
    own = spec.server.server_name
    for i, name in enumerate(fed.allow):
        if name == own:
            ctx.add(f"federation.allow[{i}]", f"is this server's own name ({own})")
    if fed.port == spec.server.port and ctx.ok("server.port"):
        ctx.add("federation.port", f"must differ from server.port ({spec.server.port})")


def _email(spec: Spec, ctx: _Context) -> None:
    em = spec.email
    if not ctx.ok("email"):
        return
    if em.enabled and em.smtp_host == "":
        ctx.add("email.smtp_host", "required when email.enabled is true")
    if em.smtp_user and not em.smtp_password_file:
        ctx.add("email.smtp_password_file", "required with email.smtp_user")
    if em.smtp_password_file and not em.smtp_user:
        ctx.add("email.smtp_user", "required with email.smtp_password_file")


def _calls(spec: Spec, ctx: _Context) -> None:
    c = spec.calls
    if c.enabled and c.turn_port == c.turn_tls_port and ctx.ok("calls"):
        ctx.add("calls.turn_tls_port", f"must differ from calls.turn_port ({c.turn_port})")


_CROSS_RULES: tuple[Callable[[Spec, _Context], None], ...] = (
    _retention_bounds,
    _database,
    _registration,
    _minors,
    _storage,
    _analytics,
    _scale,
    _push,
    _federation,
    _email,
    _calls,
)


def _fill_derived_defaults(spec: Spec) -> Spec:
    """Defaults that depend on other fields and have no ``Spec`` property of their own."""
    if spec.database.engine == "postgres" and spec.database.name == "":
        name = "chat500_" + spec.org.slug.replace("-", "_")
        spec = dataclasses.replace(spec, database=dataclasses.replace(spec.database, name=name))
    return spec
