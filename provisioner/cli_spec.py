"""``chat500 init`` (a commented starter spec) and ``chat500 validate`` (strict checking)."""

from __future__ import annotations

import os
from pathlib import Path

import click
import yaml

from provisioner.errors import Chat500Error
from provisioner.files import write_atomically
from provisioner.spec_checks import display_name_problem, server_name_problem, slug_problem
from provisioner.spec_loader import SpecError, load_spec
from provisioner.templates import render_template
from synapse_modules.licensing.document import LicenseError
from synapse_modules.licensing.evaluation import write_evaluation_license

STARTER_TEMPLATE = "spec.yaml.j2"


@click.command("init")
@click.argument("slug")
@click.option("--server-name", required=True, help="Matrix server name, e.g. chat.acme.example")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Spec file to write (default: ./SLUG.yaml).",
)
@click.option("--display-name", default=None, help="Organization name shown to users.")
@click.option("--force", is_flag=True, help="Overwrite an existing spec file.")
def init_command(
    slug: str, server_name: str, out: Path | None, display_name: str | None, force: bool
) -> None:
    """Write a commented starter spec for SLUG, plus a 30-day evaluation license beside it."""
    display_name = display_name if display_name is not None else _default_display_name(slug)
    problems = [
        f"{name}: {problem}"
        for name, problem in (
            ("SLUG", slug_problem(slug)),
            ("--server-name", server_name_problem(server_name)),
            ("--display-name", display_name_problem(display_name)),
        )
        if problem
    ]
    if problems:
        raise SpecError(problems)
    out = out if out is not None else Path(f"{slug}.yaml")
    if out.exists() and not force:
        raise Chat500Error(f"{out}: already exists; not overwriting it (use --force)")
    directory = out.parent if str(out.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        evaluation = write_evaluation_license(directory, slug, display_name, server_name)
    except LicenseError as err:
        raise Chat500Error(str(err)) from None
    except OSError as err:
        raise Chat500Error(f"{directory}: cannot write ({err.strerror or err})") from None

    text = starter_spec_text(
        slug=slug,
        display_name=display_name,
        server_name=server_name,
        spec_file=out.name,
        license_path=os.path.relpath(evaluation.license_path, directory),
        vendor_public_key=os.path.relpath(evaluation.public_key_path, directory),
    )
    write_atomically(out, text)
    load_spec(out)  # the starter spec must always validate; a failure here is our bug
    click.echo(f"wrote {out} (spec) and {evaluation.license_path} (30-day evaluation license)")
    click.echo(f"next: edit {out}, then `chat500 validate {out}`")


def starter_spec_text(
    *,
    slug: str,
    display_name: str,
    server_name: str,
    spec_file: str,
    license_path: str,
    vendor_public_key: str,
) -> str:
    """The commented starter spec: every section of the design with its safe defaults."""
    values = {
        "slug": slug,
        "display_name": display_name,
        "server_name": server_name,
        "license_path": license_path,
        "vendor_public_key": vendor_public_key,
    }
    quoted = {name: _yaml_quoted(value) for name, value in values.items()}
    return render_template(STARTER_TEMPLATE, {**values, "spec_file": spec_file, "quoted": quoted})


def _yaml_quoted(value: str) -> str:
    """A double-quoted YAML scalar that keeps non-ASCII names readable (``École``)."""
    return yaml.safe_dump(value, allow_unicode=True, default_style='"', width=10**9).strip()


@click.command("validate")
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate_command(specs: tuple[Path, ...]) -> None:
    """Check each SPEC strictly: "ok: <slug>" when valid, else one line per problem (exit 2)."""
    problems: list[str] = []
    for path in specs:
        try:
            spec = load_spec(path)
        except SpecError as err:
            prefix = f"{path}: " if len(specs) > 1 else ""
            problems.extend(
                line if line.startswith(f"{path}: ") else prefix + line for line in err.problems
            )
            continue
        click.echo(f"ok: {spec.org.slug}" + (f" ({path})" if len(specs) > 1 else ""))
    if problems:
        raise SpecError(problems)


def _default_display_name(slug: str) -> str:
    return " ".join(part.capitalize() for part in slug.split("-"))


COMMANDS: list[click.Command] = [init_command, validate_command]
