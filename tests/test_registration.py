"""Restricted registration, end to end against a real Synapse in each mode."""

from __future__ import annotations

import email
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.cli_runner import chat500_users
from tests.harness.homeserver import Homeserver, homeserver_factory, json_of
from tests.harness.mailbox import mailbox, port_of

pytestmark = pytest.mark.slow

REFUSED = "Ask the school office for an account."
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def register(
    hs: Homeserver,
    username: str,
    password: str = "a-long-password-1",
    stages: dict[str, dict[str, Any]] | None = None,
    kind: str = "user",
) -> httpx.Response:
    """Walk the user-interactive auth flow, answering each stage from ``stages``."""
    path = f"/_matrix/client/v3/register?kind={kind}"
    body: dict[str, Any] = {"username": username, "password": password}
    response = hs.api("POST", path, body, token=None)
    answered: set[str] = set()
    while response.status_code == 401 and "session" in response.json():
        flow = response.json()
        done = set(flow.get("completed", []))
        todo = [s for s in flow["flows"][0]["stages"] if s not in done]
        stage = todo[0] if todo else None
        if stage is None or stage in answered:
            return response
        answered.add(stage)
        auth = {"type": stage, "session": flow["session"], **(stages or {}).get(stage, {})}
        response = hs.api("POST", path, {**body, "auth": auth}, token=None)
    return response


def assert_no_guests(hs: Homeserver) -> None:
    # Synapse's own refusal (403, errcode M_UNKNOWN): guests are off before any module runs.
    response = hs.api("POST", "/_matrix/client/v3/register?kind=guest", {}, token=None)
    assert response.status_code == 403 and "Guest access is disabled" in response.text


def assert_forbidden(response: httpx.Response, message: str | None = None) -> None:
    body = json_of(response)
    assert response.status_code == 403, body
    assert body["errcode"] in ("M_FORBIDDEN", "M_THREEPID_DENIED"), body
    if message is not None:
        assert body["error"] == message


@pytest.fixture(scope="module", params=DATABASES)
def admin_only(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Homeserver]:
    with homeserver_factory(tmp_path_factory.mktemp("reg_admin_only")) as make:
        yield make({"minors": {"enabled": True}}, database=request.param)


def test_admin_only_refuses_every_self_registration(admin_only: Homeserver) -> None:
    hs = admin_only
    response = hs.api(
        "POST",
        "/_matrix/client/v3/register",
        {"username": "walkin", "password": "a-long-password-1"},
        token=None,
    )
    assert_forbidden(response)
    assert_no_guests(hs)
    # The admin API still creates accounts, and they are ordinary (not minors).
    created = hs.api(
        "PUT", f"/_synapse/admin/v2/users/{hs.user_id('hired')}", {"password": "a-long-password-1"}
    )
    assert created.status_code == 201, created.text
    record = hs.api("GET", f"/_synapse/client/chat500/v1/minors/{hs.user_id('hired')}").json()
    assert record["minor"] is False
    # Reserved names are the org's to hand out through the admin API.
    assert (
        hs.api(
            "PUT",
            f"/_synapse/admin/v2/users/{hs.user_id('support')}",
            {"password": "a-long-password-1"},
        ).status_code
        == 201
    )


@pytest.fixture(scope="module", params=DATABASES)
def token_mode(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Homeserver]:
    with homeserver_factory(tmp_path_factory.mktemp("reg_token")) as make:
        yield make(
            {
                "registration": {"mode": "token", "refused_message": REFUSED},
                "minors": {"enabled": True},
            },
            database=request.param,
        )


