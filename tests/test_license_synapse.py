"""The license as a real Synapse enforces it: start-up refusals, seats on every creation path,
expiry and grace, server notices to admins, hot reload, and ``chat500 license status``.

Time is controlled by the licenses themselves: each is issued with dates relative to now
(expiring in 6 days, expired yesterday with grace left, past its grace), and swapping the
file in the bundle moves a running homeserver from one state to the next.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from signedjson.types import SigningKey

from provisioner.errors import Chat500Error
from provisioner.render import render
from provisioner.run import start_bundle
from provisioner.spec_loader import load_spec
from synapse_modules.licensing.document import new_signing_key, public_key_of
from synapse_modules.licensing.evaluation import issue_license
from tests.harness.homeserver import Homeserver, HomeserverFactory, json_of

pytestmark = pytest.mark.slow

CHAT500 = str(Path(sys.executable).parent / "chat500")
SERVER = "chat.test"
SEAT_ERROR = "M_RESOURCE_LIMIT_EXCEEDED"


def license_text(key: SigningKey, *, expires_in: timedelta, seats: int = 50,
                 grace_days: int = 14, server_name: str = SERVER,
                 features: tuple[str, ...] = ("minors", "s3_storage", "white_label", "workers"),
                 ) -> str:
    now = datetime.now(UTC)
    _, text = issue_license(
        key, org_slug="testorg", org_display_name="Test Org", server_name=server_name,
        seats=seats, expires_at=now + expires_in, valid_from=now - timedelta(days=400),
        grace_days=grace_days, features=features,
    )
    return text


def license_overrides(tmp_path: Path, key: SigningKey, text: str) -> dict[str, Any]:
    """Spec overrides that make the test org run on ``text``, trusting ``key``."""
    directory = tmp_path / "vendor"
    directory.mkdir(exist_ok=True)
    (directory / "vendor.pub").write_text(public_key_of(key).encode() + "\n")
    (directory / "testorg.license").write_text(text)
    return {"license": {"path": str(directory / "testorg.license"),
                        "vendor_public_key": str(directory / "vendor.pub")}}


def replace_license(homeserver: Homeserver, text: str) -> None:
    """What an operator does with a renewal: swap the bundle's file in one rename."""
    path = homeserver.bundle_dir / "license" / "testorg.license"
    staging = path.with_name(".incoming.license")
    staging.write_text(text)
    staging.replace(path)


def status(homeserver: Homeserver) -> dict[str, Any]:
    response = homeserver.api("GET", "/_synapse/client/chat500/v1/license")
    assert response.status_code == 200, response.text
    return json_of(response)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Poll until the homeserver's timer has acted; the deadline only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)


def notices_for(homeserver: Homeserver, user_id: str) -> list[str]:
    """Bodies of the server notices ``user_id`` has received (read through the admin API)."""
    rooms = homeserver.api("GET", f"/_synapse/admin/v1/users/{user_id}/joined_rooms")
    bodies: list[str] = []
    for room_id in json_of(rooms).get("joined_rooms", []):
        messages = homeserver.api(
            "GET", f"/_synapse/admin/v1/rooms/{room_id}/messages?dir=f&limit=100"
        )
        for event in json_of(messages).get("chunk", []):
            if event["type"] == "m.room.message" and event["sender"].startswith("@notices:"):
                bodies.append(event["content"]["body"])
    return bodies


def create_room(homeserver: Homeserver, token: str | None = "admin") -> httpx.Response:
    return homeserver.api("POST", "/_matrix/client/v3/createRoom", {"name": "r"}, token=token)


def admin_put_user(homeserver: Homeserver, localpart: str, body: dict[str, Any]) -> httpx.Response:
    return homeserver.api("PUT", f"/_synapse/admin/v2/users/@{localpart}:{SERVER}", body)


def register_with_token(homeserver: Homeserver, localpart: str) -> httpx.Response:
    """Self-registration the way a client does it (spec registration mode ``token``)."""
    token = json_of(homeserver.api("POST", "/_synapse/admin/v1/registration_tokens/new", {}))
    body: dict[str, Any] = {"username": localpart, "password": "a-long-password-1"}
    response = homeserver.api("POST", "/_matrix/client/v3/register", body, token=None)
    for _ in range(4):  # one user-interactive auth stage per round
        if response.status_code != 401:
            return response
        state = json_of(response)
        flow = next(f["stages"] for f in state["flows"]
                    if "m.login.registration_token" in f["stages"])
        stage = next(s for s in flow if s not in state.get("completed", []))
        auth: dict[str, Any] = {"type": stage, "session": state["session"]}
        if stage == "m.login.registration_token":
            auth["token"] = token["token"]
        body["auth"] = auth
        response = homeserver.api("POST", "/_matrix/client/v3/register", body, token=None)
    return response


