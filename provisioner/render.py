"""``chat500 render``: one spec in, one complete bundle out, all or nothing.

The bundle is built in a staging directory beside the target, checked with Synapse's own config
parser there, and only then moved into place file by file with atomic renames. Secrets and the
signing key are created once and carried over byte for byte; everything else is a pure function
of the spec, so rendering twice gives the same bytes.
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provisioner import render_client
from provisioner.errors import Chat500Error
from provisioner.files import write_atomically
from provisioner.render_license import license_part
from provisioner.render_parts import RenderPart
from provisioner.render_policy import policy_part
from provisioner.render_push import push_part
from provisioner.secrets import SECRETS_DIR, BundleSecrets, copy_secrets, ensure_secrets
from provisioner.spec import Spec
from provisioner.synapse_check import check_homeserver_config
from provisioner.templates import render_template

HOMESERVER = "synapse/homeserver.yaml"
# Synapse has no *_path form of smtp_pass, so an authenticated SMTP setup goes in its own 0600
# config file, layered over homeserver.yaml wherever Synapse is started.
EMAIL_SECRETS = "secrets/email.yaml"
FIRST_WORKER_PORT = 18100
REPLICATION_PORT = 9093
SENSITIVE_FILES = frozenset({"coturn/turnserver.conf", "secrets/pgpass"})


@dataclass
class Bundle:
    """The rendered files (bundle-relative path → bytes), and what to tell the user."""

    files: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    private: set[str] = field(default_factory=set)  # written 0600


@dataclass
class RenderResult:
    out_dir: Path
    changed: list[str]
    warnings: list[str]
    diff: str = ""


def _db_name(spec: Spec) -> str:
    return spec.database.name or f"chat500_{spec.org.slug.replace('-', '_')}"


def _workers(spec: Spec) -> list[dict[str, Any]]:
    return [
        {"name": f"client_worker{i + 1}", "port": FIRST_WORKER_PORT + i}
        for i in range(spec.scale.workers)
    ]


def _read_secret_file(spec: Spec, field_name: str, value: str) -> str:
    """A secret the org keeps in its own file; validated specs may be rendered on another host."""
    path = spec.resolve(value)
    try:
        return path.read_text().strip()
    except OSError as err:
        raise Chat500Error(f"{field_name}: cannot read {path}: {err.strerror}") from err


def synapse_config_files(bundle_dir: Path) -> list[Path]:
    """The config files Synapse is started with, in order (later files win)."""
    files = [bundle_dir / HOMESERVER, bundle_dir / EMAIL_SECRETS]
    return [files[0]] + [path for path in files[1:] if path.exists()]


def _merge_parts(base_text: str, parts: list[tuple[str, RenderPart]]) -> str:
    """Append each part's homeserver keys to the templated base, refusing double definitions."""
    base = yaml.safe_load(base_text) or {}
    owner: dict[str, str] = {key: "core" for key in base}
    modules: list[Any] = []
    sections: list[str] = []
    for name, part in parts:
        own: dict[str, Any] = {}
        for key, value in part.homeserver.items():
            if key == "modules":
                modules.extend(value)
                continue
            if key in owner:
                raise Chat500Error(
                    f"render: homeserver key {key!r} is set by both {owner[key]} and {name}"
                )
            owner[key] = name
            own[key] = value
        if own:
            sections.append(f"\n# --- {name} ---\n" + yaml.safe_dump(own, sort_keys=True))
    if modules:
        sections.append(
            "\n# --- Chat500MG policy modules ---\n"
            + yaml.safe_dump({"modules": modules}, sort_keys=False)
        )
    return base_text.rstrip("\n") + "\n" + "".join(sections)


