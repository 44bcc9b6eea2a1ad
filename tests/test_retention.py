"""Enforced retention, end to end: default policy on new rooms, bounds, and a real purge."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.homeserver import Homeserver, homeserver_factory, json_of

pytestmark = pytest.mark.slow

DAY = 86400000
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
RETENTION = "m.room.retention"


@pytest.fixture(scope="module", params=DATABASES)
def hs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Homeserver]:
    with homeserver_factory(tmp_path_factory.mktemp("retention")) as make:
        yield make(
            {
                "retention": {
                    "default_lifetime": "30d",
                    "min_lifetime": "1d",
                    "max_lifetime": "365d",
                    "allow_lengthen": False,
                }
            },
            database=request.param,
        )


def create_room(hs: Homeserver, body: dict | None = None, token: str = "admin"):  # type: ignore[no-untyped-def]
    return hs.api("POST", "/_matrix/client/v3/createRoom", body or {}, token=token)


def put_retention(hs: Homeserver, room_id: str, content: dict, token: str = "admin"):  # type: ignore[no-untyped-def]
    return hs.api(
        "PUT", f"/_matrix/client/v3/rooms/{room_id}/state/{RETENTION}/", content, token=token
    )


def assert_refused(response) -> None:  # type: ignore[no-untyped-def]
    body = json_of(response)
    assert response.status_code == 403, body
    assert body["errcode"] == "M_FORBIDDEN"
    assert "keep messages" in body["error"] or "kept for" in body["error"], body


def test_every_new_room_gets_the_org_default_policy(hs: Homeserver) -> None:
    _, password = hs.create_user("member")
    token = hs.login_token("member", password)
    room = create_room(hs, {"name": "plain"}, token=token).json()["room_id"]
    state = hs.api("GET", f"/_matrix/client/v3/rooms/{room}/state/{RETENTION}/", token=token)
    assert state.status_code == 200 and state.json() == {"max_lifetime": 30 * DAY}


def test_out_of_bounds_policies_are_refused_even_for_admins(hs: Homeserver) -> None:
    room = create_room(hs).json()["room_id"]  # the admin creates and acts
    for content in (
        {"max_lifetime": 400 * DAY},
        {"max_lifetime": DAY // 2},
        {},
        {"max_lifetime": "30d"},
        {"max_lifetime": 60 * DAY},
    ):
        assert_refused(put_retention(hs, room, content))
    assert put_retention(hs, room, {"max_lifetime": 10 * DAY}).status_code == 200
    state = hs.api("GET", f"/_matrix/client/v3/rooms/{room}/state/{RETENTION}/")
    assert state.json() == {"max_lifetime": 10 * DAY}


def test_create_room_initial_state_cannot_smuggle_a_policy_in(hs: Homeserver) -> None:
    bad = {
        "initial_state": [
            {"type": RETENTION, "state_key": "", "content": {"max_lifetime": 10 * 365 * DAY}}
        ]
    }
    assert_refused(create_room(hs, bad))
    good = {
        "initial_state": [
            {"type": RETENTION, "state_key": "", "content": {"max_lifetime": 2 * DAY}}
        ]
    }
    room = create_room(hs, good)
    assert room.status_code == 200, room.text
    state = hs.api("GET", f"/_matrix/client/v3/rooms/{room.json()['room_id']}/state/{RETENTION}/")
    assert state.json() == {"max_lifetime": 2 * DAY}


def _event_in_database(hs: Homeserver, event_id: str) -> bool:
    db = hs.spec.database
    if db.engine == "postgres":
        import psycopg2

        conn = psycopg2.connect(host=db.host, port=db.port, user=db.user, dbname=db.name)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM events WHERE event_id = %s", (event_id,))
                return cur.fetchone() is not None
        finally:
            conn.close()
    path = hs.bundle_dir / "data" / "homeserver.db"
    with sqlite3.connect(Path(path)) as conn:
        return (
            conn.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
            is not None
        )


def _bodies(hs: Homeserver, room: str) -> list[str]:
    chunk = hs.api("GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50").json()
    return [e["content"].get("body") for e in chunk["chunk"] if e["type"] == "m.room.message"]


def _send(hs: Homeserver, room: str, body: str) -> str:
    response = hs.api(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{body}",
        {"msgtype": "m.text", "body": body},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


@pytest.mark.parametrize("database", DATABASES)
def test_expired_messages_are_purged_from_the_database(tmp_path: Path, database: str) -> None:
    with homeserver_factory(tmp_path) as make:
        hs = make(
            {
                "retention": {
                    "default_lifetime": "3s",
                    "min_lifetime": "1s",
                    "max_lifetime": "1d",
                    "purge_interval": "1s",
                }
            },
            database=database,
        )
        room = create_room(hs).json()["room_id"]
        old = _send(hs, room, "soon-gone")
        assert _event_in_database(hs, old)
        assert "soon-gone" in _bodies(hs, room)
        time.sleep(3.5)  # let the message outlive its 3 s lifetime
        _send(hs, room, "fresh")  # the newest event is never purged; this one stays
        deadline = time.monotonic() + 90
        while _event_in_database(hs, old) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _event_in_database(hs, old), "the purge job did not delete the event"
        bodies = _bodies(hs, room)
        assert "soon-gone" not in bodies
        assert "fresh" in bodies


def test_an_org_can_forbid_rooms_shortening_retention(homeservers) -> None:  # type: ignore[no-untyped-def]
    hs = homeservers({"retention": {"default_lifetime": "90d", "allow_shorten": False}})
    room = create_room(hs, {"name": "keep it"}).json()["room_id"]
    assert_refused(put_retention(hs, room, {"max_lifetime": 2 * DAY}))
    kept = put_retention(hs, room, {"max_lifetime": 90 * DAY})
    assert kept.status_code == 200, json_of(kept)
    longer = put_retention(hs, room, {"max_lifetime": 200 * DAY})
    assert longer.status_code == 200, json_of(longer)