def background_update_done(homeserver: Homeserver, name: str) -> bool:
    with sqlite3.connect(f"file:{homeserver.bundle_dir / 'data/homeserver.db'}?mode=ro",
                         uri=True) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM background_updates WHERE update_name = ?", (name,)
        ).fetchone()
    return bool(row[0] == 0)


def assert_refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 403, response.text
    body = json_of(response)
    assert body["errcode"] == SEAT_ERROR and words in body["error"], body


# --- start-up -------------------------------------------------------------------------------


def _render_test_bundle(tmp_path: Path, overrides: dict[str, Any]) -> Path:
    spec_path = tmp_path / "spec.yaml"
    document = {"org": {"slug": "testorg", "display_name": "Test Org"},
                "server": {"server_name": SERVER, "port": 0}, **overrides}
    from tests.harness.homeserver import free_port

    document["server"]["port"] = free_port()
    document["server"]["public_baseurl"] = f"http://127.0.0.1:{document['server']['port']}/"
    spec_path.write_text(yaml.safe_dump(document))
    bundle = tmp_path / "bundle"
    render(load_spec(spec_path), bundle)
    return bundle


@pytest.mark.parametrize(
    "tamper,reason",
    [
        ("edit", "the signature does not match"),
        ("other_key", "not by the trusted vendor key"),
        ("foreign", "the license is for server 'chat.other.test', not 'chat.test'"),
        ("missing", "license file not found"),
    ],
)
def test_forged_or_foreign_license_stops_synapse(
    tmp_path: Path, tamper: str, reason: str
) -> None:
    key = new_signing_key("vendortest")
    bundle = _render_test_bundle(
        tmp_path, license_overrides(tmp_path, key, license_text(key, expires_in=timedelta(300)))
    )
    installed = bundle / "license" / "testorg.license"
    if tamper == "edit":
        installed.write_text(installed.read_text().replace('"seats": 50', '"seats": 5000'))
    elif tamper == "other_key":
        installed.write_text(license_text(new_signing_key("pirate"), expires_in=timedelta(300)))
    elif tamper == "foreign":
        installed.write_text(
            license_text(key, expires_in=timedelta(300), server_name="chat.other.test")
        )
    else:
        installed.unlink()
    with pytest.raises(Chat500Error) as err:
        servers = start_bundle(bundle, with_pushgw=False)
        servers.stop()  # pragma: no cover - only reached when the refusal is missing
    assert "Synapse exited" in str(err.value)
    assert reason in str(err.value), str(err.value)
    assert "license refused:" in str(err.value)


# --- seats ----------------------------------------------------------------------------------