def build_bundle(spec: Spec, root: Path, secrets: BundleSecrets) -> Bundle:
    """Every generated file of the bundle, with paths inside them pointing at ``root``."""
    bundle = Bundle()
    workers = _workers(spec)
    turn_host = spec.calls.turn_host or spec.server.server_name.split(":")[0]
    context: dict[str, Any] = {
        "spec": spec,
        "root": str(root),
        "web_client_url": spec.server.web_client_url or spec.public_baseurl,
        "db_name": _db_name(spec),
        "sqlite_path": str(spec.resolve(spec.database.path))
        if spec.database.path
        else f"{root}/data/homeserver.db",
        "media_path": str(spec.resolve(spec.storage.media_path))
        if spec.storage.media_path
        else f"{root}/data/media_store",
        "pgpass_path": f"{root}/secrets/pgpass",
        "notif_from": spec.email.notif_from
        or f"{spec.brand} <noreply@{spec.server.server_name.split(':')[0]}>",
        "workers": workers,
        "replication_port": REPLICATION_PORT,
        "turn_host": turn_host,
        "turn_secret": secrets["turn_shared_secret"],
        "host": spec.public_baseurl.split("://", 1)[-1].split("/", 1)[0].split(":")[0],
        "upstream": spec.org.slug.replace("-", "_"),
        "python": sys.executable,
        "bindir": str(Path(sys.executable).parent),
        "log_name": "homeserver",
        "email_in_secrets": spec.email.enabled and bool(spec.email.smtp_user),
        "smtp_password": "",
    }
    if context["email_in_secrets"]:
        context["smtp_password"] = _read_secret_file(
            spec, "email.smtp_password_file", spec.email.smtp_password_file
        )
        context["synapse_extra_args"] = f" --config-path {root}/{EMAIL_SECRETS}"
    else:
        context["synapse_extra_args"] = ""

    def add(path: str, text: str, private: bool = False) -> None:
        bundle.files[path] = text.encode("utf-8")
        if private:
            bundle.private.add(path)

    parts = [
        ("policy", policy_part(spec)),
        ("license", license_part(spec, root)),
        ("push", push_part(spec, root)),
    ]
    base = render_template("homeserver.yaml.j2", context)
    add(HOMESERVER, _merge_parts(base, parts))
    add("synapse/log.config", render_template("log.config.j2", context))
    if context["email_in_secrets"]:
        add(EMAIL_SECRETS, render_template("email.yaml.j2", context), True)
    for _name, part in parts:
        bundle.warnings.extend(part.warnings)
        for path, content in part.files.items():
            bundle.files[path] = content.encode("utf-8") if isinstance(content, str) else content

    if spec.database.engine == "postgres":
        if spec.database.password_file:
            password = _read_secret_file(
                spec, "database.password_file", spec.database.password_file
            )
        else:
            password = secrets["db_password"]
        db = spec.database
        add("secrets/pgpass", f"{db.host}:{db.port}:{_db_name(spec)}:{db.user}:{password}\n", True)

    add("client/config.json", render_client.to_json(render_client.element_config(spec)))
    if spec.branding.logo:
        logo = spec.resolve(spec.branding.logo)
        bundle.files[f"client/branding/{render_client.logo_file_name(spec)}"] = logo.read_bytes()
    documents = {
        "well-known/matrix/client": render_client.well_known_client(spec),
        "well-known/matrix/support": render_client.well_known_support(spec),
        "mobile/build-manifest.json": render_client.mobile_manifest(spec),
    }
    if spec.federation.enabled:
        documents["well-known/matrix/server"] = render_client.well_known_server(spec)
    for path, document in documents.items():
        add(path, render_client.to_json(document))

    add(f"nginx/{context['host']}.conf", render_template("nginx.conf.j2", context))
    slug = spec.org.slug
    add(f"systemd/chat500-synapse-{slug}.service", render_template("synapse.service.j2", context))
    if spec.push.enabled:
        add(f"systemd/chat500-pushgw-{slug}.service", render_template("pushgw.service.j2", context))
    for worker in workers:
        worker_context = {**context, "worker": worker, "log_name": worker["name"]}
        add(f"workers/{worker['name']}.yaml", render_template("worker.yaml.j2", worker_context))
        add(
            f"workers/{worker['name']}.log.config",
            render_template("log.config.j2", worker_context),
        )
        add(
            f"systemd/chat500-synapse-{slug}-{worker['name']}.service",
            render_template("worker.service.j2", worker_context),
        )
    if spec.calls.enabled:
        add("coturn/turnserver.conf", render_template("turnserver.conf.j2", context), True)
    return bundle


def _write_file(path: Path, content: bytes, private: bool) -> None:
    write_atomically(path, content, 0o600 if private else 0o644)


def _diff(out_dir: Path, bundle: Bundle, new_secrets: list[str]) -> tuple[list[str], str]:
    changed: list[str] = []
    chunks: list[str] = []
    for rel in sorted(bundle.files):
        target = out_dir / rel
        old = target.read_bytes() if target.exists() else None
        new = bundle.files[rel]
        if old == new:
            continue
        changed.append(rel)
        if rel in bundle.private or rel.startswith(SECRETS_DIR + "/"):
            chunks.append(f"--- {rel}\n+++ {rel}\n(secret content not shown)\n")
            continue
        try:
            old_lines = old.decode("utf-8").splitlines(keepends=True) if old is not None else []
            new_lines = new.decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            chunks.append(f"Binary file {rel} differs\n")
            continue
        chunks.append(
            "".join(
                difflib.unified_diff(
                    old_lines,
                    new_lines,
                    fromfile=f"a/{rel}" if old is not None else "/dev/null",
                    tofile=f"b/{rel}",
                )
            )
        )
    for rel in new_secrets:
        changed.append(rel)
        chunks.append(f"+++ {rel}\n(new secret, generated once; content not shown)\n")
    return changed, "".join(chunks)


def render(spec: Spec, out_dir: Path, *, check: bool = False) -> RenderResult:
    """Render ``spec`` into ``out_dir``; with ``check``, only report what would change."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.render-"))
    try:
        if out_dir.exists():
            copy_secrets(out_dir, staging)
        secrets = ensure_secrets(staging)
        new_secrets = sorted(
            str(p.relative_to(staging))
            for p in (staging / SECRETS_DIR).iterdir()
            if not (out_dir / p.relative_to(staging)).exists()
        )

        # Check the config where it stands in staging, with staging's own paths.
        staged = build_bundle(spec, staging, secrets)
        for rel, content in staged.files.items():
            _write_file(staging / rel, content, rel in staged.private)
        check_homeserver_config(synapse_config_files(staging))

        final = build_bundle(spec, out_dir, secrets)
        changed, diff = _diff(out_dir, final, new_secrets)
        if check:
            return RenderResult(out_dir, changed, final.warnings, diff)

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "data").mkdir(exist_ok=True)
        os.chmod(out_dir / "data", 0o700)
        for rel in new_secrets:
            (out_dir / SECRETS_DIR).mkdir(mode=0o700, exist_ok=True)
            os.replace(staging / rel, out_dir / rel)
        for rel in changed:
            if rel in final.files:
                _write_file(staging / rel, final.files[rel], rel in final.private)
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, out_dir / rel)
        return RenderResult(out_dir, changed, final.warnings, diff)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
