"""``chat500 init`` and ``chat500 validate``: starter specs that validate, one line per problem."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from provisioner.cli_spec import init_command, validate_command
from provisioner.errors import Chat500Error
from provisioner.spec import Federation, License, Org, Server, Spec
from provisioner.spec_loader import SpecError, load_spec
from synapse_modules.licensing.document import load_license, read_public_key

REPO = Path(__file__).resolve().parent.parent
CHAT500 = Path(sys.executable).parent / "chat500"
BROKEN_SPEC = """\
org:
  slug: acme
  display_name: Acme
server:
  server_name: https://chat.acme.test
registraton:
  mode: token
retention:
  min_lifetime: 30d
  max_lifetime: 7d
  default_lifetime: 7d
database:
  engine: postgres
branding:
  logo: assets/missing.png
"""
BROKEN_LINES = 5


def chat500(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [str(CHAT500), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def invoke(command: object, args: list[str]) -> Result:
    return CliRunner().invoke(command, args, catch_exceptions=True)  # type: ignore[arg-type]


def failure_lines(result: Result) -> list[str]:
    """What ``chat500``'s main prints for a ``Chat500Error``: its lines, exit code 2."""
    assert isinstance(result.exception, Chat500Error), result.output
    assert result.exception.exit_code == 2
    return str(result.exception).splitlines()


# --- the real console script -----------------------------------------------------------------


def test_validate_broken_spec_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(BROKEN_SPEC)
    proc = chat500("validate", "acme.yaml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines == [
        "chat500: registraton: unknown key (did you mean 'registration'?)",
        "chat500: server.server_name: is not a valid Matrix server name "
        "(got 'https://chat.acme.test'); expected host[:port] with no scheme, path or user",
        f"chat500: branding.logo: file not found: {tmp_path.resolve() / 'assets/missing.png'}",
        "chat500: retention.max_lifetime: must be >= retention.min_lifetime (30d)",
        "chat500: database.user: required when database.engine is postgres",
    ]
    assert len(lines) == BROKEN_LINES