def test_seats_hold_on_every_creation_path(homeservers: HomeserverFactory, tmp_path: Path) -> None:
    key = new_signing_key("vendortest")
    appservice = tmp_path / "bridge.yaml"
    appservice.write_text(yaml.safe_dump({
        "id": "bridge", "url": None, "as_token": "as-token-for-tests",
        "hs_token": "hs-token-for-tests", "sender_localpart": "bridgebot",
        "namespaces": {"users": [{"exclusive": True, "regex": "@bridge_.*:chat.test"}],
                       "rooms": [], "aliases": []},
        "rate_limited": False,
    }))
    homeserver = homeservers(
        {**license_overrides(tmp_path, key, license_text(key, expires_in=timedelta(300),
                                                          seats=4)),
         "registration": {"mode": "token"}},
        {"app_service_config_files": [str(appservice)],
         "background_updates": {"sleep_enabled": False}},
        server_name=SERVER,
    )
    # testadmin holds seat 1; three more fill the license, one by each creation path.
    homeserver.create_user("alice")  # shared-secret registration
    assert admin_put_user(homeserver, "bob", {"password": "a-long-password-1"}).status_code == 201
    assert register_with_token(homeserver, "carol").status_code == 200
    assert status(homeserver)["seats_used"] == 4

    words = "allows 4 active accounts"
    assert_refused(admin_put_user(homeserver, "dave", {"password": "a-long-password-1"}), words)
    assert_refused(register_with_token(homeserver, "erin"), words)
    with pytest.raises(Chat500Error, match=words):
        homeserver.create_user("frank")
    cli = subprocess.run(
        [CHAT500, "users", "create", "grace", "--deploy", str(homeserver.bundle_dir)],
        capture_output=True, text=True, env={**os.environ, "CHAT500_ADMIN_TOKEN":
                                             homeserver.admin_token},
    )
    assert cli.returncode == 2 and words in cli.stderr, cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    for localpart in ("dave", "erin", "frank", "grace"):
        lookup = homeserver.api("GET", f"/_synapse/admin/v2/users/@{localpart}:{SERVER}")
        assert lookup.status_code == 404, (localpart, lookup.text)

    # Application-service users are not seats: the bridge still registers its puppets.
    bridged = homeserver.api(
        "POST", "/_matrix/client/v3/register",
        {"type": "m.login.application_service", "username": "bridge_1"},
        token="as-token-for-tests",
    )
    assert bridged.status_code == 200, bridged.text
    assert status(homeserver)["seats_used"] == 4

    # Deactivating frees a seat; reactivating when the seat is taken again is refused.
    # (Synapse's own reactivation needs its profiles index, built by a background update on a
    # fresh database; reactivating before that fails inside Synapse with or without us.)
    wait_for(lambda: background_update_done(homeserver, "profiles_full_user_id_key_idx"),
             "Synapse's profiles index")
    deactivated = homeserver.api("POST", f"/_synapse/admin/v1/deactivate/@alice:{SERVER}", {})
    assert deactivated.status_code == 200, deactivated.text
    assert status(homeserver)["seats_used"] == 3
    assert admin_put_user(homeserver, "dave", {"password": "a-long-password-1"}).status_code == 201
    reactivate = admin_put_user(
        homeserver, "alice", {"deactivated": False, "password": "a-long-password-2"}
    )
    assert_refused(reactivate, words)
    alice = json_of(homeserver.api("GET", f"/_synapse/admin/v2/users/@alice:{SERVER}"))
    assert alice["deactivated"] is True
    # With a seat free again, reactivation works.
    homeserver.api("POST", f"/_synapse/admin/v1/deactivate/@dave:{SERVER}", {})
    reactivate = admin_put_user(
        homeserver, "alice", {"deactivated": False, "password": "a-long-password-2"}
    )
    assert reactivate.status_code == 200, reactivate.text
    assert status(homeserver)["seats_used"] == 4


def test_creations_racing_for_the_last_seat_get_it_once(
    homeservers: HomeserverFactory, tmp_path: Path, database: str
) -> None:
    key = new_signing_key("vendortest")
    homeserver = homeservers(
        license_overrides(tmp_path, key, license_text(key, expires_in=timedelta(300), seats=3)),
        server_name=SERVER, database=database,
    )
    homeserver.create_user("alice")  # with testadmin: one seat left

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=homeserver.base_url, timeout=60,
            headers={"Authorization": f"Bearer {homeserver.admin_token}"},
        ) as client:
            return list(await asyncio.gather(*(
                client.put(f"/_synapse/admin/v2/users/@racer{i}:{SERVER}",
                           json={"password": "a-long-password-1"})
                for i in range(8)
            )))

    responses = asyncio.run(race())
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [(r.status_code, r.text) for r in responses]
    for refused in (r for r in responses if r.status_code != 201):
        assert_refused(refused, "allows 3 active accounts")
    assert status(homeserver)["seats_used"] == 3
    # The winner's seat is its account's now, not a hold: once it is deactivated, the seat is
    # free at once (no waiting for a hold to expire).
    winner = json_of(created[0])["name"]
    homeserver.api("POST", f"/_synapse/admin/v1/deactivate/{winner}", {})
    assert admin_put_user(homeserver, "latecomer", {"password": "a-long-password-1"}
                          ).status_code == 201


# --- expiry, grace, notices, hot reload -----------------------------------------------------


