"""The HTTP side: Twisted resources for the Push Gateway API, health and metrics.

Thin on purpose: parse, validate, hand the notification to the ``Dispatcher`` coroutine on the
reactor's asyncio loop, write the JSON answer. Errors are Matrix-style JSON (``M_NOT_JSON``,
``M_BAD_JSON``, ``M_TOO_LARGE``, ``M_UNRECOGNIZED``), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from io import BytesIO
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet.interfaces import ITCPTransport
from twisted.python import failure
from twisted.web import resource, server
from twisted.web.http import datetimeToString, unquote

from pusher_gateway.dispatch import Dispatcher
from pusher_gateway.metrics import Metrics
from pusher_gateway.validation import InvalidNotification, parse_notification

log = logging.getLogger("pusher_gateway.server")
NOTIFY_PATH = b"/_matrix/push/v1/notify"
_OK_EMPTY: dict[str, Any] = {"rejected": []}
_OK_EMPTY_RAW = json.dumps(_OK_EMPTY).encode()
_date_cache: list[Any] = [0, b""]


def http_date() -> bytes:
    """The ``Date`` header value, formatted once per second rather than once per request."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0], _date_cache[1] = now, datetimeToString(now)
    return _date_cache[1]  # type: ignore[no-any-return]


def _decode(raw: bytes) -> str | bytes:
    """A body that starts like UTF-8 JSON, decoded as ``json.loads`` would decode it (with
    ``surrogatepass``) without its per-call encoding detection; anything else as it is."""
    if raw[:1] == b"{" and raw[1:2] != b"\x00":
        return raw.decode("utf-8", "surrogatepass")
    return raw


def _json(request: server.Request, status: int, body: dict[str, Any]) -> bytes:
    # The common answer (200, nothing rejected) is encoded once.
    raw = _OK_EMPTY_RAW if status == 200 and body == _OK_EMPTY else json.dumps(body).encode()
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    # A length rather than chunked encoding: head and body leave in one write.
    request.setHeader(b"content-length", b"%d" % len(raw))
    return raw


class LimitedRequest(server.Request):
    """Stops buffering a body past ``max_body`` bytes (the resource then answers 413)."""

    max_body = 65536
    too_big = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self.too_big = True
        self.content = BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.max_body:
            self.too_big = True
            return
        assert self.content is not None
        self.content.write(data)

    def process(self) -> None:
        """``server.Request.process`` without the per-request work a leaf root does not need
        (resource traversal, encoder lookup) and with a cached ``Date``; same headers."""
        site: Any = self.channel.site  # type: ignore[attr-defined]
        root = site.resource
        if not getattr(root, "isLeaf", False) or self.path == b"*":
            super().process()
            return
        self.site = site
        self.setHeader(b"Server", server.version)
        self.setHeader(b"Date", http_date())
        self.prepath = []
        self.postpath = list(map(unquote, self.path[1:].split(b"/")))
        self.sitepath: list[bytes] = []
        try:
            self.render(root)
        except BaseException:
            self.processingFailed(failure.Failure())


class GatewaySite(server.Site):
    """No access log per request (it costs CPU and would carry pushkeys), TCP_NODELAY on."""

    def log(self, request: Any) -> None:
        pass

    def buildProtocol(self, addr: Any) -> Any:
        proto = super().buildProtocol(addr)
        original = proto.makeConnection

        def make_connection(transport: Any) -> None:
            if ITCPTransport.providedBy(transport):
                transport.setTcpNoDelay(True)
                # Every request asks for both addresses (a getsockname syscall, a new address
                # object); neither changes for the life of the connection.
                host, peer = transport.getHost(), transport.getPeer()
                transport.getHost = lambda: host
                transport.getPeer = lambda: peer
            original(transport)

        proto.makeConnection = make_connection
        return proto


class GatewayResource(resource.Resource):
    isLeaf = True

    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, max_devices: int) -> None:
        super().__init__()
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._max_devices = max_devices
        self.in_flight: set[asyncio.Task[None]] = set()
        self.draining = False

    def render(self, request: server.Request) -> bytes | int:  # type: ignore[override]
        path = request.path
        method = request.method
        if path == NOTIFY_PATH:
            if method != b"POST":
                return self._done(request, 405, {"errcode": "M_UNRECOGNIZED",
                                                 "error": "Use POST"})
            return self._notify(request)
        if path == b"/health":
            if method not in (b"GET", b"HEAD"):
                return self._done(request, 405, {"errcode": "M_UNRECOGNIZED",
                                                 "error": "Use GET"})
            status = 503 if self.draining else 200
            return self._done(request, status, {"status": "draining" if self.draining
                                                else "ok"}, count=False)
        return self._done(request, 404, {"errcode": "M_UNRECOGNIZED",
                                         "error": "Unrecognized request"})

    def _done(self, request: server.Request, status: int, body: dict[str, Any],
              count: bool = True) -> bytes:
        if count:
            self._metrics.child(self._metrics.requests, str(status)).inc()
        return _json(request, status, body)

    def _notify(self, request: server.Request) -> bytes | int:
        if getattr(request, "too_big", False):
            return self._done(request, 413, {"errcode": "M_TOO_LARGE",
                                             "error": "Request body too large"})
        assert request.content is not None
        raw = request.content.getvalue()
        try:
            body = json.loads(_decode(raw))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self._done(request, 400, {"errcode": "M_NOT_JSON",
                                             "error": "Body is not valid JSON"})
        try:
            notification = parse_notification(body, self._max_devices)
        except InvalidNotification as exc:
            return self._done(request, 400, {"errcode": "M_BAD_JSON", "error": str(exc)})
        request_id = f"{random.getrandbits(48):012x}"  # log correlation, not a secret
        task = asyncio.ensure_future(self._dispatch(request, notification, request_id))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return server.NOT_DONE_YET

    async def _dispatch(self, request: server.Request, notification: Any,
                        request_id: str) -> None:
        started = time.perf_counter()
        try:
            status, body = await self._dispatcher.notify(notification, request_id)
        except Exception:
            log.exception("req=%s: internal error", request_id)
            status, body = 500, {"errcode": "M_UNKNOWN", "error": "Internal error"}
        self._metrics.request_seconds.observe(time.perf_counter() - started)
        self._metrics.child(self._metrics.requests, str(status)).inc()
        if request._disconnected or request.finished:  # the homeserver gave up; work is done
            return
        request.write(_json(request, status, body))
        request.finish()


class MetricsResource(resource.Resource):
    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._registry = metrics.registry

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._registry)


def make_site(root: resource.Resource, max_body: int) -> GatewaySite:
    limited = type("Request", (LimitedRequest,), {"max_body": max_body})
    # Never a form post: skip Twisted's Content-Type parsing (an EmailMessage per request).
    site = GatewaySite(root, requestFactory=limited, parsePOSTFormSubmission=False)
    site.displayTracebacks = False
    site.noisy = False
    return site

