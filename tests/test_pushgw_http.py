"""The gateway process over real HTTP: chat500-pushgw in front of the local fake FCM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.fake_fcm import FakeFCM

pytestmark = pytest.mark.slow
APP = "com.acme.chat.android"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """A ``chat500-pushgw`` child process; stderr goes to a file the tests can read."""

    def __init__(self, workdir: Path, fcm: FakeFCM, **config: Any) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.log = workdir / "pushgw.log"
        cfg = {
            "listen": {"port": self.port}, "metrics": {"port": self.metrics_port},
            "fcm_base_url": fcm.base_url, "fcm_http": "h2c", "log_level": "debug",
            "retry_budget_seconds": 1.5, "retry_base_seconds": 0.05,
            "retry_max_delay_seconds": 0.2, "max_body_bytes": 8192, "max_devices": 10,
            "apps": [
                {"app_id": APP, "service_account": "sa.json",
                 "fcm_options": {"android": {"ttl": "600s"}}},
                {"app_id": "com.acme.ios.*", "service_account": "sa.json", "platform": "ios"},
            ],
        }
        cfg.update(config)
        fcm.write_service_account(workdir / "sa.json", "acme-prod")
        self.config = workdir / "pushgw.yaml"
        self.config.write_text(json.dumps(cfg))  # JSON is YAML
        exe = Path(sys.executable).with_name("chat500-pushgw")
        self._err = self.log.open("w")
        self.proc = subprocess.Popen([str(exe), "-c", str(self.config)], stderr=self._err)
        self._wait_listening()

    def _wait_listening(self) -> None:
        for _ in range(300):
            if "listening on" in self.log.read_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError("gateway did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notify(self, body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/_matrix/push/v1/notify", json=body, timeout=30, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return int(self.proc.returncode)


@pytest.fixture(scope="module")
def fcm() -> Iterator[FakeFCM]:
    with FakeFCM() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(fcm: FakeFCM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("pushgw"), fcm)
    yield gw
    assert gw.stop() == 0


@pytest.fixture(autouse=True)
def fresh_fcm(fcm: FakeFCM) -> None:
    fcm.set(messages=[], outage=False, latency=0.0, unregistered=set(), invalid=set(),
            mismatched=set())
    fcm.app._failures.clear()


_seq = iter(range(10**9))


def note(*devices: dict[str, Any], **fields: Any) -> dict[str, Any]:
    n: dict[str, Any] = {"event_id": f"$ev{next(_seq)}:acme.test", "room_id": "!room:acme.test",
                         "prio": "high", "counts": {"unread": 2}, "devices": list(devices)}
    n.update(fields)
    return {"notification": n}


def dev(pushkey: str, app_id: str = APP, **kw: Any) -> dict[str, Any]:
    return {"app_id": app_id, "pushkey": pushkey, "pushkey_ts": 1700000000, **kw}


def test_delivers_minimal_data_once(gateway: Gateway, fcm: FakeFCM) -> None:
    body = note(dev("tok-1", data={"format": "event_id_only"}), dev("tok-x", app_id="org.nope"))
    r = gateway.notify(body)
    assert r.status_code == 200 and r.json() == {"rejected": ["tok-x"]}
    (msg,) = fcm.messages
    assert msg.project == "acme-prod"
    assert msg.message == {
        "token": "tok-1",
        "data": {"event_id": body["notification"]["event_id"], "room_id": "!room:acme.test",
                 "unread": "2"},
        "android": {"priority": "high", "ttl": "600s"},
    }
    # The homeserver's retry of the same notification: answered, not sent again.
    assert gateway.notify(body).json() == {"rejected": ["tok-x"]}
    assert len(fcm.messages) == 1


def test_glob_app_and_low_priority(gateway: Gateway, fcm: FakeFCM) -> None:
    r = gateway.notify(note(dev("ios-1", app_id="com.acme.ios.prod"), prio="low"))
    assert r.json() == {"rejected": []}
    assert fcm.messages[0].message["apns"] == {"headers": {"apns-priority": "5"}}


def test_dead_tokens_are_rejected(gateway: Gateway, fcm: FakeFCM) -> None:
    fcm.set(unregistered={"dead"}, invalid={"bad"}, mismatched={"other"})
    r = gateway.notify(note(dev("dead"), dev("bad"), dev("other"), dev("live")))
    assert r.status_code == 200
    assert sorted(r.json()["rejected"]) == ["bad", "dead", "other"]
    assert [m.message["token"] for m in fcm.messages] == ["live"]


def test_outage_answers_5xx_then_delivers_exactly_once(gateway: Gateway, fcm: FakeFCM) -> None:
    body = note(dev("tok-out"))
    fcm.set(outage=True)
    r = gateway.notify(body)
    assert r.status_code == 503 and r.json()["errcode"] == "M_UNKNOWN"
    assert fcm.messages == []
    fcm.set(outage=False)
    assert gateway.notify(body).json() == {"rejected": []}
    assert gateway.notify(body).json() == {"rejected": []}
    assert [m.message["token"] for m in fcm.messages] == ["tok-out"]


def test_one_failing_device_among_five(gateway: Gateway, fcm: FakeFCM) -> None:
    fcm.fail_next(1000, status=503, token="flaky")
    body = note(*(dev(t) for t in ("a1", "a2", "flaky", "a3", "a4")))
    assert gateway.notify(body).status_code == 503  # the homeserver will retry
    assert sorted(m.message["token"] for m in fcm.messages) == ["a1", "a2", "a3", "a4"]
    fcm.app._failures.clear()
    assert gateway.notify(body).json() == {"rejected": []}
    assert sorted(m.message["token"] for m in fcm.messages) == ["a1", "a2", "a3", "a4", "flaky"]


@pytest.mark.parametrize(("body", "errcode", "field"), [
    (b"{not json", "M_NOT_JSON", None),
    (b"\xff\xfe", "M_NOT_JSON", None),
    (b"[1]", "M_BAD_JSON", "body"),
    (b'{"notification": {"devices": [{"app_id": "a"}]}}', "M_BAD_JSON",
     "notification.devices[0].pushkey"),
    (json.dumps(note(dev("k"), prio="max")).encode(), "M_BAD_JSON", "notification.prio"),
    (json.dumps(note(*(dev(f"k{i}") for i in range(11)))).encode(), "M_BAD_JSON",
     "notification.devices"),
])
def test_bad_bodies(gateway: Gateway, body: bytes, errcode: str, field: str | None) -> None:
    r = httpx.post(f"{gateway.url}/_matrix/push/v1/notify", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errcode"] == errcode
    if field:
        assert r.json()["error"].startswith(field + ":")


def test_body_size_limit(gateway: Gateway, fcm: FakeFCM) -> None:
    big = json.dumps(note(dev("k"), room_name="x" * 9000)).encode()
    r = httpx.post(f"{gateway.url}/_matrix/push/v1/notify", content=big)
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    r = httpx.post(f"{gateway.url}/_matrix/push/v1/notify", content=chunks())
    assert r.status_code == 413
    assert fcm.messages == []


def test_unknown_paths_and_methods(gateway: Gateway) -> None:
    r = httpx.get(f"{gateway.url}/_matrix/push/v1/notify")
    assert r.status_code == 405 and r.json()["errcode"] == "M_UNRECOGNIZED"
    r = httpx.post(f"{gateway.url}/_matrix/push/v2/notify", json={})
    assert r.status_code == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"
    r = httpx.get(f"{gateway.url}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_metrics(gateway: Gateway) -> None:
    gateway.notify(note(dev("m-1")))
    text = httpx.get(f"http://127.0.0.1:{gateway.metrics_port}/metrics").text
    assert 'pushgw_fcm_outcomes_total{app="com.acme.chat.android",code="OK"}' in text
    assert "pushgw_request_seconds_bucket" in text and "pushgw_in_flight" in text
    assert "pushgw_dedup_hits_total" in text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
_device = st.fixed_dictionaries(
    {"app_id": st.sampled_from([APP, "org.unknown"]) | _json,
     "pushkey": st.text(min_size=1, max_size=40) | _json},
    optional={"pushkey_ts": st.integers() | _json, "data": _json, "tweaks": _json})
_notification = st.fixed_dictionaries(
    {"devices": st.lists(_device, max_size=3) | _json},
    optional={k: _json | st.text(max_size=30) for k in (
        "event_id", "room_id", "type", "sender", "prio", "counts", "content", "room_name",
        "sender_display_name", "user_is_target")})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(_json, st.fixed_dictionaries({"notification": _notification}),
                 st.binary(max_size=64)))
def test_random_bodies_never_cause_a_server_error(gateway: Gateway, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(f"{gateway.url}/_matrix/push/v1/notify", content=content, timeout=30)
    assert r.status_code in (200, 400, 413), r.text
    assert r.headers["content-type"] == "application/json"


def test_logs_never_carry_full_pushkeys(gateway: Gateway) -> None:
    secret = "fcm-token-" + "q" * 120
    gateway.notify(note(dev(secret), dev(secret + "-unknown", app_id="org.none")))
    log = gateway.log.read_text()
    assert "req=" in log and "fcm-to…" in log
    assert secret not in log


def test_graceful_shutdown_finishes_in_flight_work(fcm: FakeFCM, tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fcm, retry_budget_seconds=10)
    fcm.set(latency=1.0)
    result: dict[str, Any] = {}

    def call() -> None:
        result["response"] = gw.notify(note(dev("late")))

    sent_before = fcm.counters()["send_attempts"]
    t = threading.Thread(target=call)
    t.start()
    while fcm.counters()["send_attempts"] == sent_before:  # the send is now at FCM
        time.sleep(0.01)
    gw.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert gw.proc.wait(30) == 0
    gw.stop()
    assert result["response"].status_code == 200
    assert [m.message["token"] for m in fcm.messages] == ["late"]
    assert "chat500-pushgw stopped" in gw.log.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gw.url}/health")


def test_sigint_also_stops_cleanly(fcm: FakeFCM, tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fcm)
    gw.proc.send_signal(signal.SIGINT)
    assert gw.proc.wait(30) == 0
    gw.stop()
    assert os.path.getsize(gw.log) > 0


def test_per_app_in_flight_limit_sheds_work_past_its_deadline(fcm: FakeFCM,
                                                              tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fcm, retry_budget_seconds=1.0, apps=[
        {"app_id": APP, "service_account": "sa.json", "max_in_flight": 1}])
    try:
        fcm.set(latency=0.3)
        bodies = [note(dev(f"queued-{i}")) for i in range(8)]
        results: list[int] = [0] * len(bodies)

        def call(i: int) -> None:
            results[i] = gw.notify(bodies[i]).status_code

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert 200 in results and 503 in results  # one slot: the queue's tail is shed
        text = httpx.get(f"http://127.0.0.1:{gw.metrics_port}/metrics").text
        assert 'pushgw_shed_total{app="com.acme.chat.android"}' in text
        fcm.set(latency=0.0)
        for i, status in enumerate(results):  # the homeserver's retries deliver the rest
            if status != 200:
                assert gw.notify(bodies[i]).status_code == 200
        tokens = sorted(m.message["token"] for m in fcm.messages)
        assert tokens == sorted(f"queued-{i}" for i in range(8))
    finally:
        assert gw.stop() == 0