def test_expiry_grace_notices_and_hot_reload(
    homeservers: HomeserverFactory, tmp_path: Path, database: str
) -> None:
    key = new_signing_key("vendortest")
    homeserver = homeservers(
        license_overrides(tmp_path, key, license_text(key, expires_in=timedelta(days=6))),
        server_name=SERVER,
        database=database,
    )
    admin = homeserver.admin.user_id
    first = status(homeserver)
    assert first["state"] == "expiring" and first["days_left"] == 6 and first["allows_growth"]
    wait_for(lambda: any("in 6 days" in n for n in notices_for(homeserver, admin)),
             "the 7-day notice")

    user_id, password = homeserver.create_user("alice")
    alice_token = homeserver.login_token(user_id, password)
    room = create_room(homeserver, alice_token)
    assert room.status_code == 200, room.text
    room_id = json_of(room)["room_id"]

    # Expired yesterday, grace left: everything still works, admins are told.
    replace_license(homeserver, license_text(key, expires_in=timedelta(days=-1), grace_days=10))
    wait_for(lambda: status(homeserver)["state"] == "grace", "the grace license")
    wait_for(lambda: any("grace period" in n for n in notices_for(homeserver, admin)),
             "the grace notice")
    assert create_room(homeserver, alice_token).status_code == 200
    homeserver.create_user("bob")

    # Past the grace period: no new accounts, no new rooms (admins included); nothing lost.
    replace_license(homeserver, license_text(key, expires_in=timedelta(days=-20), grace_days=10))
    wait_for(lambda: status(homeserver)["state"] == "expired", "the expired license")
    assert status(homeserver)["allows_growth"] is False
    assert_refused(create_room(homeserver, alice_token), "license expired on")
    assert_refused(create_room(homeserver), "license expired on")
    assert_refused(admin_put_user(homeserver, "carol", {"password": "a-long-password-1"}),
                   "license expired on")
    upgrade = homeserver.api("POST", f"/_matrix/client/v3/rooms/{room_id}/upgrade",
                             {"new_version": "10"}, token=alice_token)
    assert upgrade.status_code == 403, upgrade.text  # an upgrade is a new room too
    assert json_of(upgrade)["errcode"] == SEAT_ERROR
    sent = homeserver.api(
        "PUT", f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
        {"msgtype": "m.text", "body": "still here"}, token=alice_token,
    )
    assert sent.status_code == 200, sent.text
    messages = homeserver.api(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=10", token=alice_token
    )
    assert any(e["content"].get("body") == "still here" for e in json_of(messages)["chunk"])
    login = homeserver.login_token(user_id, password)
    assert login
    wait_for(lambda: any("nothing is deleted" in n for n in notices_for(homeserver, admin)),
             "the expiry notice")

    # A forged replacement is refused and reported; the last good license stays in force.
    forged = license_text(key, expires_in=timedelta(days=300)).replace('"seats": 50', '"seats": 9')
    replace_license(homeserver, forged)
    wait_for(lambda: status(homeserver)["reload_error"] is not None, "the refused file")
    assert "signature does not match" in status(homeserver)["reload_error"]
    assert status(homeserver)["state"] == "expired"

    # The renewal takes effect without a restart.
    replace_license(homeserver, license_text(key, expires_in=timedelta(days=365), seats=100))
    wait_for(lambda: status(homeserver)["state"] == "valid", "the renewed license")
    renewed = status(homeserver)
    assert renewed["seats"] == 100 and renewed["reload_error"] is None
    assert create_room(homeserver, alice_token).status_code == 200
    assert admin_put_user(homeserver, "carol", {"password": "a-long-password-1"}).status_code == 201


# --- admin API and CLI ----------------------------------------------------------------------


def test_status_api_and_cli_on_the_evaluation_license(homeserver: Homeserver) -> None:
    """The harness's default org runs on the evaluation license ``chat500 init`` writes."""
    homeserver.create_user("alice")
    user_id, password = homeserver.create_user("bob")
    info = status(homeserver)
    assert info["evaluation"] is True and info["seats"] == 10 and info["seats_used"] == 3
    assert info["state"] == "expiring" and info["server_name"] == homeserver.server_name

    refused = homeserver.api("GET", "/_synapse/client/chat500/v1/license",
                             token=homeserver.login_token(user_id, password))
    assert refused.status_code == 403 and json_of(refused)["errcode"] == "M_FORBIDDEN"

    env = {**os.environ, "CHAT500_ADMIN_TOKEN": homeserver.admin_token}
    cli = subprocess.run([CHAT500, "license", "status", str(homeserver.bundle_dir)],
                         capture_output=True, text=True, env=env)
    assert cli.returncode == 0, cli.stderr
    assert "seats: 3 used / 10" in cli.stdout
    assert "evaluation: yes" in cli.stdout
    assert "minors, s3_storage, white_label, workers" in cli.stdout
    assert homeserver.admin_token not in cli.stdout + cli.stderr

    no_token = {k: v for k, v in env.items() if k != "CHAT500_ADMIN_TOKEN"}
    cli = subprocess.run([CHAT500, "license", "status", str(homeserver.bundle_dir)],
                         capture_output=True, text=True, env=no_token)
    assert cli.returncode == 2 and "CHAT500_ADMIN_TOKEN" in cli.stderr
    assert "EVALUATION LICENSE" in homeserver.log_text()
