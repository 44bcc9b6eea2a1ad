"""The gateway's HTTP/1.1 server protocol: framing, keep-alive, limits and timeouts.

Most checks drive ``HttpChannel`` through Twisted's in-memory ``StringTransport`` (byte-exact,
no sockets, no timing); the last ones talk to a real ``chat500-pushgw`` over TCP.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from pusher_gateway.http1_server import DISCARD_BYTES, HttpChannel, HttpFactory, HttpRequest, Reply
from pusher_gateway.server import error_reply
from tests.fakes.fake_fcm import FakeFCM
from tests.test_pushgw_http import Gateway, dev, note


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Echo:
    """An application that records requests and answers with what it saw."""

    def __init__(self) -> None:
        self.seen: list[HttpRequest] = []
        self.pending: list[asyncio.Future[Reply]] = []
        self.defer = False

    def __call__(self, request: HttpRequest) -> Reply | asyncio.Future[Reply]:
        self.seen.append(request)
        if self.defer:
            future: asyncio.Future[Reply] = asyncio.get_event_loop().create_future()
            self.pending.append(future)
            return future
        if request.path == b"/boom":
            raise RuntimeError("application bug")
        answer = {"method": request.method.decode(), "path": request.path.decode(),
                  "body": request.body.decode("latin-1")}
        return Reply(200, json.dumps(answer).encode())


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


class Conn:
    def __init__(self, app: Echo | None = None, max_body: int = 100) -> None:
        self.app = app or Echo()
        self.clock = Clock()
        self.factory = HttpFactory(self.app, error_reply, max_body=max_body, idle_timeout=60,
                                   request_timeout=10, clock=self.clock)
        self.channel = self.factory.buildProtocol(None)
        assert isinstance(self.channel, HttpChannel)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    def send(self, *pieces: bytes) -> list[tuple[int, dict[str, str], bytes]]:
        for piece in pieces:
            self.channel.dataReceived(piece)
        return self.responses()

    def responses(self) -> list[tuple[int, dict[str, str], bytes]]:
        raw = self.transport.value()
        self.transport.clear()
        return parse_responses(raw)

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


def parse_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw
        lines = head.decode("latin-1").split("\r\n")
        version, status, _reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if int(status) == 100:
            length = 0
        out.append((int(status), headers, rest[:length]))
        raw = rest[length:]
    return out


def post(body: bytes, path: bytes = b"/x", extra: bytes = b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n%s\r\n%s"
            % (path, len(body), extra, body))


def test_keep_alive_answers_each_request_in_order() -> None:
    conn = Conn()
    (one,) = conn.send(post(b"first"))
    assert one[0] == 200 and json.loads(one[2])["body"] == "first"
    assert "connection" not in one[1] and not conn.closed
    # Two pipelined requests in one segment, and a request split byte by byte.
    two = conn.send(post(b"a") + post(b"b", path=b"/y?since=1"))
    assert [json.loads(r[2])["body"] for r in two] == ["a", "b"]
    assert conn.app.seen[-1].path == b"/y" and conn.app.seen[-1].query == b"since=1"
    raw = post(b"split")
    for i in range(len(raw) - 1):
        assert conn.send(raw[i:i + 1]) == []
    (last,) = conn.send(raw[-1:])
    assert json.loads(last[2])["body"] == "split"


def test_answers_carry_date_length_and_one_write_each() -> None:
    conn = Conn()
    conn.send(post(b"x"))
    (status, headers, body) = conn.send(post(b"hello"))[0]
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert headers["date"].endswith("GMT") and headers["server"] == "chat500-pushgw"


def test_connection_close_and_http10() -> None:
    conn = Conn()
    (r,) = conn.send(post(b"x", extra=b"Connection: close\r\n"))
    assert r[1]["connection"] == "close" and conn.closed

    conn = Conn()
    (r,) = conn.send(b"GET /h HTTP/1.0\r\n\r\n")
    assert r[0] == 200 and r[1]["connection"] == "close" and conn.closed

    conn = Conn()
    (r,) = conn.send(b"GET /h HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    assert r[1]["connection"] == "keep-alive" and not conn.closed


def test_chunked_bodies_with_extensions_and_trailers() -> None:
    conn = Conn()
    head = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    (r,) = conn.send(head, b"3;ext=1\r\nabc\r\n", b"2\r\nde\r", b"\n0\r\nX-T: 1\r\n\r\n")
    assert json.loads(r[2])["body"] == "abcde" and not conn.closed


def test_bodies_past_the_limit_get_413_and_the_connection_survives() -> None:
    conn = Conn(max_body=10)
    (r,) = conn.send(post(b"x" * 11))
    assert r[0] == 413 and json.loads(r[2])["errcode"] == "M_TOO_LARGE" and not conn.closed
    chunked = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"6\r\nxxxxxx\r\n" * 3
    (r,) = conn.send(chunked + b"0\r\n\r\n")
    assert r[0] == 413 and not conn.closed
    assert conn.app.seen == []  # the application never saw either
    (r,) = conn.send(post(b"fits"))
    assert r[0] == 200


def test_huge_or_expecting_bodies_are_refused_before_they_are_sent() -> None:
    conn = Conn(max_body=10)
    (r,) = conn.send(b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (DISCARD_BYTES + 1))
    assert r[0] == 413 and r[1]["connection"] == "close" and conn.closed

    conn = Conn(max_body=10)
    (r,) = conn.send(b"POST /x HTTP/1.1\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n")
    assert r[0] == 413 and conn.closed


def test_expect_100_continue() -> None:
    conn = Conn()
    interim = conn.send(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert [r[0] for r in interim] == [100]
    (r,) = conn.send(b"ok")
    assert r[0] == 200 and json.loads(r[2])["body"] == "ok"


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /x HTTP/2.0\r\n\r\n", 505),
    (b"G(T /x HTTP/1.1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\na\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"POST /x HTTP/1.1\r\nX: a\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST /x HTTP/1.1\r\nX: a\rContent-Length: 2\r\n\r\nab", 400),
    (b"GET /x HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
])
def test_framing_errors_are_answered_then_closed(raw: bytes, status: int) -> None:
    conn = Conn()
    responses = conn.send(raw)
    assert [r[0] for r in responses] == [status]
    assert json.loads(responses[0][2])["errcode"] in ("M_UNRECOGNIZED", "M_TOO_LARGE")
    assert responses[0][1]["connection"] == "close" and conn.closed
    assert conn.app.seen == []
    assert conn.send(post(b"after")) == []  # nothing more is read from a distrusted stream


def test_identical_repeated_content_length_is_accepted() -> None:
    conn = Conn()
    (r,) = conn.send(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
    assert r[0] == 200


def test_application_errors_become_500_json() -> None:
    conn = Conn()
    (r,) = conn.send(b"GET /boom HTTP/1.1\r\n\r\n")
    assert r[0] == 500 and json.loads(r[2]) == {"errcode": "M_UNKNOWN", "error": "Internal error"}
    assert not conn.closed


def test_head_gets_headers_only() -> None:
    conn = Conn()
    conn.channel.dataReceived(b"HEAD /h HTTP/1.1\r\n\r\n")
    raw = conn.transport.value()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert rest == b"" and b"Content-Length: " in head


def test_awaited_answers_keep_pipelined_requests_in_order(
        loop: asyncio.AbstractEventLoop) -> None:
    app = Echo()
    app.defer = True
    conn = Conn(app)
    assert conn.send(post(b"one") + post(b"two")) == []
    assert len(app.pending) == 1  # the second waits for the first's answer
    app.pending[0].set_result(Reply(200, b'"1"'))
    loop.run_until_complete(asyncio.sleep(0))
    assert [r[2] for r in conn.responses()] == [b'"1"']
    assert len(app.pending) == 2
    app.pending[1].set_exception(RuntimeError("lost"))
    loop.run_until_complete(asyncio.sleep(0))
    assert [r[0] for r in conn.responses()] == [500]


def test_a_client_that_leaves_mid_request_gets_nothing_written(
        loop: asyncio.AbstractEventLoop) -> None:
    app = Echo()
    app.defer = True
    conn = Conn(app)
    conn.send(post(b"one"))
    conn.channel.connectionLost()
    app.pending[0].set_result(Reply(200, b"{}"))
    loop.run_until_complete(asyncio.sleep(0))
    assert conn.transport.value() == b""
    assert conn.factory.channels == set()


def test_sweep_closes_idle_connections_and_stalled_requests() -> None:
    idle, stalled, busy_reader = Conn(), Conn(), Conn()
    idle.send(post(b"x"))
    idle.clock.now += 59
    idle.factory.sweep()
    assert not idle.closed
    idle.clock.now += 2
    idle.factory.sweep()
    assert idle.closed

    stalled.send(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    stalled.clock.now += 11
    stalled.factory.sweep()
    (r,) = stalled.responses()
    assert r[0] == 408 and stalled.closed

    busy_reader.send(b"POST /x HTTP/1.1\r\n")  # a slow client still sending: its clock runs
    busy_reader.clock.now += 9
    busy_reader.factory.sweep()
    assert not busy_reader.closed


def test_drain_closes_idle_connections_and_the_next_answer_closes(
        loop: asyncio.AbstractEventLoop) -> None:
    idle = Conn()
    idle.factory.drain()
    assert idle.closed
    app = Echo()
    app.defer = True
    busy = Conn(app)
    busy.send(post(b"in flight"))
    busy.factory.drain()
    assert not busy.closed
    app.pending[0].set_result(Reply(200, b"{}"))
    loop.run_until_complete(asyncio.sleep(0))
    (r,) = busy.responses()
    assert r[0] == 200 and r[1]["connection"] == "close" and busy.closed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=40), max_size=10))
def test_arbitrary_bytes_never_raise_and_answers_stay_well_formed(
        raw: bytes, cuts: list[int]) -> None:
    conn = Conn()
    pos = 0
    for size in cuts + [len(raw)]:
        conn.channel.dataReceived(raw[pos:pos + size])
        pos += size
    for status, _headers, _body in parse_responses(conn.transport.value()):
        assert status in (100, 200, 400, 408, 413, 431, 501, 505)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=80), st.booleans(), st.lists(st.integers(1, 30), max_size=8))
def test_any_split_of_a_valid_request_gives_the_same_answer(
        body: bytes, chunked: bool, cuts: list[int]) -> None:
    if chunked:
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                           for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        raw = b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded
    else:
        raw = post(body, path=b"/p")
    conn = Conn()
    pos = 0
    for size in cuts + [len(raw)]:
        conn.channel.dataReceived(raw[pos:pos + size])
        pos += size
    (r,) = conn.responses()
    assert r[0] == 200 and json.loads(r[2])["body"] == body.decode("latin-1")


# -- against the real gateway process --------------------------------------------------------

@pytest.fixture(scope="module")
def fcm() -> Iterator[FakeFCM]:
    with FakeFCM() as fake:
        yield fake


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    data = b""
    while True:
        try:
            answers = parse_responses(data)
        except (AssertionError, ValueError):
            answers = []
        if len(answers) >= count and data.count(b"\r\n\r\n") >= count:
            complete = all(len(a[2]) == int(a[1].get("content-length", 0)) for a in answers)
            if complete:
                return answers
        chunk = sock.recv(65536)
        if not chunk:
            return parse_responses(data)
        data += chunk


@pytest.mark.slow
def test_one_connection_carries_pipelined_notifications(fcm: FakeFCM, tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fcm)
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
            bodies = [json.dumps(note(dev(f"pipe-{i}"))).encode() for i in range(3)]
            sock.sendall(b"".join(
                post(b, path=b"/_matrix/push/v1/notify",
                     extra=b"Content-Type: application/json\r\n") for b in bodies))
            answers = _read_answers(sock, 3)
            assert [(a[0], json.loads(a[2])) for a in answers] == [(200, {"rejected": []})] * 3
            sock.sendall(b"GET /health HTTP/1.1\r\n\r\n")  # still open, still answering
            assert _read_answers(sock, 1)[0][0] == 200
        assert sorted(m.message["token"] for m in fcm.messages) == [f"pipe-{i}" for i in range(3)]
    finally:
        assert gw.stop() == 0


@pytest.mark.slow
def test_shutdown_closes_idle_keep_alive_connections(fcm: FakeFCM, tmp_path: Path) -> None:
    gw = Gateway(tmp_path, fcm)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        assert _read_answers(sock, 1)[0][0] == 200
        assert gw.stop() == 0
        assert sock.recv(1) == b""  # closed by the gateway, not left to time out
