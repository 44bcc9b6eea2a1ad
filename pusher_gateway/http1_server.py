"""A small HTTP/1.1 server protocol on Twisted, for the gateway's two listeners.

Why not ``twisted.web``: the Push Gateway API is two JSON endpoints, and at thousands of
requests/s a core spent a third of its time in ``twisted.web``'s general machinery (a
``Request`` object with its header containers, resource traversal, per-request timers, chunked
response encoding). This protocol does what a homeserver's pusher and a Prometheus scraper
need, by RFC 9112, and no more:

- keep-alive and pipelining (answers in request order), ``Connection: close``, HTTP/1.0;
- bodies by ``Content-Length`` or ``chunked``, refused past ``max_body`` (413) and read no
  further than a bounded discard, so a client always sees its answer;
- ``Expect: 100-continue``; strict framing (conflicting lengths, a length beside chunked, bad
  header lines are a 400 and a close: no request smuggling through a proxy);
- each answer is one write (head and body together: no Nagle/delayed-ACK stall);
- idle connections are closed after ``idle_timeout`` and a request still incomplete after
  ``request_timeout`` is dropped, by one sweep per listener instead of a timer per request.

The application is a callable from ``HttpRequest`` to a ``Reply``, or to an awaitable of one
(run as an asyncio task on the reactor's loop) for answers that wait on FCM.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import protocol
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString

log = logging.getLogger("pusher_gateway.http")

MAX_HEAD_BYTES = 16384
# A refused body up to this size is read and dropped so the client reads its 413 before the
# connection closes (closing with unread data makes the kernel reset it, and the answer is lost).
DISCARD_BYTES = 1 << 20
_STATUS_TEXT = {
    100: b"Continue", 200: b"OK", 201: b"Created", 204: b"No Content", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 411: b"Length Required", 413: b"Content Too Large",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(slots=True)
class HttpRequest:
    method: bytes
    path: bytes  # without the query string
    query: bytes
    headers: dict[bytes, bytes]  # lower-cased names; repeated fields joined with ", "
    body: bytes


App = Callable[[HttpRequest], Reply | Awaitable[Reply]]
ErrorReply = Callable[[int, str], Reply]


class BadRequest(Exception):
    """A framing error: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_date: list[Any] = [0, b""]


def http_date() -> bytes:
    """The ``Date`` value, formatted once a second rather than once per answer."""
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, datetimeToString(now)
    return _date[1]  # type: ignore[no-any-return]


def encode_reply(reply: Reply, *, close: bool, keep_alive: bool = False,
                 head_only: bool = False) -> bytes:
    """The whole answer in one buffer; ``keep_alive`` says so to an HTTP/1.0 client."""
    status = reply.status
    lines = [
        b"HTTP/1.1 %d %s\r\nServer: chat500-pushgw\r\nDate: %s\r\nContent-Type: %s\r\n"
        b"Content-Length: %d\r\n"
        % (status, _STATUS_TEXT.get(status, b"Status"), http_date(), reply.content_type,
           len(reply.body))
    ]
    for name, value in reply.headers:
        lines.append(b"%s: %s\r\n" % (name, value))
    if close:
        lines.append(b"Connection: close\r\n")
    elif keep_alive:
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    if not head_only:
        lines.append(reply.body)
    return b"".join(lines)


def parse_head(head: bytes) -> tuple[bytes, bytes, bytes, bytes, dict[bytes, bytes]]:
    """(method, path, query, version, headers) of a request head without its final CRLFCRLF."""
    lines = head.split(b"\r\n")
    breaks = len(lines) - 1
    if head.count(b"\n") != breaks or head.count(b"\r") != breaks or b"\0" in head:
        # A bare CR or LF is a line break to some parsers and not to others: refused, as is NUL.
        raise BadRequest(400, "bare CR, LF or NUL in the request head")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN_CHARS.issuperset(method):
        raise BadRequest(400, "malformed method")
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        if version.startswith(b"HTTP/"):
            raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are served")
        raise BadRequest(400, "malformed request line")
    path, _, query = target.partition(b"?")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN_CHARS.issuperset(name):
            raise BadRequest(400, "malformed header line")  # includes obsolete line folding
        name = name.lower()
        value = value.strip(b" \t")
        if name in headers:
            if name == b"content-length" and headers[name] != value:
                raise BadRequest(400, "conflicting Content-Length")
            if name != b"content-length":
                headers[name] = headers[name] + b", " + value
        else:
            headers[name] = value
    return method, path, query, version, headers


