"""Prometheus metrics, in a registry of the gateway's own (served on a separate port)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pushgw_requests", "Notify requests by HTTP status",
                                ["status"], registry=r)
        self.request_seconds = Histogram("pushgw_request_seconds",
                                         "Notify request latency", buckets=_LATENCY_BUCKETS,
                                         registry=r)
        self.fcm_outcomes = Counter("pushgw_fcm_outcomes", "FCM responses by app and error code",
                                    ["app", "code"], registry=r)
        self.fcm_seconds = Histogram("pushgw_fcm_send_seconds", "One FCM messages:send call",
                                     buckets=_LATENCY_BUCKETS, registry=r)
        self.retries = Counter("pushgw_fcm_retries", "FCM sends retried, by cause",
                               ["app", "code"], registry=r)
        self.dedup_hits = Counter("pushgw_dedup_hits", "Devices skipped as already notified",
                                  registry=r)
        self.devices = Counter("pushgw_devices", "Devices by final result", ["result"],
                               registry=r)
        self.in_flight = Gauge("pushgw_in_flight", "FCM sends in flight", ["app"], registry=r)
        self.shed = Counter("pushgw_shed", "Devices shed: waited past their deadline",
                            ["app"], registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.token_refreshes = Counter("pushgw_oauth_token_refreshes",
                                       "OAuth2 access-token fetches", ["result"], registry=r)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: label lookup costs more than the increment."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
