"""The assembled gateway process: config → sender, dedup, dispatcher, HTTP listeners."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor

from pusher_gateway.config import GatewayConfig
from pusher_gateway.dedup import Dedup, MemoryDedup, RedisDedup
from pusher_gateway.dispatch import Dispatcher
from pusher_gateway.fcm import FcmSender
from pusher_gateway.http1_server import HttpFactory
from pusher_gateway.metrics import Metrics
from pusher_gateway.server import GatewayApp, MetricsApp, gateway_factory

log = logging.getLogger("pusher_gateway")
reactor: Any = _reactor  # the installed asyncio reactor; its zope interfaces confuse mypy


def make_dedup(config: GatewayConfig) -> Dedup:
    # A claim outlives the longest send it guards, so a crashed send frees it.
    pending = config.retry_budget_seconds + config.request_timeout_seconds + 5
    if config.redis_url:
        return RedisDedup(config.redis_url, config.dedup_ttl_seconds, pending)
    return MemoryDedup(config.dedup_ttl_seconds, pending, config.dedup_max_entries)


class Gateway:
    def __init__(self, config: GatewayConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.metrics = Metrics()
        self.sender = FcmSender(config, self.metrics)
        self.dedup = make_dedup(config)
        self.dispatcher = Dispatcher(config, self.sender, self.dedup, self.metrics)
        self.app = GatewayApp(self.dispatcher, self.metrics, config.max_devices)
        self._ports: list[Any] = []
        self._factories: list[HttpFactory] = []

    def listen(self) -> None:
        cfg = self.config
        factory = gateway_factory(self.app, cfg.max_body_bytes)
        port = reactor.listenTCP(cfg.listen_port, factory,
                                 interface=cfg.listen_host, backlog=1024)
        self._ports.append(port)
        self._factories.append(factory)
        bound = port.getHost().port
        metrics_note = ""
        if cfg.metrics_port:
            metrics_factory = gateway_factory(MetricsApp(self.metrics), 1024)
            mport = reactor.listenTCP(cfg.metrics_port, metrics_factory,
                                      interface=cfg.metrics_host)
            self._ports.append(mport)
            self._factories.append(metrics_factory)
            metrics_note = f", metrics on http://{cfg.metrics_host}:{mport.getHost().port}/metrics"
        apps = ", ".join(a.app_id for a in cfg.apps) or "none"
        # Announced once the reactor runs, when its SIGTERM/SIGINT handlers are in place: a
        # supervisor that stops us the moment it reads this line gets a graceful stop.
        reactor.callWhenRunning(
            log.info, "chat500-pushgw listening on http://%s:%d (apps: %s%s)", cfg.listen_host,
            bound, apps, metrics_note)

    def shutdown(self) -> defer.Deferred[None]:
        """Stop accepting, let in-flight notifications finish (bounded), then close clients."""
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._shutdown()))

    async def _shutdown(self) -> None:
        self.app.draining = True
        for port in self._ports:
            await defer.maybeDeferred(port.stopListening).asFuture(self.loop)
        for factory in self._factories:  # idle keep-alive connections close now, busy ones
            factory.drain()              # after their answer
        pending = list(self.app.in_flight)
        if pending:
            log.info("shutting down: finishing %d in-flight request(s)", len(pending))
            grace = self.config.retry_budget_seconds + self.config.request_timeout_seconds
            await asyncio.wait(pending, timeout=grace)
        await self.sender.close()
        await self.dedup.close()
        log.info("chat500-pushgw stopped")