def body_framing(headers: dict[bytes, bytes]) -> tuple[str, int]:
    """("length", n) or ("chunked", 0) for the body that follows; refusals as ``BadRequest``."""
    coding = headers.get(b"transfer-encoding")
    if coding is not None:
        if b"content-length" in headers:
            raise BadRequest(400, "Content-Length together with Transfer-Encoding")
        if coding.lower() != b"chunked":
            raise BadRequest(501, "only the chunked transfer coding is accepted")
        return "chunked", 0
    raw = headers.get(b"content-length")
    if raw is None:
        return "length", 0
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(400, "malformed Content-Length")
    return "length", int(raw)


class _Chunks:
    """Incremental decoder of a chunked body; ``feed`` returns the bytes it consumed."""

    __slots__ = ("body", "size", "done", "_remaining", "_trailer")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.size = 0
        self.done = False
        self._remaining = -1  # -1: expecting a size line; -2: expecting the CRLF after data
        self._trailer = False

    def feed(self, buf: bytes, keep: bool) -> int:
        pos = 0
        while not self.done:
            if self._trailer:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                if end == pos:  # the empty line ending the trailer section
                    self.done = True
                pos = end + 2
            elif self._remaining == -1:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > 1024:
                        raise BadRequest(400, "malformed chunk size")
                    break
                size_text = buf[pos:end].split(b";", 1)[0].strip(b" \t")
                if not size_text or len(size_text) > 15 or not _HEX.issuperset(size_text):
                    raise BadRequest(400, "malformed chunk size")
                size = int(size_text, 16)
                pos = end + 2
                if size == 0:
                    self._trailer = True
                else:
                    self._remaining = size
            elif self._remaining == -2:
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise BadRequest(400, "malformed chunk")
                pos += 2
                self._remaining = -1
            else:
                take = min(self._remaining, len(buf) - pos)
                if take == 0:
                    break
                if keep:
                    self.body.append(buf[pos:pos + take])
                self.size += take
                self._remaining -= take
                pos += take
                if self._remaining == 0:
                    self._remaining = -2
        return pos


