"""A lean pooled HTTP/1.1 client for FCM sends, on the reactor's asyncio loop.

Why not only httpx: on this hardware an httpx/httpcore request costs 1-2 ms of CPU (model
objects, anyio shields, pool bookkeeping that grows with concurrency), which caps one core at a
few hundred sends/s. This client does only what ``messages:send`` needs: keep-alive connections
(TCP_NODELAY, optional TLS), the whole request in one write (no Nagle/delayed-ACK stall between
head and body), Content-Length or chunked responses, and a per-request timeout without extra
tasks. It is used for plain-http FCM endpoints (relays, the test fake) and when
``fcm_http: http1``; HTTP/2 over TLS goes through httpx.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from urllib.parse import urlsplit


class HttpError(Exception):
    """The request did not produce a response (connect, reset, timeout, bad framing)."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Conn(asyncio.Protocol):
    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.keep_alive = True
        self.closed = False
        self.got_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, raw: bytes, waiter: asyncio.Future[Response]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.got_bytes = False
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buf += data
        if self.waiter is None:
            self._fail(HttpError("unexpected data"))
            return
        try:
            response = self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(HttpError(f"bad response: {exc}"))
            return
        if response is None:
            return
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(response)
        if self.keep_alive and not self.closed:
            self.pool._release(self)
        else:
            self.close()

    def _parse(self) -> Response | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, consumed = _dechunk(buf, start)
            if body is None:
                return None
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if len(buf) < start + length:
                return None
            body, consumed = bytes(buf[start:start + length]), start + length
        elif status in (204, 304) or 100 <= status < 200:
            body, consumed = b"", start
        else:  # delimited by the close
            self.keep_alive = False
            return None
        del buf[:consumed]
        if headers.get("connection", "").lower() == "close":
            self.keep_alive = False
        return Response(status, headers, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if not self.keep_alive and self.buf:  # body delimited by the close
            try:
                head, _, body = bytes(self.buf).partition(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
            except (ValueError, IndexError):
                waiter.set_exception(HttpError("bad response"))
                return
            waiter.set_result(Response(status, {}, body))
            return
        waiter.set_exception(_Reset("connection closed" if exc is None else str(exc),
                                    self.got_bytes))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.close()


class _Reset(HttpError):
    def __init__(self, message: str, got_bytes: bool) -> None:
        super().__init__(message)
        self.got_bytes = got_bytes


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes | None, int]:
    out = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None, 0
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end > pos:  # skip trailers
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None, 0
            return bytes(out), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None, 0
        out += buf[pos:pos + size]
        pos += size + 2


class Http1Pool:
    """Up to ``max_connections`` keep-alive connections to one origin."""

    def __init__(self, base_url: str, max_connections: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.max_connections = max_connections
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._idle: deque[_Conn] = deque()
        self._all: set[_Conn] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[_Conn]] = deque()
        self._closed = False

    async def post(self, path: str, headers: str, body: bytes, timeout: float) -> Response:
        """POST ``body``; ``headers`` is pre-formatted ``Name: value\\r\\n`` lines."""
        raw = (f"POST {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
               f"Content-Length: {len(body)}\r\n{headers}\r\n").encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _ in range(2):
            conn, reused = await self._acquire(deadline)
            waiter: asyncio.Future[Response] = loop.create_future()
            timer = loop.call_at(deadline, _expire, waiter, conn)
            conn.send(raw, waiter)
            try:
                return await waiter
            except _Reset as exc:
                # A kept-alive connection the server closed while idle: one fresh try.
                if not reused or exc.got_bytes:
                    raise
            finally:
                timer.cancel()
        raise HttpError("connection closed")

    async def _acquire(self, deadline: float) -> tuple[_Conn, bool]:
        loop = asyncio.get_running_loop()
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, True
            if self._closed:
                raise HttpError("client closed")
            if len(self._all) + self._connecting < self.max_connections:
                return await self._connect(deadline), False
            fut: asyncio.Future[_Conn] = loop.create_future()
            self._waiters.append(fut)
            timer = loop.call_at(deadline, _expire_wait, fut)
            try:
                return await fut, True
            except _Retry:
                continue
            finally:
                timer.cancel()

    async def _connect(self, deadline: float) -> _Conn:
        loop = asyncio.get_running_loop()
        self._connecting += 1
        try:
            timeout = max(0.001, deadline - loop.time())
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _Conn(self), self.host, self.port, ssl=self._ssl,
                server_hostname=self.host if self.tls else None), timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise HttpError(f"connect failed: {type(exc).__name__}") from None
        finally:
            self._connecting -= 1
        self._all.add(conn)
        return conn

    def _release(self, conn: _Conn) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    def _forget(self, conn: _Conn) -> None:
        self._all.discard(conn)
        # A waiter blocked on the connection limit may now open a new one.
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        if self._waiters and len(self._all) + self._connecting < self.max_connections:
            self._waiters.popleft().set_exception(_Retry())

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._idle.clear()


class _Retry(Exception):
    """A pool slot freed up: go round ``_acquire`` again."""


def _expire(waiter: asyncio.Future[Response], conn: _Conn) -> None:
    if not waiter.done():
        waiter.set_exception(HttpError("timeout"))
        conn.close()


def _expire_wait(fut: asyncio.Future[_Conn]) -> None:
    if not fut.done():
        fut.set_exception(HttpError("timeout waiting for a connection"))
