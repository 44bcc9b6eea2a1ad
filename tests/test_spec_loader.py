"""Strict spec loading: every problem reported, one line each, with its YAML path."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
import yaml

from provisioner.errors import Chat500Error
from provisioner.spec import (
    DAY_MS,
    Analytics,
    Branding,
    Calls,
    Database,
    Duration,
    Email,
    Federation,
    License,
    Minors,
    Org,
    Push,
    Registration,
    Retention,
    Scale,
    Server,
    Size,
    Spec,
    Storage,
)
from provisioner.spec_checks import server_name_problem
from provisioner.spec_loader import SpecError, load_spec, load_spec_text
from provisioner.units import format_duration, format_size

REPO = Path(__file__).resolve().parent.parent
MINIMAL: dict[str, Any] = {
    "org": {"slug": "acme", "display_name": "Acme"},
    "server": {"server_name": "chat.acme.test"},
}
# One line: a YAML path (letters, digits, _, ., [n]) then ": " then the message.
LINE = re.compile(r"^[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z0-9_]+(\[\d+\])?)*: \S.*$")


def doc(**sections: Any) -> dict[str, Any]:
    """The minimal spec with ``sections`` merged in (one level deep)."""
    document = copy.deepcopy(MINIMAL)
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(name), dict):
            document[name].update(value)
        else:
            document[name] = value
    return document


def load(document: dict[str, Any] | str, base_dir: Path) -> Spec:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    return load_spec_text(text, base_dir)


def problems(document: dict[str, Any] | str, base_dir: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(document, base_dir)
    err = info.value
    assert isinstance(err, Chat500Error) and err.exit_code == 2
    assert str(err).splitlines() == list(err.problems)
    return list(err.problems)


def only_problem(document: dict[str, Any] | str, base_dir: Path) -> str:
    found = problems(document, base_dir)
    assert len(found) == 1, found
    return found[0]


# --- valid specs -----------------------------------------------------------------------------


def test_minimal_spec_gets_every_default(tmp_path: Path) -> None:
    spec = load(MINIMAL, tmp_path)
    assert spec == Spec(org=Org("acme", "Acme"), server=Server("chat.acme.test"))
    assert spec.base_dir == tmp_path.resolve()
    assert spec.federation.enabled is False and spec.analytics.enabled is False
    assert spec.registration.mode == "admin_only"


def test_load_spec_sets_base_dir_to_the_spec_folder(tmp_path: Path) -> None:
    folder = tmp_path / "orgs"
    folder.mkdir()
    (folder / "assets").mkdir()
    (folder / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = folder / "acme.yaml"
    path.write_text(yaml.safe_dump(doc(branding={"logo": "assets/logo.png"})))
    spec = load_spec(path)
    assert spec.base_dir == folder.resolve()
    assert spec.resolve(spec.branding.logo) == (folder / "assets" / "logo.png").resolve()


def test_every_section_parses_into_the_typed_model(tmp_path: Path) -> None:
    (tmp_path / "logo.svg").write_text("<svg/>")
    spec = load(
        doc(
            server={"public_baseurl": "https://matrix.acme.test", "port": 8443},
            database={"engine": "postgres", "user": "synapse", "cp_min": 2, "cp_max": 4},
            branding={"logo": "logo.svg", "theme": "dark", "colors": {"primary": "#112233"}},
            registration={"mode": "token", "reserved_names": ["boss"]},
            retention={"default_lifetime": "30d", "min_lifetime": "12h", "max_lifetime": "1y"},
            minors={"enabled": True},
            push={
                "apps": [
                    {
                        "app_id": "com.acme.chat.*",
                        "platform": "ios",
                        "fcm_project": "acme-chat",
                        "service_account": "fcm.json",
                        "fcm_options": {"apns": {"headers": {"apns-priority": "10"}}},
                    }
                ]
            },
            federation={"enabled": True, "allow": ["127.0.0.1:28448", "[::1]:8448"]},
            analytics={"enabled": True, "rageshake_url": "https://bugs.acme.test/submit"},
            storage={"backend": "s3", "s3_bucket": "acme-media", "max_upload_size": "2G"},
            license={"path": "acme.license"},
            email={"enabled": True, "smtp_host": "smtp.acme.test"},
            calls={"enabled": True, "user_lifetime": "90m"},
            scale={"workers": 2},
        ),
        tmp_path,
    )
    assert spec.server.port == 8443
    assert spec.public_baseurl == "https://matrix.acme.test/"
    assert spec.database == Database(
        engine="postgres", user="synapse", cp_min=2, cp_max=4, name="chat500_acme"
    )
    assert spec.branding.colors.primary == "#112233"
    assert spec.branding.colors.accent == Branding().colors.accent
    assert spec.registration == Registration(mode="token", reserved_names=("boss",))
    assert spec.retention.default_lifetime == 30 * DAY_MS
    assert spec.retention.min_lifetime == 12 * 60 * 60 * 1000
    assert spec.retention.max_lifetime == 365 * DAY_MS
    assert spec.retention.local_media_lifetime is None
    assert spec.minors == Minors(enabled=True)
    (app,) = spec.push.apps
    assert app.platform == "ios" and app.fcm_options == {
        "apns": {"headers": {"apns-priority": "10"}}
    }
    assert spec.federation == Federation(enabled=True, allow=("127.0.0.1:28448", "[::1]:8448"))
    assert spec.analytics == Analytics(enabled=True, rageshake_url="https://bugs.acme.test/submit")
    assert spec.storage == Storage(
        backend="s3", s3_bucket="acme-media", max_upload_size=Size(2 * 1024**3)
    )
    assert spec.license == License(path="acme.license")
    assert spec.email == Email(enabled=True, smtp_host="smtp.acme.test")
    assert spec.calls == Calls(enabled=True, user_lifetime=Duration(90 * 60 * 1000))
    assert spec.scale == Scale(workers=2)


def test_optional_duration_accepts_null_and_a_value(tmp_path: Path) -> None:
    assert load(doc(retention={"local_media_lifetime": None}), tmp_path).retention == Retention()
    spec = load(doc(retention={"local_media_lifetime": "90d"}), tmp_path)
    assert spec.retention.local_media_lifetime == 90 * DAY_MS


def test_a_section_with_every_key_commented_out_means_defaults(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL) + "analytics:\n  # enabled: false\npush:\n"
    spec = load(text, tmp_path)
    assert spec.analytics == Analytics() and spec.push == Push()


def test_postgres_database_name_defaults_from_the_slug(tmp_path: Path) -> None:
    spec = load(
        doc(org={"slug": "big-school"}, database={"engine": "postgres", "user": "u"}), tmp_path
    )
    assert spec.database.name == "chat500_big_school"
    named = load(doc(database={"engine": "postgres", "user": "u", "name": "mine"}), tmp_path)
    assert named.database.name == "mine"


@pytest.mark.parametrize("name", ["company.yaml", "school.yaml"])
def test_examples_validate(name: str) -> None:
    spec = load_spec(REPO / "examples" / name)
    assert spec.base_dir == (REPO / "examples").resolve()
    assert spec.resolve(spec.branding.logo).is_file()


def test_company_example_is_postgres_s3_with_push_email_calls_federation() -> None:
    spec = load_spec(REPO / "examples" / "company.yaml")
    assert spec.database.engine == "postgres" and spec.storage.backend == "s3"
    assert spec.push.apps and spec.email.enabled and spec.calls.enabled
    assert spec.federation.enabled and spec.federation.allow


def test_school_example_has_minors_with_consent_and_short_retention() -> None:
    spec = load_spec(REPO / "examples" / "school.yaml")
    assert spec.minors.enabled and spec.minors.require_guardian_consent
    assert spec.registration.mode in ("token", "admin_only")
    assert spec.retention.max_lifetime <= 90 * DAY_MS
    assert not spec.federation.enabled


# --- unknown keys ----------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_section(tmp_path: Path) -> None:
    document = doc()
    document["registraton"] = {"mode": "token"}
    assert only_problem(document, tmp_path) == (
        "registraton: unknown key (did you mean 'registration'?)"
    )


def test_unknown_nested_key_suggests_the_field(tmp_path: Path) -> None:
    line = only_problem(doc(retention={"max_lifetme": "30d"}), tmp_path)
    assert line == "retention.max_lifetme: unknown key (did you mean 'max_lifetime'?)"


def test_key_from_another_section_points_there(tmp_path: Path) -> None:
    line = only_problem(doc(storage={"smtp_host": "smtp.acme.test"}), tmp_path)
    assert line == "storage.smtp_host: unknown key here (did you mean 'email.smtp_host'?)"


def test_unknown_key_without_a_near_miss_lists_the_valid_keys(tmp_path: Path) -> None:
    line = only_problem(doc(calls={"zzz": 1}), tmp_path)
    assert line.startswith("calls.zzz: unknown key; valid keys in calls: enabled, turn_host")


def test_unknown_key_in_a_list_item(tmp_path: Path) -> None:
    app = {
        "app_id": "a.b",
        "fcm_project": "acme-chat",
        "service_account": "f.json",
        "platfrom": "ios",
    }
    line = only_problem(doc(push={"apps": [app]}), tmp_path)
    assert line == "push.apps[0].platfrom: unknown key (did you mean 'platform'?)"


def test_base_dir_is_not_a_yaml_key(tmp_path: Path) -> None:
    line = only_problem(doc(base_dir="/etc"), tmp_path)
    assert line.startswith("base_dir: unknown key")


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL) + "federation:\n  enabled: false\nfederation:\n  enabled: true\n"
    line = only_problem(text, tmp_path)
    assert line == "federation: given more than once (again at line 8)"


# --- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"server": {"port": "8008"}}, "server.port: expected an integer, got a string ('8008')"),
        ({"server": {"port": True}}, "server.port: expected an integer, got a boolean (true)"),
        ({"federation": {"enabled": "yes please"}}, "federation.enabled: expected true or false"),
        ({"org": {"display_name": 42}}, "org.display_name: expected a string, got an integer (42)"),
        ({"email": "on please"}, "email: expected a mapping, got a string ('on please')"),
        (
            {"registration": {"allowed_email_domains": "acme.test"}},
            "registration.allowed_email_domains: expected a list, got a string",
        ),
        (
            {"federation": {"allow": ["ok.test", 5]}},
            "federation.allow[1]: expected a string, got an integer (5)",
        ),
        ({"push": {"apps": {"app_id": "x"}}}, "push.apps: expected a list, got a mapping"),
        ({"push": {"apps": ["com.acme"]}}, "push.apps[0]: expected a mapping, got a string"),
        ({"server": {"port": None}}, "server.port: has no value (remove the key"),
        ({"branding": {"colors": ["#000000"]}}, "branding.colors: expected a mapping, got a list"),
        (
            {"database": {"engine": "postgress"}},
            "database.engine: must be one of sqlite, postgres (got 'postgress'); "
            "did you mean 'postgres'?",
        ),
        (
            {"registration": {"mode": "Token"}},
            "registration.mode: must be one of admin_only, token, email_domain (got 'Token'); "
            "did you mean 'token'?",
        ),
        ({"branding": {"theme": 1}}, "branding.theme: must be one of light, dark (got 1)"),
    ],
)
def test_wrong_types(tmp_path: Path, sections: dict[str, Any], expected: str) -> None:
    assert only_problem(doc(**sections), tmp_path).startswith(expected)


def test_yaml_dates_in_free_form_options_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(
        doc(push={"apps": [{"app_id": "a.b", "fcm_project": "acme-chat", "service_account": "f"}]})
    )
    text = text.replace(
        "service_account: f", "service_account: f\n    fcm_options: {when: 2024-01-01}"
    )
    line = only_problem(text, tmp_path)
    assert line.startswith("push.apps[0].fcm_options: a date")


def test_required_fields(tmp_path: Path) -> None:
    assert problems({"org": {"slug": "acme"}}, tmp_path) == [
        "org.display_name: required",
        "server: required",
    ]
    line = only_problem(doc(push={"apps": [{"platform": "android"}]}), tmp_path)
    assert line == "push.apps[0].app_id: required"


# --- durations and sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (30, "a duration needs a unit (30 is ambiguous)"),
        ("30 days", "invalid duration '30 days'"),
        ("0d", "must be greater than 0"),
        ([1], "expected a duration string"),
    ],
)
def test_bad_durations_name_the_key(tmp_path: Path, value: object, fragment: str) -> None:
    line = only_problem(doc(retention={"purge_interval": value}), tmp_path)
    assert line.startswith("retention.purge_interval: ") and fragment in line


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("50X", "invalid size '50X'"), ("1.5G", "invalid size"), (0, "must be greater than 0")],
)
def test_bad_sizes_name_the_key(tmp_path: Path, value: object, fragment: str) -> None:
    line = only_problem(doc(storage={"max_upload_size": value}), tmp_path)
    assert line.startswith("storage.max_upload_size: ") and fragment in line


# --- impossible values -----------------------------------------------------------------------


def test_min_retention_above_max(tmp_path: Path) -> None:
    line = only_problem(
        doc(retention={"min_lifetime": "30d", "max_lifetime": "7d", "default_lifetime": "7d"}),
        tmp_path,
    )
    assert line == "retention.max_lifetime: must be >= retention.min_lifetime (30d)"


def test_min_retention_alone_above_the_default_max_blames_min(tmp_path: Path) -> None:
    line = only_problem(doc(retention={"min_lifetime": "5y", "default_lifetime": "5y"}), tmp_path)
    assert line == "retention.min_lifetime: must be <= retention.max_lifetime (1095d)"


def test_default_retention_outside_the_bounds(tmp_path: Path) -> None:
    low = only_problem(doc(retention={"min_lifetime": "7d", "default_lifetime": "1d"}), tmp_path)
    assert low == "retention.default_lifetime: must be >= retention.min_lifetime (7d)"
    high = only_problem(doc(retention={"max_lifetime": "30d"}), tmp_path)
    assert high == "retention.default_lifetime: must be <= retention.max_lifetime (30d)"


@pytest.mark.parametrize(
    "name",
    [
        "chat.acme.test",
        "localhost",
        "acme.test:8448",
        "127.0.0.1:18448",
        "10.0.0.1",
        "[::1]",
        "[2001:db8::1]:8448",
        "xn--bcher-kva.example",
        "a-b.c-d.example",
    ],
)
def test_valid_server_names(tmp_path: Path, name: str) -> None:
    assert server_name_problem(name) is None
    assert load(doc(server={"server_name": name}), tmp_path).server.server_name == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("https://chat.acme.test", "no scheme, path or user"),
        ("chat.acme.test/", "no scheme, path or user"),
        ("@alice:acme.test", "no scheme, path or user"),
        ("chat acme", "no scheme, path or user"),
        ("", "must not be empty"),
        ("chat_acme.test", "not a valid host name"),
        ("-acme.test", "not a valid host name"),
        ("acme..test", "not a valid host name"),
        ("Chat.Acme.Test", "must be lowercase"),
        ("acme.test:0", "invalid port"),
        ("acme.test:70000", "invalid port"),
        ("acme.test:", "invalid port"),
        ("acme.test:80a", "invalid port"),
        ("999.1.1.1", "invalid IPv4"),
        ("1.2.3", "invalid IPv4"),
        ("::1", "brackets"),
        ("[::1", "not a valid Matrix server name"),
        ("[zz::1]:8448", "invalid IPv6"),
        ("[::1]8448", "not a valid Matrix server name"),
        ("a" * 64 + ".test", "not a valid host name"),
    ],
)
def test_invalid_server_names(tmp_path: Path, name: str, fragment: str) -> None:
    line = only_problem(doc(server={"server_name": name}), tmp_path)
    assert line.startswith("server.server_name: ") and fragment in line


@pytest.mark.parametrize(
    "slug", ["Acme", "acme corp", "a", "-acme", "acme-", "1acme", "ac--me", "a" * 33, "acme_corp"]
)
def test_invalid_slugs(tmp_path: Path, slug: str) -> None:
    assert only_problem(doc(org={"slug": slug}), tmp_path).startswith("org.slug: must be 2-32")


def test_missing_logo_is_resolved_against_the_spec_folder(tmp_path: Path) -> None:
    line = only_problem(doc(branding={"logo": "assets/logo.png"}), tmp_path)
    assert line == f"branding.logo: file not found: {tmp_path.resolve() / 'assets/logo.png'}"


def test_logo_must_be_an_image_file(tmp_path: Path) -> None:
    (tmp_path / "logo.txt").write_text("x")
    line = only_problem(doc(branding={"logo": "logo.txt"}), tmp_path)
    assert line.startswith("branding.logo: must be an image file (.png")


def test_postgres_without_credentials(tmp_path: Path) -> None:
    line = only_problem(doc(database={"engine": "postgres"}), tmp_path)
    assert line == "database.user: required when database.engine is postgres"


def test_postgres_settings_on_sqlite_are_reported(tmp_path: Path) -> None:
    assert problems(doc(database={"host": "db.acme.test", "user": "synapse"}), tmp_path) == [
        "database.host: only used when database.engine is postgres",
        "database.user: only used when database.engine is postgres",
    ]
    line = only_problem(doc(database={"engine": "postgres", "user": "u", "path": "x.db"}), tmp_path)
    assert line == "database.path: only used when database.engine is sqlite"


def test_connection_pool_bounds(tmp_path: Path) -> None:
    line = only_problem(
        doc(database={"engine": "postgres", "user": "u", "cp_min": 20, "cp_max": 10}), tmp_path
    )
    assert line == "database.cp_max: must be >= database.cp_min (20)"


def test_email_domain_registration_needs_domains_and_email(tmp_path: Path) -> None:
    assert problems(doc(registration={"mode": "email_domain"}), tmp_path) == [
        "registration.allowed_email_domains: required when registration.mode is email_domain",
        "email.enabled: must be true when registration.mode is email_domain "
        "(addresses are verified by email)",
    ]
    line = only_problem(doc(registration={"allowed_email_domains": ["acme.test"]}), tmp_path)
    assert line == (
        "registration.allowed_email_domains: only used when registration.mode is email_domain"
    )


def test_email_domains_must_be_domains(tmp_path: Path) -> None:
    found = problems(
        doc(
            registration={
                "mode": "email_domain",
                "allowed_email_domains": ["@acme.test", "ok.test"],
            },
            email={"enabled": True, "smtp_host": "smtp.acme.test"},
        ),
        tmp_path,
    )
    assert found == [
        "registration.allowed_email_domains[0]: must be a domain without '@' (got '@acme.test')"
    ]


def test_minors_require_guardian_consent(tmp_path: Path) -> None:
    line = only_problem(doc(minors={"enabled": True, "require_guardian_consent": False}), tmp_path)
    assert line.startswith("minors.require_guardian_consent: must be true when minors.enabled")
    assert "privacy policy §13" in line


def test_s3_needs_a_bucket_and_s3_keys_need_s3(tmp_path: Path) -> None:
    line = only_problem(doc(storage={"backend": "s3"}), tmp_path)
    assert line == "storage.s3_bucket: required when storage.backend is s3"
    line = only_problem(doc(storage={"s3_bucket": "acme-media"}), tmp_path)
    assert line == "storage.s3_bucket: only used when storage.backend is s3"
    line = only_problem(doc(storage={"backend": "s3", "s3_bucket": "Acme_Media"}), tmp_path)
    assert line.startswith("storage.s3_bucket: must be an S3 bucket name")


def test_analytics_keys_only_when_enabled(tmp_path: Path) -> None:
    found = problems(
        doc(analytics={"posthog_project_api_key": "phc_x", "posthog_api_host": "https://ph.test"}),
        tmp_path,
    )
    assert found == [
        "analytics.posthog_project_api_key: only used when analytics.enabled is true",
        "analytics.posthog_api_host: only used when analytics.enabled is true",
    ]
    line = only_problem(doc(analytics={"enabled": True}), tmp_path)
    assert line.startswith("analytics.enabled: true but no endpoint given")
    line = only_problem(doc(analytics={"enabled": True, "posthog_project_api_key": "k"}), tmp_path)
    assert line.startswith("analytics.posthog_api_host: required with posthog_project_api_key")


def test_workers_need_postgres(tmp_path: Path) -> None:
    line = only_problem(doc(scale={"workers": 2}), tmp_path)
    assert (
        line
        == "scale.workers: needs database.engine: postgres (Synapse workers cannot share SQLite)"
    )
    line = only_problem(doc(scale={"workers": -1}), tmp_path)
    assert line == "scale.workers: must be between 0 and 64 (got -1)"


@pytest.mark.parametrize("colour", ["blue", "#fff", "#12345g", "0b5cad", "#0b5cad00"])
def test_colours_are_rrggbb(tmp_path: Path, colour: str) -> None:
    line = only_problem(doc(branding={"colors": {"accent": colour}}), tmp_path)
    assert line == f"branding.colors.accent: must be a #rrggbb colour (got {colour!r})"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("server", "public_baseurl"),
        ("server", "web_client_url"),
        ("branding", "privacy_policy_url"),
        ("branding", "terms_url"),
        ("branding", "support_url"),
        ("push", "gateway_url"),
        ("push", "fcm_base_url"),
        ("storage", "s3_endpoint_url"),
    ],
)
@pytest.mark.parametrize("url", ["ftp://acme.test/", "acme.test/privacy", "https://", "http://a b"])
def test_urls_are_http_or_https(tmp_path: Path, section: str, key: str, url: str) -> None:
    sections: dict[str, Any] = {section: {key: url}}
    if section == "storage":
        sections["storage"].update(backend="s3", s3_bucket="acme-media")
    line = only_problem(doc(**sections), tmp_path)
    assert line.startswith(f"{section}.{key}: ") and "http" in line


def test_ports_are_checked(tmp_path: Path) -> None:
    assert problems(doc(server={"port": 0}, federation={"port": 70000}), tmp_path) == [
        "server.port: must be between 1 and 65535 (got 0)",
        "federation.port: must be between 1 and 65535 (got 70000)",
    ]


def _app(app_id: str, **extra: Any) -> dict[str, Any]:
    return {"app_id": app_id, "fcm_project": "acme-chat", "service_account": "fcm.json", **extra}


def test_push_app_ids_are_unique(tmp_path: Path) -> None:
    apps = [_app("com.acme.chat"), _app("com.acme.other"), _app("com.acme.chat", platform="ios")]
    line = only_problem(doc(push={"apps": apps}), tmp_path)
    assert line == "push.apps[2].app_id: duplicate of push.apps[0].app_id"


def test_push_apps_need_fcm_credentials(tmp_path: Path) -> None:
    found = problems(doc(push={"apps": [{"app_id": "com.acme.chat"}]}), tmp_path)
    assert found == [
        "push.apps[0].fcm_project: required (the gateway sends through FCM HTTP v1)",
        "push.apps[0].service_account: required (the gateway sends through FCM HTTP v1)",
    ]


def test_push_app_fields_are_checked(tmp_path: Path) -> None:
    apps = [_app("com acme"), _app("com.acme.ok", fcm_project="Acme Chat", max_in_flight=0)]
    found = problems(doc(push={"apps": apps}), tmp_path)
    assert [line.split(":")[0] for line in found] == [
        "push.apps[0].app_id",
        "push.apps[1].fcm_project",
        "push.apps[1].max_in_flight",
    ]


def test_federation_allow_list(tmp_path: Path) -> None:
    line = only_problem(
        doc(federation={"enabled": True, "allow": ["ok.test", "bad name"]}), tmp_path
    )
    assert line.startswith("federation.allow[1]: is not a valid Matrix server name")
    line = only_problem(doc(federation={"allow": ["ok.test"]}), tmp_path)
    assert line == "federation.allow: only used when federation.enabled is true"
    line = only_problem(doc(federation={"enabled": True}), tmp_path)
    assert line.startswith("federation.allow: must name at least one server")
    line = only_problem(doc(federation={"enabled": True, "allow": ["chat.acme.test"]}), tmp_path)
    assert line == "federation.allow[0]: is this server's own name (chat.acme.test)"
    line = only_problem(doc(federation={"enabled": True, "allow": ["a.test", "a.test"]}), tmp_path)
    assert line == "federation.allow[1]: 'a.test' is already listed at federation.allow[0]"


def test_email_needs_a_relay_and_paired_credentials(tmp_path: Path) -> None:
    assert only_problem(doc(email={"enabled": True}), tmp_path) == (
        "email.smtp_host: required when email.enabled is true"
    )
    line = only_problem(
        doc(email={"enabled": True, "smtp_host": "smtp.acme.test", "smtp_user": "u"}), tmp_path
    )
    assert line == "email.smtp_password_file: required with email.smtp_user"
    line = only_problem(doc(email={"notif_from": "not an address"}), tmp_path)
    assert line.startswith("email.notif_from: must be an address or 'Name <address>'")


def test_other_field_checks(tmp_path: Path) -> None:
    found = problems(
        doc(
            org={"display_name": "  "},
            server={"bind_address": "everywhere", "admin_contact": "call Bob"},
            branding={"support_email": "help", "android_app_id": "chat", "ios_bundle_id": "x y"},
            registration={"reserved_names": ["Admin", "ok"], "refused_message": ""},
            push={"listen_host": "localhost", "redis_url": "http://r", "metrics_port": 5000},
            calls={"enabled": True, "turn_port": 3478, "turn_tls_port": 3478},
        ),
        tmp_path,
    )
    assert [line.split(":")[0] for line in found] == [
        "org.display_name",
        "server.bind_address",
        "server.admin_contact",
        "branding.support_email",
        "branding.android_app_id",
        "branding.ios_bundle_id",
        "registration.reserved_names[0]",
        "registration.refused_message",
        "push.listen_host",
        "push.redis_url",
        "push.metrics_port",
        "calls.turn_tls_port",
    ]


# --- reporting -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    document = doc(
        org={"slug": "Acme Corp"},
        server={"server_name": "https://chat.acme.test", "port": "8008"},
        database={"engine": "postgres"},
        branding={"logo": "missing.png", "colors": {"primary": "blue"}},
        retention={"min_lifetime": "30d", "max_lifetime": "7d", "purge_interval": 12},
        storage={"max_upload_size": "50X"},
    )
    document["registraton"] = {}
    found = problems(document, tmp_path)
    assert len(found) == 10, found
    assert all(LINE.match(line) for line in found), found
    assert {line.split(":")[0] for line in found} == {
        "registraton",
        "org.slug",
        "server.server_name",
        "server.port",
        "database.user",
        "branding.logo",
        "branding.colors.primary",
        "retention.purge_interval",
        "retention.max_lifetime",
        "storage.max_upload_size",
    }


def test_a_broken_field_does_not_cascade_into_cross_field_rules(tmp_path: Path) -> None:
    line = only_problem(
        doc(retention={"min_lifetime": "lots", "max_lifetime": "7d", "default_lifetime": "7d"}),
        tmp_path,
    )
    assert line.startswith("retention.min_lifetime: invalid duration 'lots'")
    line = only_problem(doc(database={"engine": "postgress"}), tmp_path)
    assert line.startswith("database.engine: must be one of")


def test_yaml_syntax_error_is_one_line_with_position(tmp_path: Path) -> None:
    line = only_problem("org:\n  slug: acme\n  display_name: [Acme\nserver: {}\n", tmp_path)
    assert re.fullmatch(r"spec: YAML syntax error at line \d+, column \d+: .+", line), line
    tabs = only_problem("org:\n\tslug: acme\n", tmp_path)
    assert tabs.startswith("spec: YAML syntax error at line 2, column 1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "spec: empty file; expected a mapping with at least org and server"),
        ("# only a comment\n", "spec: empty file; expected a mapping with at least org and server"),
        ("- org\n- server\n", "spec: expected a mapping of sections at the top, got a list"),
        ("acme\n", "spec: expected a mapping of sections at the top, got a string ('acme')"),
    ],
)
def test_empty_or_non_mapping_spec(tmp_path: Path, text: str, expected: str) -> None:
    assert only_problem(text, tmp_path) == expected


def test_unreadable_spec_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(binary)


def _as_yaml(value: Any, hint: Any) -> Any:
    """A model value written the way a spec author would (durations and sizes with units)."""
    if dataclasses.is_dataclass(value):
        hints = get_type_hints(type(value))
        return {
            f.name: _as_yaml(getattr(value, f.name), hints[f.name])
            for f in dataclasses.fields(value)
            if f.name != "base_dir"
        }
    if hint is Duration or (value is not None and Duration in get_args(hint)):
        return format_duration(value)
    if hint is Size:
        return format_size(value)
    if isinstance(value, tuple):
        item_hint = get_args(hint)[0]
        return [_as_yaml(item, item_hint) for item in value]
    return value


def test_every_model_field_round_trips_through_yaml(tmp_path: Path) -> None:
    """Every field of the model is a YAML key the loader reads back to the same value."""
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    spec = load(
        doc(
            branding={"logo": "logo.png"},
            retention={"local_media_lifetime": "45d"},
            push={"apps": [{"app_id": "a.b", "fcm_project": "acme-chat", "service_account": "f"}]},
        ),
        tmp_path,
    )
    document = _as_yaml(spec, Spec)
    assert document["retention"]["local_media_lifetime"] == "45d"
    assert document["storage"]["max_upload_size"] == "50M"
    assert load(document, tmp_path) == spec


def test_postgres_defaults_written_out_on_sqlite_are_harmless(tmp_path: Path) -> None:
    spec = load(doc(database={"engine": "sqlite", "host": "127.0.0.1", "port": 5432}), tmp_path)
    assert spec.database == Database()


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    app = "{app_id: a.b, fcm_project: acme-chat, service_account: f.json}"
    text = yaml.safe_dump(MINIMAL) + (
        "push:\n"
        "  apps:\n"
        f"    - &base {app}\n"
        "    - <<: *base\n"
        "      app_id: a.c\n"
        "      platform: ios\n"
    )
    spec = load(text, tmp_path)
    assert [(a.app_id, a.platform) for a in spec.push.apps] == [("a.b", "android"), ("a.c", "ios")]


def test_dotted_keys_are_told_to_nest(tmp_path: Path) -> None:
    line = only_problem(doc(**{"retention.purge_interval": "1h"}), tmp_path)
    assert line == (
        "retention.purge_interval: unknown key (nest it: 'purge_interval' goes under 'retention')"
    )


def test_app_key_one_level_too_high_points_into_the_list(tmp_path: Path) -> None:
    line = only_problem(doc(push={"fcm_project": "acme-chat"}), tmp_path)
    assert line == "push.fcm_project: unknown key here (did you mean 'push.apps[].fcm_project'?)"


def test_free_form_options_are_plain_json_and_checked_for_duplicates(tmp_path: Path) -> None:
    app = "{app_id: a.b, fcm_project: acme-chat, service_account: f.json, "
    head = yaml.safe_dump(MINIMAL) + "push:\n  apps:\n"
    good = head + f"    - {app}fcm_options: {{a: {{b: [1]}}}}}}\n"
    (loaded,) = load(good, tmp_path).push.apps
    assert loaded.fcm_options == {"a": {"b": [1]}}
    assert type(loaded.fcm_options["a"]) is dict
    bad = head + f"    - {app}fcm_options: {{a: 1, a: 2}}}}\n"
    line = only_problem(bad, tmp_path)
    assert line == "push.apps[0].fcm_options.a: given more than once (again at line 8)"