def test_init_then_validate_with_the_console_script(tmp_path: Path) -> None:
    proc = chat500("init", "acme", "--server-name", "chat.acme.test", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "acme.yaml" in proc.stdout
    proc = chat500("validate", "acme.yaml", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok: acme\n", "")


# --- validate --------------------------------------------------------------------------------


def test_validate_ok(tmp_path: Path) -> None:
    result = invoke(validate_command, [str(REPO / "examples" / "school.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: riverside-primary\n"


def test_validate_examples_together() -> None:
    company, school = REPO / "examples" / "company.yaml", REPO / "examples" / "school.yaml"
    result = invoke(validate_command, [str(company), str(school)])
    assert result.exit_code == 0, result.output
    assert result.output == f"ok: northwind ({company})\nok: riverside-primary ({school})\n"


def test_validate_several_specs_names_the_file_on_each_line(tmp_path: Path) -> None:
    good, bad, missing = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "gone.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "org": {"slug": "good", "display_name": "Good"},
                "server": {"server_name": "good.test"},
            }
        )
    )
    bad.write_text(BROKEN_SPEC)
    result = invoke(validate_command, [str(bad), str(good), str(missing)])
    lines = failure_lines(result)
    assert len(lines) == BROKEN_LINES + 1
    assert all(line.startswith(f"{bad}: ") for line in lines[:BROKEN_LINES])
    assert lines[0] == f"{bad}: registraton: unknown key (did you mean 'registration'?)"
    assert lines[-1] == f"{missing}: no such file"
    assert result.output == f"ok: good ({good})\n"


def test_validate_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("org: [unclosed\n")
    (line,) = failure_lines(invoke(validate_command, [str(tmp_path / "bad.yaml")]))
    assert line.startswith("spec: YAML syntax error at line 2, column 1: ")


def test_validate_missing_file_is_one_line(tmp_path: Path) -> None:
    result = invoke(validate_command, [str(tmp_path / "nope.yaml")])
    assert failure_lines(result) == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_validate_needs_a_spec() -> None:
    result = invoke(validate_command, [])
    assert result.exit_code == 2 and "Missing argument" in result.output


# --- init ------------------------------------------------------------------------------------


def test_init_writes_a_starter_spec_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "orgs" / "acme.yaml"
    result = invoke(init_command, ["acme", "--server-name", "chat.acme.test", "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = load_spec(out)
    assert spec.org == Org("acme", "Acme")
    assert spec.server.server_name == "chat.acme.test"
    assert spec.base_dir == out.parent.resolve()


def test_init_defaults_are_the_model_defaults(tmp_path: Path) -> None:
    """The starter spec spells out defaults; they must be exactly the typed model's."""
    out = tmp_path / "acme.yaml"
    invoke(init_command, ["acme", "--server-name", "chat.acme.test", "--out", str(out)])
    spec = load_spec(out)
    expected = Spec(
        org=Org("acme", "Acme"),
        server=Server("chat.acme.test"),
        license=License(path="acme.license", vendor_public_key="evaluation-vendor.pub"),
    )
    for section in dataclasses.fields(Spec):
        if section.name == "base_dir":
            continue
        assert getattr(spec, section.name) == getattr(expected, section.name), section.name
    assert spec.federation == Federation()


def test_init_spec_has_every_section_of_the_design(tmp_path: Path) -> None:
    out = tmp_path / "acme.yaml"
    invoke(init_command, ["acme", "--server-name", "chat.acme.test", "--out", str(out)])
    text = out.read_text()
    document = yaml.safe_load(text)
    sections = [f.name for f in dataclasses.fields(Spec) if f.name != "base_dir"]
    assert list(document) == sections
    assert text.count("\n#") + text.count("  #") > 40, "the starter spec should be commented"


def test_init_writes_an_evaluation_license_the_spec_names(tmp_path: Path) -> None:
    out = tmp_path / "acme.yaml"
    result = invoke(
        init_command,
        [
            "acme",
            "--server-name",
            "chat.acme.test",
            "--out",
            str(out),
            "--display-name",
            "Acme Inc",
        ],
    )
    assert result.exit_code == 0, result.output
    spec = load_spec(out)
    assert not Path(spec.license.path).is_absolute()
    assert not Path(spec.license.vendor_public_key).is_absolute()
    license_path = spec.license_path
    public_key = read_public_key(spec.resolve(spec.license.vendor_public_key))
    document = load_license(license_path.read_bytes(), public_key, str(license_path))
    assert (document.org_slug, document.org_display_name, document.server_name) == (
        "acme",
        "Acme Inc",
        "chat.acme.test",
    )
    assert document.evaluation


def test_init_default_out_is_slug_yaml_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(init_command, ["big-school", "--server-name", "chat.school.test"])
    assert result.exit_code == 0, result.output
    spec = load_spec(tmp_path / "big-school.yaml")
    assert spec.org.display_name == "Big School"
    assert spec.license_path == (tmp_path / "big-school.license").resolve()


def test_init_keeps_non_ascii_names_readable(tmp_path: Path) -> None:
    out = tmp_path / "ecole.yaml"
    name = 'École Saint-Exupéry: "Les Petits" #1'
    result = invoke(
        init_command,
        ["ecole", "--server-name", "chat.ecole.test", "--out", str(out), "--display-name", name],
    )
    assert result.exit_code == 0, result.output
    assert "École Saint-Exupéry" in out.read_text()
    assert load_spec(out).org.display_name == name


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "acme.yaml"
    out.write_text("# my edited spec\n")
    args = ["acme", "--server-name", "chat.acme.test", "--out", str(out)]
    result = invoke(init_command, args)
    assert failure_lines(result) == [f"{out}: already exists; not overwriting it (use --force)"]
    assert out.read_text() == "# my edited spec\n"
    assert not (tmp_path / "acme.license").exists()
    forced = invoke(init_command, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_spec(out).org.slug == "acme"


def test_init_again_with_force_keeps_the_evaluation_license(tmp_path: Path) -> None:
    out = tmp_path / "acme.yaml"
    args = ["acme", "--server-name", "chat.acme.test", "--out", str(out)]
    invoke(init_command, args)
    first = (tmp_path / "acme.license").read_bytes()
    invoke(init_command, [*args, "--force"])
    assert (tmp_path / "acme.license").read_bytes() == first


def test_init_rejects_bad_input_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    result = invoke(
        init_command,
        [
            "Bad Slug",
            "--server-name",
            "https://chat.acme.test",
            "--out",
            str(out),
            "--display-name",
            "",
        ],
    )
    lines = failure_lines(result)
    assert isinstance(result.exception, SpecError)
    assert [line.split(":")[0] for line in lines] == ["SLUG", "--server-name", "--display-name"]
    assert list(tmp_path.iterdir()) == []


def test_init_needs_a_server_name(tmp_path: Path) -> None:
    result = invoke(init_command, ["acme", "--out", str(tmp_path / "a.yaml")])
    assert result.exit_code == 2 and "--server-name" in result.output