def invite(hs: Homeserver, *args: str) -> dict[str, Any]:
    done = chat500_users(
        "invite", "--json", *args, "--homeserver", hs.base_url, token=hs.admin_token
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_token_mode_registers_with_an_invite_token_only(token_mode: Homeserver) -> None:
    hs = token_mode
    token = invite(hs, "--uses", "2")
    assert token["uses_allowed"] == 2 and token["expiry_time"] > time.time() * 1000

    stages = {"m.login.registration_token": {"token": token["token"]}}
    ok = register(hs, "alice", stages=stages)
    assert ok.status_code == 200, ok.text
    assert ok.json()["user_id"] == hs.user_id("alice")
    record = hs.api("GET", f"/_synapse/client/chat500/v1/minors/{hs.user_id('alice')}").json()
    assert record["minor"] is False  # self-registration never makes a minor

    wrong = register(hs, "mallory", stages={"m.login.registration_token": {"token": "nope"}})
    assert wrong.status_code == 401 and wrong.json()["errcode"] == "M_UNAUTHORIZED"
    assert register(hs, "mallory").status_code == 401
    assert_no_guests(hs)


@pytest.mark.parametrize("name", ["admin", "adm1n", "Support", "s.u.p.p.o.r.t", "root2"])
def test_token_mode_refuses_reserved_and_look_alike_names(
    token_mode: Homeserver, name: str
) -> None:
    token = invite(token_mode)
    response = register(
        token_mode, name, stages={"m.login.registration_token": {"token": token["token"]}}
    )
    assert_forbidden(response, REFUSED)


def test_invite_rejects_bad_input_with_exit_2(token_mode: Homeserver) -> None:
    for args, expected in ((["--expires", "soon"], "--expires"), (["--uses", "0"], "--uses")):
        done = chat500_users(
            "invite", *args, "--homeserver", token_mode.base_url, token=token_mode.admin_token
        )
        assert done.returncode == 2 and expected in done.stderr, done.stderr
    done = chat500_users("invite", "--homeserver", token_mode.base_url)
    assert done.returncode == 2 and "CHAT500_ADMIN_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def _validation_link(messages: list[str], before: int) -> str:
    for _ in range(200):
        if len(messages) > before:
            mail = email.message_from_string(messages[before])
            text = "".join(
                bytes(part.get_payload(decode=True)).decode("utf-8", "replace")  # type: ignore[arg-type]
                for part in mail.walk()
                if part.get_content_type() == "text/plain"
            )
            match = re.search(r"https?://\S+?submit_token\?[^\s\"<>]+", text)
            assert match, text
            return match.group(0).replace("&amp;", "&")
        time.sleep(0.1)
    raise AssertionError("Synapse sent no verification mail")


def _request_token(hs: Homeserver, email: str, secret: str) -> httpx.Response:
    return hs.api(
        "POST",
        "/_matrix/client/v3/register/email/requestToken",
        {"client_secret": secret, "email": email, "send_attempt": 1},
        token=None,
    )


@pytest.mark.parametrize("database", DATABASES)
def test_email_domain_mode_accepts_only_verified_addresses_in_allowed_domains(
    tmp_path: Path, database: str
) -> None:
    with mailbox() as smtp, homeserver_factory(tmp_path) as make:
        hs = make(
            {
                "registration": {
                    "mode": "email_domain",
                    "allowed_email_domains": ["school.example"],
                    "refused_message": REFUSED,
                },
                "email": {
                    "enabled": True,
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port_of(smtp),
                    "require_transport_security": False,
                },
            },
            database=database,
        )

        assert_forbidden(_request_token(hs, "kid@evil.example", "secret-evil-1"))
        assert_forbidden(_request_token(hs, "kid@school.example.evil", "secret-evil-2"))
        assert not smtp.messages

        # Without an email stage the flow cannot finish.
        assert register(hs, "nomail").status_code == 401

        before = len(smtp.messages)
        requested = _request_token(hs, "pupil@school.example", "secret-good-1")
        assert requested.status_code == 200, requested.text
        link = _validation_link(smtp.messages, before)
        assert link.startswith(hs.base_url)
        assert httpx.get(link, timeout=30).status_code == 200
        creds = {"sid": requested.json()["sid"], "client_secret": "secret-good-1"}
        stages = {"m.login.email.identity": {"threepid_creds": creds, "threepidCreds": creds}}
        ok = register(hs, "pupil", stages=stages)
        assert ok.status_code == 200, ok.text

        before = len(smtp.messages)
        requested = _request_token(hs, "other@school.example", "secret-good-2")
        link = _validation_link(smtp.messages, before)
        assert httpx.get(link, timeout=30).status_code == 200
        creds = {"sid": requested.json()["sid"], "client_secret": "secret-good-2"}
        response = register(
            hs, "adm1n", stages={"m.login.email.identity": {"threepid_creds": creds}}
        )
        assert_forbidden(response, REFUSED)


def test_self_registration_never_yields_a_minor(token_mode: Homeserver) -> None:
    hs = token_mode
    flag = f"/_synapse/client/chat500/v1/minors/{hs.user_id('prekid')}"
    assert hs.api("PUT", flag, {}).status_code == 201  # flagged ahead of its account
    token = invite(hs, "--uses", "2")
    stages = {"m.login.registration_token": {"token": token["token"]}}
    assert_forbidden(
        register(hs, "prekid", stages=stages),
        "This is not available to accounts of minors on this server.",
    )

    assert register(hs, "selfie", stages=stages).status_code == 200
    refused = hs.api("PUT", f"/_synapse/client/chat500/v1/minors/{hs.user_id('selfie')}", {})
    assert refused.status_code == 400 and refused.json()["errcode"] == "M_INVALID_PARAM"
    assert "registered itself" in refused.json()["error"]
