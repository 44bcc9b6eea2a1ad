"""One notify request: its devices dispatched concurrently, each delivered, rejected or retried.

A device is never silently dropped. Unknown apps and dead tokens are *rejected* (the homeserver
removes the pusher); anything not finished by the deadline (FCM down, quota, work queued past
its deadline) makes the whole answer a 5xx, so the homeserver retries and the devices already
delivered are skipped by dedup.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from pusher_gateway.config import AppConfig, GatewayConfig
from pusher_gateway.dedup import Dedup, dedup_key
from pusher_gateway.fcm import FcmSender, MessageTemplate
from pusher_gateway.metrics import Metrics
from pusher_gateway.validation import Device, Notification

log = logging.getLogger("pusher_gateway.dispatch")
Result = Literal["delivered", "rejected", "duplicate", "retry", "failed", "shed", "busy"]


def redact(pushkey: str) -> str:
    """Enough of a pushkey to correlate logs, never enough to use it."""
    return f"{pushkey[:6]}…({len(pushkey)})"


@dataclass(frozen=True)
class DeviceResult:
    pushkey: str
    result: Result
    code: str = ""


class AppRouter:
    """``app_id`` → app config: exact ids first, then globs in config order."""

    def __init__(self, apps: tuple[AppConfig, ...]) -> None:
        self._exact = {a.app_id: a for a in apps if not a.is_glob}
        self._globs = [a for a in apps if a.is_glob]
        self._cache: dict[str, AppConfig | None] = {}

    def find(self, app_id: str) -> AppConfig | None:
        app = self._exact.get(app_id)
        if app is not None or not self._globs:
            return app
        if app_id in self._cache:
            return self._cache[app_id]
        found = next((a for a in self._globs if fnmatch.fnmatchcase(app_id, a.app_id)), None)
        if len(self._cache) < 10_000:
            self._cache[app_id] = found
        return found


def http_answer(results: list[DeviceResult]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body for a request's device results (pure)."""
    if any(r.result == "failed" for r in results):
        return 502, {"errcode": "M_UNKNOWN",
                     "error": "FCM refused the message; the homeserver should retry later"}
    if any(r.result in ("retry", "shed", "busy") for r in results):
        return 503, {"errcode": "M_UNKNOWN", "error": "FCM unavailable; retry later"}
    return 200, {"rejected": [r.pushkey for r in results if r.result == "rejected"]}


class Dispatcher:
    def __init__(self, config: GatewayConfig, sender: FcmSender, dedup: Dedup,
                 metrics: Metrics) -> None:
        self._config = config
        self._sender = sender
        self._dedup = dedup
        self._metrics = metrics
        self.router = AppRouter(config.apps)
        self._slots = {a.app_id: asyncio.Semaphore(a.max_in_flight) for a in config.apps}
        self._gauges = {a.app_id: metrics.in_flight.labels(a.app_id) for a in config.apps}
        self._templates: dict[str, MessageTemplate] = {}

    async def notify(self, n: Notification, request_id: str) -> tuple[int, dict[str, Any]]:
        deadline = time.monotonic() + self._config.retry_budget_seconds
        if len(n.devices) == 1:
            results = [await self._device(n, n.devices[0], deadline, request_id)]
        else:
            results = list(await asyncio.gather(
                *(self._device(n, d, deadline, request_id) for d in n.devices)))
        for r in results:
            self._metrics.child(self._metrics.devices, r.result).inc()
        return http_answer(results)

    async def _device(self, n: Notification, device: Device, deadline: float,
                      request_id: str) -> DeviceResult:
        app = self.router.find(device.app_id)
        if app is None:
            log.info("req=%s pushkey=%s app_id=%s: unknown app, rejected", request_id,
                     redact(device.pushkey), device.app_id)
            return DeviceResult(device.pushkey, "rejected", "UNKNOWN_APP")
        key = dedup_key(device.pushkey, n.event_id) if n.event_id else ""
        if key:
            claim = await self._dedup.claim(key)
            if claim == "done":
                self._metrics.dedup_hits.inc()
                return DeviceResult(device.pushkey, "duplicate")
            if claim == "busy":
                return DeviceResult(device.pushkey, "busy")
        try:
            result = await self._send(app, n, device, deadline, request_id)
        except BaseException:
            if key:  # never leave a claim behind that would block the homeserver's retry
                await self._dedup.release(key)
            raise
        if key:
            if result.result in ("delivered", "rejected"):
                await self._dedup.complete(key)
            else:
                await self._dedup.release(key)
        return result

    def _shed(self, app: AppConfig, device: Device, request_id: str) -> DeviceResult:
        self._metrics.shed.labels(app.app_id).inc()
        log.warning("req=%s app_id=%s: shed after waiting past its deadline", request_id,
                    app.app_id)
        return DeviceResult(device.pushkey, "shed")

    async def _send(self, app: AppConfig, n: Notification, device: Device, deadline: float,
                    request_id: str) -> DeviceResult:
        try:
            template = self._templates.get(app.app_id)
            if template is None:
                template = self._templates[app.app_id] = MessageTemplate(app)
            message = template.build(n, device, self._config.event_id_only)
        except ValueError as exc:  # firebase-admin refused the message: a bug or bad options
            log.error("req=%s app_id=%s: message not encodable: %s", request_id, app.app_id,
                      exc)
            return DeviceResult(device.pushkey, "failed", "ENCODE")
        slot = self._slots[app.app_id]
        if slot.locked():
            try:
                await asyncio.wait_for(slot.acquire(), deadline - time.monotonic())
            except TimeoutError:
                return self._shed(app, device, request_id)
            if time.monotonic() >= deadline:  # got the slot, but too late to use it
                slot.release()
                return self._shed(app, device, request_id)
        else:
            await slot.acquire()
        gauge = self._gauges[app.app_id]
        gauge.inc()
        try:
            outcome = await self._sender.send(app, message, deadline)
        finally:
            gauge.dec()
            slot.release()
        kind = outcome.kind
        if kind == "delivered":
            if log.isEnabledFor(logging.DEBUG):  # no per-send formatting when debug is off
                log.debug("req=%s pushkey=%s app_id=%s: delivered", request_id,
                          redact(device.pushkey), app.app_id)
            return DeviceResult(device.pushkey, "delivered", outcome.code)
        pk = redact(device.pushkey)
        if kind == "rejected":
            log.info("req=%s pushkey=%s app_id=%s: rejected by FCM (%s)", request_id, pk,
                     app.app_id, outcome.code)
        elif kind == "retry":
            log.warning("req=%s pushkey=%s app_id=%s: not delivered within the retry budget "
                        "(%s); answering 5xx", request_id, pk, app.app_id, outcome.code)
        else:
            log.error("req=%s pushkey=%s app_id=%s: FCM refused the message (%s)", request_id,
                      pk, app.app_id, outcome.code)
        result: Result = outcome.kind if outcome.kind != "reauth" else "retry"  # type: ignore[assignment]
        return DeviceResult(device.pushkey, result, outcome.code)