class HttpChannel(protocol.Protocol):
    """One connection: parse requests one at a time, answer each in order."""

    factory: HttpFactory
    transport: Any  # a TCP transport; Twisted's zope interfaces do not type-check as classes

    def __init__(self) -> None:
        self._buf = b""
        self._head: HttpRequest | None = None  # its body still being read
        self._keep_alive = True
        self._http10 = False
        self._length = 0  # body bytes still to read when framed by Content-Length
        self._chunks: _Chunks | None = None
        self._too_big = False
        self._busy = False  # a request is with the application
        self._paused = False
        self._closing = False
        self.started: float | None = None  # when the request being read began
        self.last_active = 0.0

    # -- connection lifecycle ---------------------------------------------------------------
    def connectionMade(self) -> None:
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)
        self.last_active = self.factory.clock()
        self.factory.channels.add(self)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._closing = True
        self.factory.channels.discard(self)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self.transport.loseConnection()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._buf and self._head is None

    # -- reading ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.last_active = self.factory.clock()
        self._buf = self._buf + data if self._buf else data
        if not self._busy:
            self._advance()
        elif not self._paused and len(self._buf) > MAX_HEAD_BYTES + self.factory.max_body:
            self._paused = True  # pipelined too far ahead: wait for our answers
            self.transport.pauseProducing()

    def _advance(self) -> None:
        """Parse and hand on as many complete requests as the buffer holds, in order."""
        try:
            while not self._busy and not self._closing and self._buf:
                if self._head is None and not self._read_head():
                    return
                if not self._read_body():
                    return
        except BadRequest as exc:
            self._refuse(exc.status, str(exc))

    def _read_head(self) -> bool:
        buf = self._buf
        if self.started is None:
            self.started = self.last_active
            if buf[:2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
                self._buf = buf = buf.lstrip(b"\r\n")
                if not buf:
                    self.started = None
                    return False
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise BadRequest(431, "request head too large")
            return False
        if end > MAX_HEAD_BYTES:
            raise BadRequest(431, "request head too large")
        method, path, query, version, headers = parse_head(buf[:end])
        self._buf = buf[end + 4:]
        connection = headers.get(b"connection", b"").lower()
        self._http10 = version == b"HTTP/1.0"
        if self._http10:
            self._keep_alive = b"keep-alive" in connection
        else:
            self._keep_alive = b"close" not in connection
        kind, length = body_framing(headers)
        self._too_big = length > self.factory.max_body
        expects = (not self._http10 and (kind == "chunked" or length > 0)
                   and headers.get(b"expect", b"").lower() == b"100-continue")
        if self._too_big and (expects or length > DISCARD_BYTES):
            raise BadRequest(413, "request body too large")  # before the client sends it
        if kind == "chunked":
            self._chunks = _Chunks()
        self._length = length
        self._head = HttpRequest(method, path, query, headers, b"")
        if expects:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _read_body(self) -> bool:
        buf = self._buf
        chunks = self._chunks
        if chunks is not None:
            used = chunks.feed(buf, keep=not self._too_big)
            self._buf = buf[used:]
            if chunks.size > self.factory.max_body:
                self._too_big = True
                chunks.body.clear()
                if chunks.size > DISCARD_BYTES:
                    raise BadRequest(413, "request body too large")
            if not chunks.done:
                return False
            body = b"".join(chunks.body)
            self._chunks = None
        else:
            length = self._length
            if len(buf) < length:
                return False
            if length:
                body, self._buf = buf[:length], buf[length:]
            else:
                body = b""
        request, self._head = self._head, None
        assert request is not None
        request.body = body
        self.started = None
        if self._too_big:
            self._too_big = False
            self._respond(self.factory.error_reply(413, "Request body too large"), request)
        else:
            self._dispatch(request)
        return True

    # -- answering --------------------------------------------------------------------------
    def _dispatch(self, request: HttpRequest) -> None:
        try:
            result = self.factory.app(request)
        except Exception:
            log.exception("%s %s: internal error", request.method.decode(), request.path[:64])
            result = self.factory.error_reply(500, "Internal error")
        if type(result) is Reply:
            self._respond(result, request)
            return
        self._busy = True
        task = asyncio.ensure_future(result)  # type: ignore[arg-type]
        task.add_done_callback(lambda done: self._answered(done, request))

    def _answered(self, task: asyncio.Future[Reply], request: HttpRequest) -> None:
        self._busy = False
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                exc = task.exception()
                log.error("%s %s: internal error", request.method.decode(), request.path[:64],
                          exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
            reply = self.factory.error_reply(500, "Internal error")
        else:
            reply = task.result()
        if self._closing:  # the client went away; the work is done regardless
            return
        self._respond(reply, request)
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        self.last_active = self.factory.clock()
        self._advance()

    def _respond(self, reply: Reply, request: HttpRequest) -> None:
        close = not self._keep_alive or self.factory.draining
        self.transport.write(encode_reply(reply, close=close, keep_alive=self._http10 and not close,
                                          head_only=request.method == b"HEAD"))
        if close:
            self.close()

    def _refuse(self, status: int, message: str) -> None:
        """A framing error: the stream can no longer be trusted, so answer and close."""
        self.transport.write(encode_reply(self.factory.error_reply(status, message), close=True))
        self.close()


class HttpFactory(protocol.Factory):
    """One listener: the application, its limits and the sweep that closes stale connections."""

    protocol = HttpChannel  # type: ignore[assignment]
    noisy = False

    def __init__(self, app: App, error_reply: ErrorReply, *, max_body: int,
                 idle_timeout: float = 300.0, request_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.error_reply = error_reply
        self.max_body = max_body
        # Homeservers keep pooled connections for minutes (Synapse: 2 min), longer than this
        # would be wasteful, shorter would make a pooled POST fail on a connection we closed.
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.clock = clock
        self.channels: set[HttpChannel] = set()
        self.draining = False
        self._sweeper = LoopingCall(self.sweep)

    def startFactory(self) -> None:
        self._sweeper.start(min(5.0, self.request_timeout / 2), now=False)

    def stopFactory(self) -> None:
        if self._sweeper.running:
            self._sweeper.stop()

    def sweep(self) -> None:
        now = self.clock()
        for channel in list(self.channels):
            if channel.started is not None and now - channel.started > self.request_timeout:
                channel._refuse(408, "request not completed in time")
            elif channel.idle and now - channel.last_active > self.idle_timeout:
                channel.close()

    def drain(self) -> None:
        """From now on every answer closes its connection; idle connections close now."""
        self.draining = True
        for channel in list(self.channels):
            if channel.idle:
                channel.close()
