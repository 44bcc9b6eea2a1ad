"""End to end: a rendered org's real Synapse → chat500-pushgw → the local fake FCM.

The gateway is started from the rendered bundle the way ``chat500 run`` starts it
(``provisioner.run.start_pushgw``), and matrix-nio clients drive real messages through
Synapse's HTTP pusher.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, RoomCreateResponse, RoomSendResponse

from provisioner.run import read_bundle, start_pushgw
from tests.fakes.fake_fcm import FakeFCM, Received
from tests.harness.cli_runner import chat500, create_minor, give_consent
from tests.harness.homeserver import Homeserver, free_port, run

pytestmark = pytest.mark.slow
APP_ID = "com.testorg.chat.android"
SECRET_TEXT = "the launch code is 0000"


@pytest.fixture
def fcm() -> Iterator[FakeFCM]:
    with FakeFCM() as fake:
        yield fake


@pytest.fixture
def org(homeservers: Callable[..., Homeserver], fcm: FakeFCM, tmp_path: Path) -> Homeserver:
    sa = fcm.write_service_account(tmp_path / "fcm-service-account.json", "testorg-fcm")
    hs = homeservers({"push": {
        "listen_port": free_port(),
        "fcm_base_url": fcm.base_url,
        "apps": [{"app_id": APP_ID, "fcm_project": "testorg-fcm",
                  "service_account": str(sa)}],
    }})
    gateway = start_pushgw(read_bundle(hs.bundle_dir))
    assert gateway is not None, "the rendered bundle has no push gateway"
    hs.servers.processes.append(("push gateway", gateway))  # stopped with the homeserver
    return hs


def gateway_url(hs: Homeserver) -> str:
    return f"http://127.0.0.1:{hs.spec.push.listen_port}/_matrix/push/v1/notify"


async def set_pusher(client: AsyncClient, hs: Homeserver, pushkey: str,
                     data: dict[str, Any] | None = None) -> None:
    body = {"kind": "http", "app_id": APP_ID, "pushkey": pushkey,
            "app_display_name": "Test Org", "device_display_name": "phone", "lang": "en",
            "data": {"url": gateway_url(hs), **(data or {})}}
    resp = await client.send("POST", "/_matrix/client/v3/pushers/set", json.dumps(body),
                             headers={"Authorization": f"Bearer {client.access_token}",
                                      "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()


async def pushkeys(client: AsyncClient) -> list[str]:
    resp = await client.send("GET", "/_matrix/client/v3/pushers",
                             headers={"Authorization": f"Bearer {client.access_token}"})
    return [p["pushkey"] for p in (await resp.json())["pushers"]]


async def shared_room(hs: Homeserver) -> tuple[AsyncClient, AsyncClient, str]:
    alice_id, alice_pw = hs.create_user("alice")
    bob_id, bob_pw = hs.create_user("bob")
    alice = await hs.client(alice_id, alice_pw)
    bob = await hs.client(bob_id, bob_pw)
    room = await alice.room_create(invite=[bob_id])
    assert isinstance(room, RoomCreateResponse), room
    await bob.join(room.room_id)
    return alice, bob, room.room_id


async def say(client: AsyncClient, room_id: str, text: str) -> str:
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})
    assert isinstance(resp, RoomSendResponse), resp
    return resp.event_id


def for_token(messages: list[Received], token: str) -> list[dict[str, Any]]:
    return [m.message for m in messages if m.message.get("token") == token]


def wait_for_event(fcm: FakeFCM, token: str, event_id: str, timeout: float = 90) -> None:
    """Block until FCM got ``event_id`` for ``token`` (pushes of one pusher arrive in order)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m["data"].get("event_id") == event_id for m in for_token(fcm.messages, token)):
            return
        fcm.wait_for_messages(len(fcm.messages) + 1, timeout=1)
    raise AssertionError(f"no push for {event_id} to {token}; got {fcm.messages}")


def test_message_yields_one_push_without_text(org: Homeserver, fcm: FakeFCM) -> None:
    async def scenario() -> tuple[str, str]:
        alice, bob, room_id = await shared_room(org)
        await set_pusher(bob, org, "bob-eid", {"format": "event_id_only"})
        await set_pusher(bob, org, "bob-full")
        first = await say(alice, room_id, SECRET_TEXT)
        wait_for_event(fcm, "bob-eid", first)
        wait_for_event(fcm, "bob-full", first)
        sentinel = await say(alice, room_id, "second")
        wait_for_event(fcm, "bob-eid", sentinel)
        wait_for_event(fcm, "bob-full", sentinel)
        return first, room_id

    first, room_id = run(scenario())
    for token in ("bob-eid", "bob-full"):
        pushes = [m for m in for_token(fcm.messages, token) if m["data"]["event_id"] == first]
        assert len(pushes) == 1, pushes
        assert pushes[0]["data"]["room_id"] == room_id
        # The spec's push.event_id_only (default true) holds even for the pusher that asked
        # for the full format: ids and counts only.
        assert set(pushes[0]["data"]) <= {"event_id", "room_id", "unread", "missed_calls"}
    everything = json.dumps([m.message for m in fcm.messages])
    assert SECRET_TEXT not in everything and "launch code" not in everything
    assert all("notification" not in m.message for m in fcm.messages)
    assert not for_token(fcm.messages, "alice")  # the sender is not notified


