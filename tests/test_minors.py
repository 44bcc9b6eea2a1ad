"""Guardian consent for minors, end to end: a real Synapse, the real CLI, matrix-nio clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nio import JoinResponse, RoomCreateResponse, RoomInviteResponse, RoomSendResponse

from tests.harness.cli_runner import chat500, create_minor, give_consent
from tests.harness.homeserver import Homeserver, homeserver_factory, json_of, run

pytestmark = pytest.mark.slow

CONSENT_MESSAGE = "Waiting for your parent's consent: ask the school office."
RESTRICTED = "This is not available to accounts of minors on this server."
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def hs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Homeserver]:
    with homeserver_factory(tmp_path_factory.mktemp("minors")) as make:
        yield make(
            {"minors": {"enabled": True, "consent_required_message": CONSENT_MESSAGE}},
            database=request.param,
        )


@pytest.fixture(scope="module")
def people(hs: Homeserver) -> dict[str, tuple[str, str]]:
    """Adults shared by the tests (the test license has few seats): localpart -> (id, pw)."""
    return {name: hs.create_user(name) for name in ("teacher", "stranger")}


def assert_refused(response: Any, message: str) -> None:
    body = json_of(response)
    assert response.status_code == 403, body
    assert body["errcode"] == "M_FORBIDDEN", body
    assert body["error"] == message


def test_minor_without_consent_cannot_log_in_until_consent_is_recorded(hs: Homeserver) -> None:
    user_id, password = create_minor(hs, "kid1")
    assert_refused(hs.login("kid1", password), CONSENT_MESSAGE)
    record = hs.api("GET", f"/_synapse/client/chat500/v1/minors/{user_id}").json()
    assert record["minor"] is True and record["blocked"] is True and record["consent"] is None

    give_consent(hs, user_id)
    token = hs.login("kid1", password).json()["access_token"]
    whoami = hs.api("GET", "/_matrix/client/v3/account/whoami", token=token)
    assert whoami.status_code == 200 and whoami.json()["user_id"] == user_id


def test_revoking_consent_blocks_an_open_session_at_once(hs: Homeserver) -> None:
    user_id, password = create_minor(hs, "kid2")
    give_consent(hs, user_id)
    token = hs.login("kid2", password).json()["access_token"]
    assert hs.api("GET", "/_matrix/client/v3/sync?timeout=0", token=token).status_code == 200

    done = chat500(hs, "consent", user_id, "--revoke")
    assert done.returncode == 0, done.stderr
    for path in ("/_matrix/client/v3/sync?timeout=0", "/_matrix/client/v3/account/whoami"):
        assert_refused(hs.api("GET", path, token=token), CONSENT_MESSAGE)
    assert_refused(
        hs.api("POST", "/_matrix/client/v3/createRoom", {}, token=token), CONSENT_MESSAGE
    )
    assert_refused(hs.login("kid2", password), CONSENT_MESSAGE)


def test_admin_created_account_marked_minor_later_is_blocked_with_its_sessions(
    hs: Homeserver,
) -> None:
    created = hs.api(
        "PUT", f"/_synapse/admin/v2/users/{hs.user_id('late')}", {"password": "pw-late-123"}
    )
    assert created.status_code == 201, created.text
    token = hs.login_token("late", "pw-late-123")
    done = chat500(hs, "set-minor", "late")
    assert done.returncode == 0, done.stderr
    assert_refused(hs.api("GET", "/_matrix/client/v3/account/whoami", token=token), CONSENT_MESSAGE)


def test_admins_are_never_locked_out_and_cannot_be_minors(hs: Homeserver) -> None:
    done = chat500(hs, "set-minor", hs.admin.user_id)
    assert done.returncode == 2 and "admin" in done.stderr
    assert hs.api("GET", "/_matrix/client/v3/account/whoami").status_code == 200
    done = chat500(hs, "create", "bossy", "--minor", "--admin")
    assert done.returncode == 2 and "--minor and --admin" in done.stderr


def test_consent_record_and_audit_log_are_readable_by_admins_only(
    hs: Homeserver, people: dict[str, tuple[str, str]]
) -> None:
    user_id, password = create_minor(hs, "kid3")
    give_consent(hs, user_id)
    assert chat500(hs, "consent", user_id, "--revoke").returncode == 0
    give_consent(hs, user_id)

    done = chat500(hs, "minor-record", user_id, "--audit")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["consent"]["guardian"] == "Ann Example"
    assert record["consent"]["evidence"] == "form-2026-17"
    assert record["consent"]["recorded_by"] == hs.admin.user_id
    assert isinstance(record["consent"]["recorded_at"], int)
    actions = [event["action"] for event in record["audit"]]
    assert actions == ["flagged_minor", "consent_recorded", "consent_revoked", "consent_recorded"]
    assert {event["actor"] for event in record["audit"]} == {hs.admin.user_id}

    nosy = hs.login_token("stranger", people["stranger"][1])
    for method, rest in (("GET", ""), ("GET", "/audit"), ("DELETE", "/consent")):
        response = hs.api(method, f"/_synapse/client/chat500/v1/minors/{user_id}{rest}", token=nosy)
        assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    done = chat500(hs, "minor-record", user_id, token=nosy)
    assert done.returncode == 2 and "M_FORBIDDEN" in done.stderr


def test_admin_api_rejects_bad_bodies_with_the_field_named(hs: Homeserver) -> None:
    user_id = hs.user_id("kid3")
    base = f"/_synapse/client/chat500/v1/minors/{user_id}/consent"
    response = hs.api(
        "PUT", base, {"guardian": "A", "relation": "uncle", "contact": "c", "evidence": "e"}
    )
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"
    assert "relation" in response.json()["error"]
    raw = hs.api("PUT", base, None)
    assert raw.status_code == 400
    broken = httpx.put(
        hs.base_url + base,
        content=b"{not json",
        headers={"Authorization": f"Bearer {hs.admin_token}"},
    )
    assert broken.status_code == 400 and broken.json()["errcode"] == "M_BAD_JSON"
    done = chat500(
        hs, "consent", user_id, "--guardian", "A", "--relation", "parent", "--contact", "c"
    )
    assert done.returncode == 2 and "--evidence" in done.stderr


async def _chat_inside_the_org(
    hs: Homeserver, kid: str, kid_pw: str, teacher: str, teacher_pw: str
) -> None:
    t = await hs.client(teacher, teacher_pw)
    k = await hs.client(kid, kid_pw)
    try:
        room = await t.room_create(name="class 4b")
        assert isinstance(room, RoomCreateResponse), room
        assert isinstance(await t.room_invite(room.room_id, k.user_id), RoomInviteResponse)
        assert isinstance(await k.join(room.room_id), JoinResponse)
        sent = await k.room_send(
            room.room_id, "m.room.message", {"msgtype": "m.text", "body": "hello teacher"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        messages = await t.room_messages(room.room_id, start="", limit=10)
        assert any(getattr(e, "body", None) == "hello teacher" for e in messages.chunk)

        # Public rooms and the directory are closed to the minor, however it is asked.
        for body in (
            {"preset": "public_chat"},
            {"visibility": "public"},
            {
                "initial_state": [
                    {
                        "type": "m.room.join_rules",
                        "state_key": "",
                        "content": {"join_rule": "public"},
                    }
                ]
            },
        ):
            assert_refused(
                hs.api("POST", "/_matrix/client/v3/createRoom", body, token=k.access_token),
                RESTRICTED,
            )
        own = hs.api("POST", "/_matrix/client/v3/createRoom", {}, token=k.access_token)
        assert own.status_code == 200, own.text
        own_id = own.json()["room_id"]
        assert_refused(
            hs.api(
                "PUT",
                f"/_matrix/client/v3/rooms/{own_id}/state/m.room.join_rules/",
                {"join_rule": "public"},
                token=k.access_token,
            ),
            RESTRICTED,
        )
        assert_refused(
            hs.api(
                "PUT",
                f"/_matrix/client/v3/directory/list/room/{own_id}",
                {"visibility": "public"},
                token=k.access_token,
            ),
            RESTRICTED,
        )
    finally:
        await t.close()
        await k.close()


def test_minor_with_consent_chats_inside_the_org_but_not_in_public(
    hs: Homeserver, people: dict[str, tuple[str, str]]
) -> None:
    kid, kid_pw = create_minor(hs, "kid5")
    give_consent(hs, kid)
    teacher, teacher_pw = people["teacher"]
    run(_chat_inside_the_org(hs, kid, kid_pw, teacher, teacher_pw))


def test_minor_is_hidden_from_strangers_in_directory_and_profile(
    hs: Homeserver, people: dict[str, tuple[str, str]]
) -> None:
    kid, kid_pw = create_minor(hs, "kid6")
    give_consent(hs, kid)
    teacher = hs.login_token("teacher", people["teacher"][1])
    stranger = hs.login_token("stranger", people["stranger"][1])
    kid_token = hs.login_token("kid6", kid_pw)
    # A public room puts the kid in every local user's directory unless the module hides them.
    room = hs.api(
        "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}, token=teacher
    ).json()["room_id"]
    assert hs.api("POST", f"/_matrix/client/v3/join/{room}", {}, token=kid_token).status_code == 200

    def found(token: str) -> bool:
        result = hs.api(
            "POST", "/_matrix/client/v3/user_directory/search", {"search_term": "kid6"}, token=token
        ).json()
        return any(r["user_id"] == kid for r in result["results"])

    assert found(teacher)
    assert not found(stranger)
    assert hs.api("GET", f"/_matrix/client/v3/profile/{kid}", token=teacher).status_code == 200
    profile = hs.api("GET", f"/_matrix/client/v3/profile/{kid}", token=stranger)
    assert profile.status_code in (403, 404), profile.text
