"""Minors and other servers: two real Synapses federating over loopback (design.md recipe).

Server names are IP literals with a port, the federation listener is TLS with a self-signed
certificate, certificate checks are off and loopback is allowed, so invites and joins really
cross between the two homeservers.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.cli_runner import chat500_users
from tests.harness.homeserver import Homeserver, free_port, homeserver_factory, json_of

pytestmark = pytest.mark.slow

RESTRICTED = "This is not available to accounts of minors on this server."


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fed.crt", directory / "fed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def federating(
    make: Any,
    tls: tuple[Path, Path],
    fed_port: int,
    peer: str,
    spec: dict[str, Any],
    name: str,
    database: str = "sqlite",
) -> Homeserver:
    client_port = free_port()
    listeners = [
        {
            "port": client_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": False,
            "x_forwarded": True,
            "resources": [{"names": ["client"], "compress": False}],
        },
        {
            "port": fed_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": True,
            "resources": [{"names": ["federation"], "compress": False}],
        },
    ]
    overrides = {
        "listeners": listeners,
        "tls_certificate_path": str(tls[0]),
        "tls_private_key_path": str(tls[1]),
        "federation_verify_certificates": False,
        "federation_ip_range_blacklist": [],
        "ip_range_whitelist": ["127.0.0.1"],
    }
    document = {"federation": {"enabled": True, "allow": [peer]}, **spec}
    return make(
        document,
        overrides,
        server_name=f"127.0.0.1:{fed_port}",
        port=client_port,
        name=name,
        database=database,
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Homeserver, Homeserver]]:
    root = tmp_path_factory.mktemp("federation")
    tls = self_signed(root)
    port_a, port_b = free_port(), free_port()
    with homeserver_factory(root) as make:
        school = federating(
            make,
            tls,
            port_a,
            f"127.0.0.1:{port_b}",
            {"minors": {"enabled": True}},
            "school",
            request.param,
        )
        other = federating(make, tls, port_b, f"127.0.0.1:{port_a}", {}, "other")
        yield school, other


@pytest.fixture(scope="module")
def people(pair: tuple[Homeserver, Homeserver]) -> dict[str, Any]:
    school, other = pair
    target = ("--homeserver", school.base_url)
    done = chat500_users("create", "kid", "--minor", "--json", *target, token=school.admin_token)
    assert done.returncode == 0, done.stderr
    kid = json.loads(done.stdout)
    done = chat500_users(
        "consent",
        kid["user_id"],
        "--guardian",
        "Ann",
        "--relation",
        "parent",
        "--contact",
        "ann@example.org",
        "--evidence",
        "f1",
        *target,
        token=school.admin_token,
    )
    assert done.returncode == 0, done.stderr
    teacher_id, teacher_pw = school.create_user("teacher")
    remote_id, remote_pw = other.create_user("remote")
    return {
        "kid": (kid["user_id"], school.login_token("kid", kid["password"])),
        "teacher": (teacher_id, school.login_token("teacher", teacher_pw)),
        "remote": (remote_id, other.login_token("remote", remote_pw)),
    }


def call(hs: Homeserver, token: str, method: str, path: str, body: Any = None) -> Any:
    return hs.api(
        method, "/_matrix/client/v3" + path, body if body is not None else {}, token=token
    )


def wait_for_invite(hs: Homeserver, token: str, room_id: str) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sync = call(hs, token, "GET", "/sync?timeout=1000", None)
        if room_id in sync.json().get("rooms", {}).get("invite", {}):
            return True
    return False


def assert_restricted(response: Any) -> None:
    body = json_of(response)
    assert response.status_code == 403, body
    assert body["errcode"] == "M_FORBIDDEN", body
    assert body["error"] == RESTRICTED, body


def test_adults_federate_so_the_setup_is_real(pair: Any, people: dict[str, Any]) -> None:
    school, other = pair
    remote_id, remote_token = people["remote"]
    teacher_id, teacher_token = people["teacher"]
    room = call(other, remote_token, "POST", "/createRoom", {"invite": [teacher_id]})
    assert room.status_code == 200, room.text
    room_id = room.json()["room_id"]
    assert wait_for_invite(school, teacher_token, room_id)
    joined = call(school, teacher_token, "POST", f"/join/{room_id}")
    assert joined.status_code == 200, joined.text
    people["mixed_room"] = room_id


def test_remote_user_cannot_invite_a_minor(pair: Any, people: dict[str, Any]) -> None:
    school, other = pair
    kid_id, kid_token = people["kid"]
    _, remote_token = people["remote"]
    room_id = call(other, remote_token, "POST", "/createRoom", {}).json()["room_id"]
    invite = call(other, remote_token, "POST", f"/rooms/{room_id}/invite", {"user_id": kid_id})
    assert invite.status_code == 403, invite.text
    assert RESTRICTED in invite.text  # our refusal, relayed by the other server
    sync = call(school, kid_token, "GET", "/sync?timeout=0", None).json()
    assert room_id not in sync.get("rooms", {}).get("invite", {})


def test_minor_cannot_invite_remote_users_or_join_their_rooms(
    pair: Any, people: dict[str, Any]
) -> None:
    school, _ = pair
    _, kid_token = people["kid"]
    remote_id, _ = people["remote"]
    own = call(school, kid_token, "POST", "/createRoom", {}).json()["room_id"]
    assert_restricted(
        call(school, kid_token, "POST", f"/rooms/{own}/invite", {"user_id": remote_id})
    )
    assert_restricted(call(school, kid_token, "POST", "/createRoom", {"invite": [remote_id]}))
    assert_restricted(call(school, kid_token, "POST", f"/join/{people['mixed_room']}"))


def test_nobody_brings_a_minor_and_a_remote_user_together(
    pair: Any, people: dict[str, Any]
) -> None:
    school, other = pair
    kid_id, kid_token = people["kid"]
    teacher_id, teacher_token = people["teacher"]
    remote_id, remote_token = people["remote"]
    # The teacher (and the server admin, who bypasses user_may_* checks) may not invite the
    # kid into the room shared with the other server...
    for token in (teacher_token, school.admin_token):
        if token == school.admin_token:
            call(
                school,
                teacher_token,
                "POST",
                f"/rooms/{people['mixed_room']}/invite",
                {"user_id": school.admin.user_id},
            )
            call(school, token, "POST", f"/join/{people['mixed_room']}")
        assert_restricted(
            call(
                school, token, "POST", f"/rooms/{people['mixed_room']}/invite", {"user_id": kid_id}
            )
        )
    # ...nor a remote user into a room the kid is in.
    room = call(
        school, teacher_token, "POST", "/createRoom", {"preset": "public_chat", "invite": [kid_id]}
    ).json()["room_id"]
    assert call(school, kid_token, "POST", f"/join/{room}").status_code == 200
    assert_restricted(
        call(school, teacher_token, "POST", f"/rooms/{room}/invite", {"user_id": remote_id})
    )
    admin_room = call(
        school, school.admin_token, "POST", "/createRoom", {"invite": [kid_id]}
    ).json()["room_id"]
    assert_restricted(
        call(
            school,
            school.admin_token,
            "POST",
            f"/rooms/{admin_room}/invite",
            {"user_id": remote_id},
        )
    )
    # A public room with the kid in it cannot be joined from the other server either.
    joined = call(other, remote_token, "POST", f"/join/{room}?server_name={school.server_name}")
    assert joined.status_code == 403 and RESTRICTED in joined.text, joined.text
    members = call(school, teacher_token, "GET", f"/rooms/{room}/joined_members", None).json()
    assert remote_id not in members["joined"]
    assert teacher_id in members["joined"] and kid_id in members["joined"]
