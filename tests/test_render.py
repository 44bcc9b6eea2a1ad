"""``chat500 render``: a complete bundle, deterministic, secrets kept, all or nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner.cli import cli, main
from provisioner.errors import Chat500Error
from provisioner.render import render
from provisioner.spec_loader import load_spec
from tests.harness.homeserver import deep_merge, org_spec_document


def _cli() -> Any:
    from provisioner.cli import _register_commands

    _register_commands()
    return cli


def write_spec(directory: Path, overrides: dict[str, Any] | None = None, port: int = 8008) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = deep_merge(org_spec_document(directory, port, "chat.test"), overrides or {})
    path = directory / "testorg.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec")


def test_bundle_has_every_part_of_the_design(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    files = set(snapshot(out))
    for expected in (
        "synapse/homeserver.yaml",
        "synapse/log.config",
        "client/config.json",
        "well-known/matrix/client",
        "well-known/matrix/support",
        "pushgw/pushgw.yaml",
        "nginx/127.0.0.1.conf",
        "systemd/chat500-synapse-testorg.service",
        "systemd/chat500-pushgw-testorg.service",
        "mobile/build-manifest.json",
        "secrets/macaroon_secret_key",
        "secrets/form_secret",
        "secrets/registration_shared_secret",
        "secrets/db_password",
        "secrets/signing.key",
    ):
        assert expected in files, expected
    assert "well-known/matrix/server" not in files  # federation is off by default
    for name, (_content, mode) in snapshot(out).items():
        if name.startswith("secrets/"):
            assert mode == 0o600, name
    assert stat.S_IMODE((out / "secrets").stat().st_mode) == 0o700


def test_rerender_is_byte_identical_and_keeps_secrets(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    spec = load_spec(spec_path)
    render(spec, out)
    first = snapshot(out)
    result = render(spec, out)
    assert result.changed == []
    assert snapshot(out) == first


def test_changed_spec_rewrites_config_but_never_secrets(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    before = snapshot(out)
    changed = write_spec(spec_path.parent, {"branding": {"brand": "Renamed Chat"}})
    render(load_spec(changed), out)
    after = snapshot(out)
    for name in before:
        if name.startswith("secrets/"):
            assert after[name] == before[name], name
    assert json.loads(after["client/config.json"][0])["brand"] == "Renamed Chat"


def test_check_reports_a_diff_and_writes_nothing(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    runner = CliRunner()
    first = runner.invoke(_cli(), ["render", str(spec_path), "--out", str(out)])
    assert first.exit_code == 0, first.output
    clean = runner.invoke(_cli(), ["render", str(spec_path), "--out", str(out), "--check"])
    assert clean.exit_code == 0 and clean.stdout == ""

    write_spec(spec_path.parent, {"branding": {"brand": "Another Brand"}})
    before = snapshot(out)
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(spec_path), "--out", str(out), "--check"])
    assert exit_info.value.code == 1
    assert snapshot(out) == before


def test_check_diff_names_the_changed_lines(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    write_spec(spec_path.parent, {"branding": {"brand": "Another Brand"}})
    result = render(load_spec(spec_path), out, check=True)
    assert "client/config.json" in result.changed
    assert '+  "brand": "Another Brand",' in result.diff
    assert "secrets/" not in result.diff


def test_check_on_a_new_dir_lists_secrets_without_their_values(
    spec_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "never-written"
    result = render(load_spec(spec_path), out, check=True)
    assert not out.exists()
    assert "secrets/macaroon_secret_key" in result.changed
    assert "content not shown" in result.diff
    assert list(tmp_path.glob(".never-written.render-*")) == []


def test_a_refused_render_changes_nothing(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    spec = load_spec(spec_path)
    render(spec, out)
    before = snapshot(out)
    license_file = spec.license_path
    document = json.loads(license_file.read_text())
    document["seats"] = int(document["seats"]) + 1000  # an edited license no longer verifies
    license_file.write_text(json.dumps(document))
    with pytest.raises(Chat500Error):
        render(load_spec(spec_path), out)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.render-")] == []


def test_privacy_defaults_in_homeserver_yaml(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    assert config["report_stats"] is False
    assert config["push"]["include_content"] is False
    assert config["federation_domain_whitelist"] == []
    assert config["trusted_key_servers"] == []
    assert config["user_directory"]["search_all_users"] is False
    assert config["limit_profile_requests_to_users_who_share_rooms"] is True
    assert config["require_auth_for_profile_requests"] is True
    assert config["allow_public_rooms_without_auth"] is False
    assert config["url_preview_enabled"] is False
    assert config["enable_registration"] is False
    assert config["allow_guest_access"] is False
    assert config["user_ips_max_age"] == 28 * 24 * 3600 * 1000
    assert config["redaction_retention_period"] == 7 * 24 * 3600 * 1000
    assert config["retention"]["enabled"] is True
    for listener in config["listeners"]:
        for resource in listener["resources"]:
            assert "federation" not in resource["names"]
    # Secrets are referenced by path, never inlined.
    for key in ("macaroon_secret_key", "form_secret", "registration_shared_secret"):
        assert key not in config and f"{key}_path" in config
    modules = [entry["module"] for entry in config["modules"]]
    assert any("registration" in m for m in modules)
    assert any("licensing" in m for m in modules)


def test_client_config_and_well_known_carry_the_brand(tmp_path: Path) -> None:
    logo = tmp_path / "spec" / "logo.png"
    logo.parent.mkdir(parents=True)
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    spec_path = write_spec(
        tmp_path / "spec",
        {
            "branding": {
                "brand": "Acme Chat",
                "logo": "logo.png",
                "theme": "dark",
                "colors": {"primary": "#112233", "accent": "#445566"},
                "privacy_policy_url": "https://acme.test/privacy",
                "terms_url": "https://acme.test/terms",
                "support_url": "https://acme.test/help",
                "support_email": "help@acme.test",
            }
        },
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = json.loads((out / "client/config.json").read_text())
    assert config["brand"] == "Acme Chat"
    assert config["default_server_config"]["m.homeserver"]["server_name"] == "chat.test"
    assert config["disable_custom_urls"] is True and config["disable_guests"] is True
    assert config["default_theme"] == "dark"
    assert config["custom_themes"][0]["colors"]["primary-color"] == "#112233"
    assert {"text": "Privacy", "url": "https://acme.test/privacy"} in config["branding"][
        "auth_footer_links"
    ]
    assert (out / "client" / config["branding"]["auth_header_logo_url"]).read_bytes() == (
        logo.read_bytes()
    )
    assert "posthog" not in config and "bug_report_endpoint_url" not in config
    assert "mobile_builds" in config

    client = json.loads((out / "well-known/matrix/client").read_text())
    assert client["m.homeserver"]["base_url"] == "http://127.0.0.1:8008"
    support = json.loads((out / "well-known/matrix/support").read_text())
    assert support["contacts"][0]["email_address"] == "help@acme.test"
    manifest = json.loads((out / "mobile/build-manifest.json").read_text())
    assert manifest["display_name"] == "Acme Chat"
    assert manifest["colors"]["primary"] == "#112233"


def test_analytics_only_when_the_org_turns_it_on(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec",
        {
            "analytics": {
                "enabled": True,
                "posthog_project_api_key": "phc_test",
                "posthog_api_host": "https://analytics.acme.test",
                "rageshake_url": "https://rageshake.acme.test/submit",
            }
        },
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = json.loads((out / "client/config.json").read_text())
    assert config["posthog"]["api_host"] == "https://analytics.acme.test"
    assert config["bug_report_endpoint_url"] == "https://rageshake.acme.test/submit"


def test_calls_render_turn_and_coturn(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec", {"calls": {"enabled": True}})
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    assert config["turn_uris"][0].startswith("turn:")
    assert config["turn_shared_secret_path"].endswith("secrets/turn_shared_secret")
    coturn = out / "coturn/turnserver.conf"
    secret = (out / "secrets/turn_shared_secret").read_text().strip()
    assert f"static-auth-secret={secret}" in coturn.read_text()
    assert stat.S_IMODE(coturn.stat().st_mode) == 0o600


def test_federation_allow_list(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec", {"federation": {"enabled": True, "allow": ["partner.test"]}}
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    assert config["federation_domain_whitelist"] == ["partner.test"]
    assert json.loads((out / "well-known/matrix/server").read_text()) == {
        "m.server": "chat.test:8448"
    }


def test_postgres_password_goes_to_a_passfile(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec",
        {"database": {"engine": "postgres", "user": "synapse", "name": "acme"}},
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    args = config["database"]["args"]
    assert "password" not in args
    passfile = Path(args["passfile"])
    password = (out / "secrets/db_password").read_text().strip()
    assert passfile.read_text() == f"127.0.0.1:5432:acme:synapse:{password}\n"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600


def test_workers_render_worker_configs_and_redis(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec",
        {"database": {"engine": "postgres", "user": "synapse"}, "scale": {"workers": 2}},
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    assert config["redis"]["enabled"] is True
    assert "main" in config["instance_map"]
    worker = yaml.safe_load((out / "workers/client_worker2.yaml").read_text())
    assert worker["worker_app"] == "synapse.app.generic_worker"
    assert (out / "systemd/chat500-synapse-testorg-client_worker1.service").exists()
    assert "18100" in (out / "nginx/127.0.0.1.conf").read_text()


def test_many_orgs_render_into_one_dir_each(tmp_path: Path) -> None:
    first = write_spec(tmp_path / "one")
    second_dir = tmp_path / "two"
    second_dir.mkdir()
    document = deep_merge(
        org_spec_document(second_dir, 8010, "chat.two.test"),
        {"org": {"slug": "second", "display_name": "Second"}},
    )
    from synapse_modules.licensing.evaluation import write_evaluation_license

    evaluation = write_evaluation_license(second_dir, "second", "Second", "chat.two.test")
    document["license"] = {
        "path": str(evaluation.license_path),
        "vendor_public_key": str(evaluation.public_key_path),
    }
    second = second_dir / "second.yaml"
    second.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(
        _cli(), ["render", str(first), str(second), "--out", str(tmp_path / "deploy")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "deploy/testorg/synapse/homeserver.yaml").exists()
    assert (tmp_path / "deploy/second/synapse/homeserver.yaml").exists()


def test_render_of_a_broken_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("org: {slug: x, display_name: X}\nserver: {server_name: 'not a name'}\n")
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "chat500"
    proc = subprocess.run(
        [str(exe), "render", str(bad), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "server.server_name" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_smtp_password_stays_out_of_homeserver_yaml(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "smtp-password").write_text("s3cret-smtp\n")
    spec_path = write_spec(
        spec_dir,
        {
            "email": {
                "enabled": True,
                "smtp_host": "smtp.acme.test",
                "smtp_user": "chat",
                "smtp_password_file": "smtp-password",
                "notif_from": "Acme Chat <noreply@acme.test>",
            }
        },
    )
    out = tmp_path / "bundle"
    render(load_spec(spec_path), out)
    assert "s3cret-smtp" not in (out / "synapse/homeserver.yaml").read_text()
    email = yaml.safe_load((out / "secrets/email.yaml").read_text())["email"]
    assert email["smtp_pass"] == "s3cret-smtp"
    assert email["app_name"] == "Test Org"
    assert stat.S_IMODE((out / "secrets/email.yaml").stat().st_mode) == 0o600
    unit = (out / "systemd/chat500-synapse-testorg.service").read_text()
    assert f"--config-path {out}/secrets/email.yaml" in unit
    check = render(load_spec(spec_path), out, check=True)
    assert "s3cret-smtp" not in check.diff


def test_a_missing_secret_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec",
        {"database": {"engine": "postgres", "user": "synapse", "password_file": "nope"}},
    )
    with pytest.raises(Chat500Error, match=r"^database.password_file: cannot read .*nope"):
        render(load_spec(spec_path), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_non_ascii_names_render_as_text(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path / "spec",
        {"org": {"display_name": "École Öberg"}, "branding": {"brand": "Élan"}},
    )
    render(load_spec(spec_path), tmp_path / "bundle")
    assert "Élan" in json.loads((tmp_path / "bundle/client/config.json").read_text())["brand"]


@pytest.mark.parametrize("example", ["company.yaml", "school.yaml"])
def test_examples_render_into_bootable_configs(example: str, tmp_path: Path) -> None:
    """The shipped examples render once an org has its license and its own secret files."""
    import shutil

    from synapse_modules.licensing.evaluation import write_evaluation_license

    examples = Path(__file__).resolve().parent.parent / "examples"
    work = tmp_path / "examples"
    shutil.copytree(examples, work)
    spec = load_spec(work / example)
    evaluation = write_evaluation_license(
        work, spec.org.slug, spec.org.display_name, spec.server.server_name
    )
    document = yaml.safe_load((work / example).read_text())
    document["license"] = {
        "path": str(evaluation.license_path),
        "vendor_public_key": str(evaluation.public_key_path),
    }
    for path in (spec.email.smtp_password_file, spec.database.password_file):
        if path:
            spec.resolve(path).parent.mkdir(parents=True, exist_ok=True)
            spec.resolve(path).write_text("org-provided-secret\n")
    (work / example).write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "bundle"
    render(load_spec(work / example), out)
    config = yaml.safe_load((out / "synapse/homeserver.yaml").read_text())
    assert config["server_name"] == spec.server.server_name
    if spec.storage.backend == "s3":
        provider = config["media_storage_providers"][0]
        assert provider["module"] == "s3_storage_provider.S3StorageProviderBackend"
        assert provider["config"]["bucket"] == spec.storage.s3_bucket
