"""``chat500 users``: bad input is one line and exit 2; --deploy finds the homeserver."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.harness.cli_runner import chat500_users
from tests.harness.homeserver import Homeserver, homeserver_factory

chat500 = chat500_users


def one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_target_and_token_are_required() -> None:
    one_line_error(chat500("create", "bob", token="t"), "--deploy", "--homeserver")
    one_line_error(
        chat500("create", "bob", "--homeserver", "http://127.0.0.1:9", "--deploy", "/tmp"),
        "exactly one",
    )
    one_line_error(
        chat500("create", "bob", "--homeserver", "http://127.0.0.1:9"), "CHAT500_ADMIN_TOKEN"
    )
    one_line_error(
        chat500(
            "create",
            "bob",
            "--homeserver",
            "ftp://x",
        ),
        "--homeserver",
    )
    one_line_error(
        chat500("set-minor", "bob", "--deploy", "/nonexistent", token="t"), "not a rendered bundle"
    )
    one_line_error(
        chat500("create", "bob", "--homeserver", "http://127.0.0.1:9", token="t"), "cannot reach"
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    with homeserver_factory(tmp_path_factory.mktemp("users_cli")) as make:
        yield make()  # minors not enabled


@pytest.mark.slow
def test_create_through_deploy_dir_and_refusals(plain: Homeserver) -> None:
    deploy = str(plain.bundle_dir)
    done = chat500("create", "carol", "--json", "--deploy", deploy, token=plain.admin_token)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["user_id"] == plain.user_id("carol")
    assert plain.login_token("carol", created["password"])

    human = chat500("create", "dave", "--deploy", deploy, token=plain.admin_token)
    assert human.returncode == 0 and "one-time password: " in human.stdout
    assert plain.admin_token not in human.stdout + human.stderr

    one_line_error(
        chat500("create", "carol", "--deploy", deploy, token=plain.admin_token), "already exists"
    )
    one_line_error(
        chat500("create", "Bad Name", "--deploy", deploy, token=plain.admin_token), "user"
    )
    one_line_error(
        chat500("create", "kid", "--minor", "--deploy", deploy, token=plain.admin_token),
        "minors are not enabled",
    )
    # The refused minor left no account behind.
    assert plain.api("GET", f"/_synapse/admin/v2/users/{plain.user_id('kid')}").status_code == 404
    one_line_error(
        chat500("create", "eve", "--deploy", deploy, token="not-a-token"), "M_UNKNOWN_TOKEN"
    )
