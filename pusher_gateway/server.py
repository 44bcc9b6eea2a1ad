"""The gateway's HTTP applications: the Push Gateway API with health, and the metrics page.

Thin on purpose: route, parse, validate, hand the notification to the ``Dispatcher`` coroutine
on the reactor's asyncio loop, answer in JSON. Errors are Matrix-style JSON (``M_NOT_JSON``,
``M_BAD_JSON``, ``M_TOO_LARGE``, ``M_UNRECOGNIZED``), never a traceback. The connection
handling is ``http1_server``'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pusher_gateway.dispatch import Dispatcher
from pusher_gateway.http1_server import HttpFactory, HttpRequest, Reply
from pusher_gateway.metrics import Metrics
from pusher_gateway.validation import InvalidNotification, parse_notification

log = logging.getLogger("pusher_gateway.server")
NOTIFY_PATH = b"/_matrix/push/v1/notify"
_OK_EMPTY_REPLY = Reply(200, json.dumps({"rejected": []}).encode())  # the common answer
_ERRCODES = {400: "M_UNRECOGNIZED", 404: "M_UNRECOGNIZED", 405: "M_UNRECOGNIZED",
             411: "M_UNRECOGNIZED", 413: "M_TOO_LARGE", 431: "M_TOO_LARGE",
             501: "M_UNRECOGNIZED", 505: "M_UNRECOGNIZED"}


def json_reply(status: int, body: dict[str, Any], *,
               headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    if status == 200 and body == {"rejected": []} and not headers:
        return _OK_EMPTY_REPLY
    return Reply(status, json.dumps(body).encode(), headers=headers)


def error_reply(status: int, message: str) -> Reply:
    """A Matrix error body for a status; also what the HTTP layer answers framing errors with."""
    return json_reply(status, {"errcode": _ERRCODES.get(status, "M_UNKNOWN"), "error": message})


def _decode(raw: bytes) -> str | bytes:
    """A body that starts like UTF-8 JSON, decoded as ``json.loads`` would decode it (with
    ``surrogatepass``) without its per-call encoding detection; anything else as it is."""
    if raw[:1] == b"{" and raw[1:2] != b"\x00":
        return raw.decode("utf-8", "surrogatepass")
    return raw


def _wrong_method(allowed: bytes) -> Reply:
    return json_reply(405, {"errcode": "M_UNRECOGNIZED", "error": f"Use {allowed.decode()}"},
                      headers=((b"Allow", allowed),))


class GatewayApp:
    """``POST /_matrix/push/v1/notify`` and ``GET /health``."""

    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, max_devices: int) -> None:
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._max_devices = max_devices
        self.in_flight: set[asyncio.Task[Reply]] = set()
        self.draining = False

    def __call__(self, request: HttpRequest) -> Reply | asyncio.Task[Reply]:
        path = request.path
        if path == NOTIFY_PATH:
            if request.method != b"POST":
                return self._counted(_wrong_method(b"POST"))
            return self._notify(request)
        if path == b"/health":
            if request.method not in (b"GET", b"HEAD"):
                return self._counted(_wrong_method(b"GET, HEAD"))
            if self.draining:
                return json_reply(503, {"status": "draining"})
            return json_reply(200, {"status": "ok"})
        return self._counted(error_reply(404, "Unrecognized request"))

    def _counted(self, reply: Reply) -> Reply:
        self._metrics.child(self._metrics.requests, str(reply.status)).inc()
        return reply

    def _notify(self, request: HttpRequest) -> Reply | asyncio.Task[Reply]:
        try:
            body = json.loads(_decode(request.body))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self._counted(json_reply(400, {"errcode": "M_NOT_JSON",
                                                  "error": "Body is not valid JSON"}))
        try:
            notification = parse_notification(body, self._max_devices)
        except InvalidNotification as exc:
            return self._counted(json_reply(400, {"errcode": "M_BAD_JSON", "error": str(exc)}))
        request_id = f"{random.getrandbits(48):012x}"  # log correlation, not a secret
        task = asyncio.ensure_future(self._dispatch(notification, request_id))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return task

    async def _dispatch(self, notification: Any, request_id: str) -> Reply:
        started = time.perf_counter()
        try:
            status, body = await self._dispatcher.notify(notification, request_id)
        except Exception:
            log.exception("req=%s: internal error", request_id)
            status, body = 500, {"errcode": "M_UNKNOWN", "error": "Internal error"}
        self._metrics.request_seconds.observe(time.perf_counter() - started)
        return self._counted(json_reply(status, body))


class MetricsApp:
    """``GET /metrics`` in the Prometheus text format, from the gateway's own registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._registry = metrics.registry

    def __call__(self, request: HttpRequest) -> Reply:
        if request.path != b"/metrics":
            return error_reply(404, "Unrecognized request")
        if request.method not in (b"GET", b"HEAD"):
            return _wrong_method(b"GET, HEAD")
        return Reply(200, generate_latest(self._registry), CONTENT_TYPE_LATEST.encode())


def gateway_factory(app: GatewayApp | MetricsApp, max_body: int) -> HttpFactory:
    return HttpFactory(app, error_reply, max_body=max_body)
