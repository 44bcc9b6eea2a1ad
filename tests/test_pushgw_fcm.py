"""The FCM client against the local fake FCM: token grant, retries, error mapping on the wire."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pusher_gateway.config import GatewayConfig, parse_config
from pusher_gateway.errors import Outcome
from pusher_gateway.fcm import AccessTokens, FcmSender, build_message
from pusher_gateway.metrics import Metrics
from pusher_gateway.validation import parse_notification
from tests.fakes.fake_fcm import FakeFCM, http_date

pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated")


@pytest.fixture
def fcm() -> Iterator[FakeFCM]:
    with FakeFCM() as fake:
        yield fake


@pytest.fixture
def sa(fcm: FakeFCM, tmp_path: Path) -> Path:
    return fcm.write_service_account(tmp_path / "sa.json", "proj-t")


def make_config(fcm: FakeFCM, sa: Path, **extra: Any) -> GatewayConfig:
    raw: dict[str, Any] = {"fcm_base_url": fcm.base_url, "fcm_http": "h2c",
                           "retry_base_seconds": 0.01, "retry_max_delay_seconds": 0.05,
                           "apps": [{"app_id": "com.t", "service_account": str(sa)}]}
    raw.update(extra)
    return parse_config(raw)


def send(config: GatewayConfig, tokens: list[str], budget: float = 5.0,
         event_id: str = "$e") -> list[Outcome]:
    async def go() -> list[Outcome]:
        sender = FcmSender(config, Metrics(), random.Random(0))
        app = config.apps[0]
        loop = asyncio.get_running_loop()
        try:
            msgs = []
            for t in tokens:
                n = parse_notification({"notification": {
                    "event_id": event_id, "room_id": "!r:t", "counts": {"unread": 1},
                    "devices": [{"app_id": "com.t", "pushkey": t}]}})
                msgs.append(build_message(app, n, n.devices[0]))
            deadline = loop.time() + budget
            return list(await asyncio.gather(*(sender.send(app, m, deadline) for m in msgs)))
        finally:
            await sender.close()

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["h2c", "http1"])
def test_delivers_over_http2_and_http1(fcm: FakeFCM, sa: Path, mode: str) -> None:
    out = send(make_config(fcm, sa, fcm_http=mode), ["tok-a", "tok-b"])
    assert [o.kind for o in out] == ["delivered", "delivered"]
    got = fcm.messages
    assert {m.message["token"] for m in got} == {"tok-a", "tok-b"}
    assert all(m.project == "proj-t" for m in got)
    assert got[0].message["data"] == {"event_id": "$e", "room_id": "!r:t", "prio": "high",
                                      "unread": "1"}


def test_token_is_fetched_once_for_concurrent_sends(fcm: FakeFCM, sa: Path) -> None:
    fcm.set(token_latency=0.3)
    out = send(make_config(fcm, sa), [f"tok-{i}" for i in range(20)])
    assert {o.kind for o in out} == {"delivered"}
    assert fcm.counters()["token_requests"] == 1


def test_token_refreshed_ahead_of_expiry_in_the_background(fcm: FakeFCM, sa: Path) -> None:
    fcm.set(token_lifetime=300)  # at once inside a 300 s refresh-ahead window

    async def go() -> tuple[str, str, str]:
        tokens = AccessTokens(sa, Metrics(), refresh_ahead=300)
        first = await tokens.get()
        again = tokens.current()  # still valid: returned at once, refresh starts behind it
        assert tokens._inflight is not None
        fresh = await tokens._inflight
        return first, again, fresh

    first, again, fresh = asyncio.run(go())
    assert first == again and fresh != first
    assert fcm.counters()["token_requests"] == 2


def test_revoked_token_is_replaced_once(fcm: FakeFCM, sa: Path) -> None:
    cfg = make_config(fcm, sa)

    async def go() -> list[Outcome]:
        sender = FcmSender(cfg, Metrics())
        app = cfg.apps[0]
        n = parse_notification({"notification": {"devices": [{"app_id": "com.t",
                                                              "pushkey": "tok"}]}})
        msg = build_message(app, n, n.devices[0])
        loop = asyncio.get_running_loop()
        first = await sender.send(app, msg, loop.time() + 5)
        fcm.expire_tokens()  # FCM now answers 401 to the cached token
        second = await sender.send(app, msg, loop.time() + 5)
        await sender.close()
        return [first, second]

    assert [o.kind for o in asyncio.run(go())] == ["delivered", "delivered"]
    assert fcm.counters()["token_requests"] == 2


def test_dead_tokens_are_rejected_by_error_code(fcm: FakeFCM, sa: Path) -> None:
    fcm.set(unregistered={"gone"}, invalid={"bad"}, mismatched={"other"})
    out = send(make_config(fcm, sa), ["gone", "bad", "other", "fine"])
    assert [(o.kind, o.code) for o in out] == [
        ("rejected", "UNREGISTERED"), ("rejected", "INVALID_ARGUMENT"),
        ("rejected", "SENDER_ID_MISMATCH"), ("delivered", "OK")]


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_errors_are_retried(fcm: FakeFCM, sa: Path, status: int) -> None:
    fcm.fail_next(2, status=status)
    out = send(make_config(fcm, sa), ["tok"])
    assert out[0].kind == "delivered"
    assert fcm.counters()["send_attempts"] == 3


@pytest.mark.parametrize("as_date", [False, True])
def test_retry_after_beyond_the_budget_gives_up_at_once(fcm: FakeFCM, sa: Path,
                                                        as_date: bool) -> None:
    fcm.fail_next(1, status=503, retry_after=http_date(30) if as_date else "30")
    out = send(make_config(fcm, sa), ["tok"], budget=2.0)
    assert out[0].kind == "retry" and out[0].code == "UNAVAILABLE"
    assert out[0].retry_after is not None and out[0].retry_after > 20
    assert fcm.counters()["send_attempts"] == 1  # did not hammer FCM inside the wait


def test_short_retry_after_is_honoured(fcm: FakeFCM, sa: Path) -> None:
    fcm.fail_next(1, status=429, retry_after="1")
    assert send(make_config(fcm, sa), ["tok"])[0].kind == "delivered"


def test_outage_exhausts_the_budget_and_says_retry(fcm: FakeFCM, sa: Path) -> None:
    fcm.set(outage=True)
    out = send(make_config(fcm, sa), ["tok"], budget=0.5)
    assert out[0].kind == "retry"
    assert fcm.counters()["send_attempts"] > 1 and fcm.messages == []


def test_one_failing_device_does_not_fail_the_others(fcm: FakeFCM, sa: Path) -> None:
    fcm.fail_next(100, status=503, token="flaky")
    out = send(make_config(fcm, sa), ["flaky", "ok1", "ok2"], budget=0.5)
    assert [o.kind for o in out] == ["retry", "delivered", "delivered"]


def test_unreachable_fcm_is_a_network_retry(sa: Path) -> None:
    with FakeFCM() as other:
        dead_url = other.base_url  # closed once the block ends
    cfg = parse_config({"fcm_base_url": dead_url, "retry_base_seconds": 0.01,
                        "apps": [{"app_id": "com.t", "service_account": str(sa)}]})
    out = send(cfg, ["tok"], budget=0.3)
    assert out[0].kind == "retry" and out[0].code in ("NETWORK", "OAUTH_TOKEN", "DEADLINE")


def test_payload_is_within_fcm_limits(fcm: FakeFCM, sa: Path) -> None:
    cfg = make_config(fcm, sa)

    async def go() -> Outcome:
        sender = FcmSender(cfg, Metrics())
        n = parse_notification({"notification": {
            "event_id": "$e", "room_id": "!r", "room_name": "N" * 9000,
            "sender_display_name": "é" * 3000,
            "devices": [{"app_id": "com.t", "pushkey": "tok"}]}})
        msg = build_message(cfg.apps[0], n, n.devices[0])
        try:
            return await sender.send(cfg.apps[0], msg, asyncio.get_running_loop().time() + 5)
        finally:
            await sender.close()

    assert asyncio.run(go()).kind == "delivered"  # the fake enforces FCM's 4096 bytes


def test_fake_refuses_a_service_account_it_did_not_issue(fcm: FakeFCM, tmp_path: Path) -> None:
    """The token grant is really verified: a key FCM does not know gets no token."""
    from tests.fakes.fake_fcm import make_service_account, write_json_0600

    _, _, info = make_service_account(fcm.token_uri, "proj-t")
    stranger = write_json_0600(tmp_path / "stranger.json", info)
    out = send(make_config(fcm, stranger), ["tok"], budget=0.5)
    assert out[0].kind == "retry" and out[0].code == "OAUTH_TOKEN"
    assert fcm.counters()["token_requests"] >= 1 and fcm.messages == []


@pytest.mark.parametrize(("mode", "version"), [("auto", "h2"), ("http1", "http/1.1")])
def test_tls_with_alpn_like_the_real_fcm(tmp_path: Path, mode: str, version: str) -> None:
    """``auto`` over https negotiates HTTP/2 (ALPN) through httpx; ``http1`` uses the pool."""
    with FakeFCM(tls=True) as fcm:
        sa = fcm.write_service_account(tmp_path / "sa.json", "proj-t")
        cfg = make_config(fcm, sa, fcm_http=mode, fcm_ca_file=str(fcm.ca_file))
        assert cfg.fcm_base_url.startswith("https://")
        out = send(cfg, ["tok-tls-1", "tok-tls-2"])
        assert [o.kind for o in out] == ["delivered", "delivered"]
        assert fcm.counters()["accepted"] == 2
        assert fcm.protocols == {version}


def test_tls_without_the_ca_fails_as_a_retry(tmp_path: Path) -> None:
    with FakeFCM(tls=True) as fcm:
        sa = fcm.write_service_account(tmp_path / "sa.json", "proj-t")
        out = send(make_config(fcm, sa, fcm_http="auto"), ["tok"], budget=0.3)
        assert out[0].kind == "retry" and out[0].code == "NETWORK"
        assert fcm.messages == []
