"""The lean HTTP/1.1 pool against a raw local server with awkward (but legal) responses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pusher_gateway.http1_client import Http1Pool, HttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_request_is_one_write_and_keep_alive_is_reused() -> None:
    seen: list[bytes] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                seen.append(await read_request(reader))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def go() -> None:
        server, url = await serve(handler)
        pool = Http1Pool(url + "/relay", 4)
        for _ in range(3):
            r = await pool.post("/relay/v1/x", "authorization: Bearer t\r\n", b'{"a":1}', 5)
            assert (r.status, r.body) == (200, b"ok")
        await pool.aclose()
        server.close()

    run(go())
    assert connections == 1 and len(seen) == 3
    assert seen[0].startswith(b"POST /relay/v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 7\r\n" in seen[0] and seen[0].endswith(b'\r\n\r\n{"a":1}')


def test_chunked_and_close_delimited_responses() -> None:
    replies = [
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Retry-After: 3\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
        b"HTTP/1.1 200 OK\r\n\r\nuntil-close",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        reply = replies.pop(0)
        for i in range(0, len(reply), 7):  # dribbled out in small pieces
            writer.write(reply[i:i + 7])
            await writer.drain()
        if b"Content-Length" not in reply or b"close" in reply:
            writer.close()
        else:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

    async def go() -> None:
        server, url = await serve(handler)
        pool = Http1Pool(url, 1)
        r = await pool.post("/", "", b"", 5)
        assert (r.status, r.body, r.headers["retry-after"]) == (503, b"hello world", "3")
        r = await pool.post("/", "", b"", 5)
        assert (r.status, r.body) == (200, b"bye")
        r = await pool.post("/", "", b"", 5)
        assert (r.status, r.body) == (200, b"until-close")
        await pool.aclose()
        server.close()

    run(go())


def test_idle_connection_closed_by_the_server_is_retried_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()  # keep-alive promised, then closed while idle

    async def go() -> None:
        server, url = await serve(handler)
        pool = Http1Pool(url, 2)
        assert (await pool.post("/", "", b"x", 5)).status == 200
        await asyncio.sleep(0.05)  # let the close arrive
        assert (await pool.post("/", "", b"x", 5)).status == 200
        await pool.aclose()
        server.close()

    run(go())


def test_connection_limit_queues_and_timeouts_raise() -> None:
    active = 0
    peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        try:
            while True:
                await read_request(reader)
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.05)
                active -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def go() -> None:
        server, url = await serve(handler)
        pool = Http1Pool(url, 2)
        statuses = await asyncio.gather(*(pool.post("/", "", b"", 10) for _ in range(6)))
        assert [r.status for r in statuses] == [200] * 6
        with pytest.raises(HttpError, match="timeout"):
            await pool.post("/", "", b"", 0.01)
        await pool.aclose()
        server.close()

    run(go())
    assert peak == 2


def test_unreachable_and_garbage() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go() -> None:
        server, url = await serve(handler)
        with pytest.raises(HttpError):
            await Http1Pool(url, 1).post("/", "", b"", 5)
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpError, match="connect failed"):
            await Http1Pool(url, 1).post("/", "", b"", 5)

    run(go())
