"""``chat500 license keygen|issue|verify`` as a vendor and an operator use them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


@pytest.fixture
def chat500(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The real CLI entry point, in process: exit code, stdout and stderr as a user sees them."""

    def run(*args: str, cwd: Path) -> Result:
        capsys.readouterr()
        monkeypatch.chdir(cwd)
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def issue(
    chat500: Cli, tmp_path: Path, *extra: str, out: str = "acme.license"
) -> Result:
    return chat500("license", "issue", "--key", "vendor.key", "--org", "acme", "--name",
                   "Acme Corp", "--server-name", "chat.acme.test", "--seats", "500",
                   "--expires", "2099-12-31", "--out", out, *extra, cwd=tmp_path)


def test_keygen_issue_verify(chat500: Cli, tmp_path: Path) -> None:
    made = chat500("license", "keygen", "--out", "vendor", "--key-id", "acme2099", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "vendor.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "vendor.pub").read_text().startswith("ed25519:acme2099 ")
    assert "ed25519 acme2099" in (tmp_path / "vendor.key").read_text()
    assert (tmp_path / "vendor.key").read_text() not in made.stdout + made.stderr

    again = chat500("license", "keygen", "--out", "vendor", cwd=tmp_path)
    assert again.returncode == 2 and "not overwriting a key" in one_line(again)

    issued = issue(chat500, tmp_path, "--features", "minors,white_label")
    assert issued.returncode == 0, issued.stderr
    document = json.loads((tmp_path / "acme.license").read_text())
    assert document["seats"] == 500 and document["server_name"] == "chat.acme.test"
    assert document["expires_at"] == "2099-12-31T23:59:59Z"
    assert document["features"] == ["minors", "white_label"]
    assert list(document["signatures"]["chat500mg"]) == ["ed25519:acme2099"]

    ok = chat500("license", "verify", "acme.license", "--pubkey", "vendor.pub", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "valid: license acme-" in ok.stdout and "seats: 500" in ok.stdout
    bound = chat500("license", "verify", "acme.license", "--pubkey", "vendor.pub",
                    "--server-name", "chat.other.test", cwd=tmp_path)
    assert bound.returncode == 1 and "not 'chat.other.test'" in one_line(bound)

    # The shipped vendor key did not sign it.
    default = chat500("license", "verify", "acme.license", cwd=tmp_path)
    assert default.returncode == 1 and "ed25519:vendor2026" in one_line(default)


def test_verify_catches_edits_and_expiry(chat500: Cli, tmp_path: Path) -> None:
    chat500("license", "keygen", "--out", "vendor", cwd=tmp_path)
    assert issue(chat500, tmp_path).returncode == 0
    path = tmp_path / "acme.license"
    path.write_text(path.read_text().replace('"seats": 500', '"seats": 5000'))
    forged = chat500("license", "verify", "acme.license", "--pubkey", "vendor.pub", cwd=tmp_path)
    assert forged.returncode == 1 and "signature does not match" in one_line(forged)

    expired = chat500("license", "issue", "--key", "vendor.key", "--org", "acme",
                      "--server-name", "chat.acme.test", "--seats", "5", "--valid-from",
                      "2020-01-01", "--expires", "2020-12-31", "--grace-days", "7",
                      "--out", "old.license", cwd=tmp_path)
    assert expired.returncode == 0, expired.stderr
    old = chat500("license", "verify", "old.license", "--pubkey", "vendor.pub", cwd=tmp_path)
    assert old.returncode == 1 and "expired on 2020-12-31" in one_line(old)


def test_bad_input_is_exit_2_with_one_line(chat500: Cli, tmp_path: Path) -> None:
    chat500("license", "keygen", "--out", "vendor", cwd=tmp_path)
    bad_date = issue(chat500, tmp_path, "--expires", "2099-02-30")
    assert bad_date.returncode == 2 and "--expires" in one_line(bad_date)
    bad_feature = issue(chat500, tmp_path, "--features", "minors,telepathy")
    assert bad_feature.returncode == 2 and "unknown feature 'telepathy'" in one_line(bad_feature)
    no_key = chat500("license", "issue", "--key", "nope.key", "--org", "acme", "--server-name",
                     "x.test", "--seats", "1", "--expires", "2099-01-01", "--out", "x.license",
                     cwd=tmp_path)
    assert no_key.returncode == 2 and "cannot read the signing key" in one_line(no_key)
    bad_slug = chat500("license", "issue", "--key", "vendor.key", "--org", "Acme Corp",
                       "--server-name", "x.test", "--seats", "1", "--expires", "2099-01-01",
                       "--out", "x.license", cwd=tmp_path)
    assert bad_slug.returncode == 2 and "org slug" in one_line(bad_slug)
    bad_pub = chat500("license", "verify", "x.license", "--pubkey", "ed25519:x nope",
                      cwd=tmp_path)
    assert bad_pub.returncode == 2 and "--pubkey" in one_line(bad_pub)
    garbage = tmp_path / "garbage.license"
    garbage.write_text("{not json")
    unreadable = chat500("license", "verify", "garbage.license", "--pubkey", "vendor.pub",
                         cwd=tmp_path)
    assert unreadable.returncode == 1 and "not a JSON license file" in one_line(unreadable)