def test_unregistered_token_makes_synapse_drop_the_pusher(org: Homeserver,
                                                          fcm: FakeFCM) -> None:
    fcm.set(unregistered={"bob-dead"})

    async def scenario() -> list[str]:
        alice, bob, room_id = await shared_room(org)
        await set_pusher(bob, org, "bob-dead")
        await set_pusher(bob, org, "bob-live")
        assert sorted(await pushkeys(bob)) == ["bob-dead", "bob-live"]
        event_id = await say(alice, room_id, "hello")
        wait_for_event(fcm, "bob-live", event_id)
        deadline = time.monotonic() + 60
        keys = await pushkeys(bob)
        while "bob-dead" in keys and time.monotonic() < deadline:
            fcm.wait_for_messages(len(fcm.messages) + 1, timeout=0.5)
            keys = await pushkeys(bob)
        return keys

    assert run(scenario()) == ["bob-live"]
    assert not for_token(fcm.messages, "bob-dead")


def test_fcm_outage_of_20s_loses_nothing(org: Homeserver, fcm: FakeFCM) -> None:
    async def scenario() -> list[str]:
        alice, bob, room_id = await shared_room(org)
        await set_pusher(bob, org, "bob-phone", {"format": "event_id_only"})
        warm = await say(alice, room_id, "before")
        wait_for_event(fcm, "bob-phone", warm)
        fcm.set(outage=True)
        sent = [await say(alice, room_id, f"during outage {i}") for i in range(3)]
        time.sleep(20)  # the outage itself
        fcm.set(outage=False)
        for event_id in sent:
            wait_for_event(fcm, "bob-phone", event_id, timeout=120)
        sentinel = await say(alice, room_id, "after")
        wait_for_event(fcm, "bob-phone", sentinel)
        return sent

    sent = run(scenario())
    got = [m["data"]["event_id"] for m in for_token(fcm.messages, "bob-phone")]
    for event_id in sent:
        assert got.count(event_id) == 1, got
    assert fcm.counters()["send_attempts"] > len(got)  # the outage was really hit


def test_a_minor_whose_consent_is_revoked_gets_no_pushes(
    homeservers: Callable[..., Homeserver], fcm: FakeFCM, tmp_path: Path
) -> None:
    """Blocked means blocked for alerts too: no push reveals activity to a locked account."""
    sa = fcm.write_service_account(tmp_path / "fcm-service-account.json", "testorg-fcm")
    hs = homeservers({
        "minors": {"enabled": True},
        "push": {"listen_port": free_port(), "fcm_base_url": fcm.base_url,
                 "apps": [{"app_id": APP_ID, "fcm_project": "testorg-fcm",
                           "service_account": str(sa)}]},
    })
    gateway = start_pushgw(read_bundle(hs.bundle_dir))
    assert gateway is not None
    hs.servers.processes.append(("push gateway", gateway))
    kid_id, kid_pw = create_minor(hs, "kid")
    give_consent(hs, kid_id)

    async def scenario() -> tuple[str, str]:
        teacher_id, teacher_pw = hs.create_user("teacher")
        adult_id, adult_pw = hs.create_user("adult")
        teacher = await hs.client(teacher_id, teacher_pw)
        kid = await hs.client(kid_id, kid_pw)
        adult = await hs.client(adult_id, adult_pw)
        room = await teacher.room_create(invite=[kid_id, adult_id])
        assert isinstance(room, RoomCreateResponse), room
        await kid.join(room.room_id)
        await adult.join(room.room_id)
        await set_pusher(kid, hs, "kid-phone")
        await set_pusher(adult, hs, "adult-phone")
        before = await say(teacher, room.room_id, "homework is due friday")
        wait_for_event(fcm, "kid-phone", before)

        revoked = chat500(hs, "consent", kid_id, "--revoke")
        assert revoked.returncode == 0, revoked.stderr
        after = await say(teacher, room.room_id, "see you tomorrow")
        # The adult's push for the same message proves the pusher ran for this event; the
        # sentinel after it proves the kid's pusher had its chance too.
        wait_for_event(fcm, "adult-phone", after)
        sentinel = await say(teacher, room.room_id, "last one")
        wait_for_event(fcm, "adult-phone", sentinel)
        for client in (teacher, kid, adult):
            await client.close()
        return after, sentinel

    after, sentinel = run(scenario())
    time.sleep(2)  # a late push to the kid would have arrived by now (pushes are ~ms here)
    kid_events = {m["data"].get("event_id") for m in for_token(fcm.messages, "kid-phone")}
    assert after not in kid_events and sentinel not in kid_events, kid_events
